import { ScriptFolder } from '../../redis/scripts.js';

/** The runs' Lua scripts (src/fleet/runs/lua), each described at its top. */
export const runScripts = new ScriptFolder(
  ['src', 'fleet', 'runs', 'lua'],
  [
    'addStat',
    'adopt',
    'ensureMarker',
    'handOver',
    'holdProducer',
    'jobStates',
    'recordOutcomes',
    'reserveStart',
    'sealAbandoned',
    'setIfLive',
    'standing',
    'uncountedFailures',
  ],
  'tys',
);
