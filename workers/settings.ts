import { loadMarketConfig } from '../src/config/market.js';
import { familiesNamed } from '../src/families/index.js';
import { ConfigError, decimal, integer, readSettings, textSetting, url, type SettingsShape } from '../src/config/settings.js';
import type { WorkerProcessOptions } from './process.js';

const MAX_MS = 2 ** 31 - 1;

const WORKER_SETTINGS = {
  TYS_FAMILIES: textSetting('must be family names separated by commas', (text) => text.split(',').map((name) => name.trim())),
  TYS_CONCURRENCY: integer(1, 1_000),
  TYS_LOCK_DURATION_MS: integer(100, MAX_MS),
  TYS_STALLED_INTERVAL_MS: integer(100, MAX_MS),
  TYS_SHUTDOWN_TIMEOUT_MS: integer(100, MAX_MS),
  TYS_DB_POOL_SIZE: integer(1, 1_000),
  TYS_THROTTLE: textSetting('must be on or off', (text) => (text === 'on' || text === 'off' ? text : undefined)),
  TYS_THROTTLE_LOCK_WAITERS: integer(1, 100_000),
  TYS_THROTTLE_CONNECTIONS: decimal(0.01, 1),
  TYS_THROTTLE_LATENCY_RATIO: decimal(1, 100),
  TYS_THROTTLE_LATENCY_FLOOR_MS: integer(0, MAX_MS),
  TYS_THROTTLE_BASELINE_MS: integer(1_000, MAX_MS),
  TYS_THROTTLE_REPLICA_LAG_MS: integer(0, MAX_MS),
  TYS_THROTTLE_PROBE_MS: integer(1, MAX_MS),
  TYS_REPLICA_URL: url(['postgres:', 'postgresql:']),
} satisfies SettingsShape;

/** TYS_FAMILIES: the families to work on, default all; the others as WorkerProcessOptions says. */
export type WorkerSettings = Omit<WorkerProcessOptions, 'knownFamilies' | 'limiter'>;

/**
 * A worker process's settings from the environment (see `tys worker --help`),
 * market data included: checked before anything connects, so that a
 * malformed setting is exit 2 at start, not a failure in every job.
 */
export function workerSettings(env: NodeJS.ProcessEnv = process.env): WorkerSettings {
  const s = readSettings(WORKER_SETTINGS, env);
  return {
    families: familiesNamed(
      s.TYS_FAMILIES,
      (name, known) => new ConfigError(`TYS_FAMILIES names unknown family "${name}" (expected some of: ${known.join(', ')})`),
    ),
    concurrency: s.TYS_CONCURRENCY,
    market: loadMarketConfig(env),
    lockDuration: s.TYS_LOCK_DURATION_MS,
    stalledInterval: s.TYS_STALLED_INTERVAL_MS,
    poolSize: s.TYS_DB_POOL_SIZE,
    shutdownTimeoutMs: s.TYS_SHUTDOWN_TIMEOUT_MS,
    throttle:
      s.TYS_THROTTLE === 'off'
        ? null
        : {
            lockWaiters: s.TYS_THROTTLE_LOCK_WAITERS,
            connectionShare: s.TYS_THROTTLE_CONNECTIONS,
            latencyRatio: s.TYS_THROTTLE_LATENCY_RATIO,
            latencyFloorMs: s.TYS_THROTTLE_LATENCY_FLOOR_MS,
            baselineMs: s.TYS_THROTTLE_BASELINE_MS,
            replicaLagMs: s.TYS_THROTTLE_REPLICA_LAG_MS,
            probeMs: s.TYS_THROTTLE_PROBE_MS,
          },
    replicaUrl: s.TYS_REPLICA_URL,
  };
}
