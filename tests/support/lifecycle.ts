import { TRANSITIONS, type FleetRunStatus } from '../../src/fleet/runs/lifecycle.js';

/** Every status a run can reach from `from` along the lifecycle's moves, `from` included. */
export function reachableFrom(from: FleetRunStatus): Set<FleetRunStatus> {
  const seen = new Set<FleetRunStatus>([from]);
  for (let grew = true; grew;) {
    grew = false;
    for (const status of [...seen])
      for (const next of Object.keys(TRANSITIONS[status]) as FleetRunStatus[])
        if (!seen.has(next)) {
          seen.add(next);
          grew = true;
        }
  }
  return seen;
}
