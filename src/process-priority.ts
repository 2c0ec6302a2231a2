import { niceThreads } from '../bin/priority.js';
import type { FleetConfig } from './config/env.js';

/**
 * Lowers this process's CPU priority to the configured niceness (TYS_NICE).
 *
 * On Linux niceness belongs to each thread, and Node starts its helper
 * threads (V8's garbage collection and compilation, libuv's pool) before any
 * script runs: lowering only the main thread's, as `os.setPriority()` does,
 * leaves them at full priority, taking the CPU from Postgres and the
 * application while the worker collects garbage. So every thread is lowered;
 * threads started later inherit it from the thread that starts them.
 *
 * Only ever lowers it: an unprivileged process cannot raise it back, and a
 * process started under `nice` keeps what it was given when TYS_NICE is unset.
 */
export function applyNiceness(config: Pick<FleetConfig, 'nice'>): void {
  if (config.nice) niceThreads(config.nice);
}
