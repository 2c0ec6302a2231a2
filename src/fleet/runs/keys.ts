/** The Redis keys of the fleet's runs under one shard's prefix: the one place their names are made. */
export interface RunKeys {
  /** A run's key without its id: the scripts build the keys of the runs a job's followers name from it. */
  runPrefix: string;
  /** A run's live counters (a hash). */
  run(runId: string): string;
  /** The outcome counted for each job of a run (a hash by job id): each counted once. */
  pending(runId: string): string;
  /** The jobs a producer is adding to a run and has not noted as added yet (a set). */
  adding(runId: string): string;
  /** The runs that follow each job of an earlier run (a hash by job id, run ids space-separated). */
  adopters: string;
  /** The next free start slot of a paced run. */
  nextStart(runId: string): string;
  /** Samples of a run's outcomes over time, for its rate (a hash by time bucket). */
  progress(runId: string): string;
  /** The fleet's marker in this Redis (see marker.ts). */
  marker: string;
}

export function runKeys(prefix: string): RunKeys {
  const runPrefix = `${prefix}:runs:`;
  return {
    runPrefix,
    run: (runId) => `${runPrefix}${runId}`,
    pending: (runId) => `${runPrefix}${runId}:pending`,
    adding: (runId) => `${runPrefix}${runId}:adding`,
    adopters: `${runPrefix}adopters`,
    nextStart: (runId) => `${runPrefix}${runId}:next-start`,
    progress: (runId) => `${runPrefix}${runId}:progress`,
    marker: `${prefix}:fleet:marker`,
  };
}
