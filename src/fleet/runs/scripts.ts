import { ScriptFolder } from '../../redis/scripts.js';

/** The runs' Lua scripts (src/fleet/runs/lua), each described at its top. */
export const runScripts = new ScriptFolder(
  ['src', 'fleet', 'runs', 'lua'],
  [
    'addingJobs',
    'addStat',
    'adopt',
    'ensureMarker',
    'handOver',
    'holdProducer',
    'jobStates',
    'noteAdded',
    'recordOutcomes',
    'reserveStart',
    'sealAbandoned',
    'setIfLive',
    'standing',
    'uncountedFailures',
  ],
  'tys',
);
