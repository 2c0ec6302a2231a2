import { getPriority, setPriority } from 'node:os';
import type { FleetConfig } from './config/env.js';

/**
 * Lowers this process's CPU priority to the configured niceness (TYS_NICE),
 * for the worker process started without the `tys` launcher (which lowers
 * it itself, before it loads anything).
 * Only ever lowers it: an unprivileged process cannot raise it back, and a
 * process started under `nice` keeps what it was given when TYS_NICE is unset.
 */
export function applyNiceness(config: Pick<FleetConfig, 'nice'>): void {
  if (config.nice && config.nice > getPriority()) setPriority(config.nice);
}
