import type { RedisClient } from '../redis/connection.js';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { PrismaClient } from '../db/prisma.js';
import { repeat } from './repeat.js';

/** When the fleet slows down for the database's sake. Every threshold has a default; each is a setting. */
export interface ThrottleThresholds {
  /** Sessions of the database waiting on a lock (TYS_THROTTLE_LOCK_WAITERS). Default 5. */
  lockWaiters: number;
  /** Share of the server's max_connections in use (TYS_THROTTLE_CONNECTIONS). Default 0.9. */
  connectionShare: number;
  /**
   * The p95 time of the family's own writes over the last 10 s, above its
   * baseline by this ratio (TYS_THROTTLE_LATENCY_RATIO). Default 1.2: the
   * document's "queries 20% slower".
   */
  latencyRatio: number;
  /** ...and above it by at least this many ms, so that noise at a few ms is no regression (TYS_THROTTLE_LATENCY_FLOOR_MS). Default 20. */
  latencyFloorMs: number;
  /** The first this many ms of a family's writes in a process are its baseline (TYS_THROTTLE_BASELINE_MS). Default 60,000. */
  baselineMs: number;
  /** How long each hold lasts before the next look, in ms (TYS_THROTTLE_HOLD_MS). Default 1,000. */
  holdMs: number;
  /** How far a replica may fall behind, in ms, when one is watched (TYS_THROTTLE_REPLICA_LAG_MS). Default 10,000. */
  replicaLagMs: number;
  /**
   * The longest a trivial query (`SELECT 1`, the median of three) may take,
   * in ms (TYS_THROTTLE_PROBE_MS). Default 50. It is what every query of the
   * application waits before its own work when the server has no CPU to
   * spare: the family's write latency cannot show that when the fleet's own
   * load is its baseline.
   */
  probeMs: number;
}

export const DEFAULT_THROTTLE: ThrottleThresholds = {
  lockWaiters: 5,
  connectionShare: 0.9,
  latencyRatio: 1.2,
  latencyFloorMs: 20,
  baselineMs: 60_000,
  holdMs: 1_000,
  replicaLagMs: 10_000,
  probeMs: 50,
};

/**
 * How far behind the replica's replay is, read on the replica itself: 0
 * while it has replayed everything it received (an idle primary is no lag),
 * otherwise the age of the last transaction it replayed. Null when the
 * server is not a replica at all.
 */
const REPLICA_LAG_SQL = `
  SELECT pg_is_in_recovery() AS replica,
         CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
              ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000, 0)
         END::float8 AS lag_ms`;

const RECENT_MS = 10_000;
const MAX_SAMPLES = 5_000;
const SAMPLE_EVERY_MS = 1_000;

/** Where a throttled family's reason is kept for status and metrics, for a few seconds at a time. */
export function throttleKey(prefix: string, family: string): string {
  return `${prefix}:throttle:${family}`;
}

function p95(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? 0;
}

/**
 * Watches what the database shows (sessions waiting on locks, connections
 * in use) and how long the families' own writes take, once a second, and
 * says for each family whether to hold back and why. Holding is done by the
 * worker (a BullMQ rate limit: no job fails, no attempt is spent); the
 * reason is written to Redis for `tys status` and `/metrics`.
 */
export class DbHealth {
  private readonly thresholds: ThrottleThresholds;
  private readonly latencies = new Map<string, { firstAt: number; baseline: number[]; baselineP95: number | null; recent: { at: number; ms: number }[] }>();
  private readonly reasons = new Map<string, string>();
  private serverReason: string | null = null;
  private looking: { stop(): Promise<void> } | null = null;

  private warnedNotReplica = false;
  private replicaUnreachable = false;
  private databaseUnreachable = false;

  constructor(
    /** `replica`: a connection to a replica of the database (TYS_REPLICA_URL), whose lag is watched too. */
    private readonly deps: { prisma: PrismaClient; redis: RedisClient; prefix: string; log: Logger; replica?: pg.Pool },
    private readonly families: string[],
    thresholds: Partial<ThrottleThresholds> = {},
  ) {
    this.thresholds = { ...DEFAULT_THROTTLE, ...Object.fromEntries(Object.entries(thresholds).filter(([, v]) => v !== undefined)) };
  }

  get holdMs(): number {
    return this.thresholds.holdMs;
  }

  /** Why the family should hold back now, or null. */
  reason(family: string): string | null {
    return this.serverReason ?? this.reasons.get(family) ?? null;
  }

  /** How long the family's jobs took, as they end. */
  recordLatencies(family: string, durationsMs: number[]): void {
    const now = Date.now();
    const entry = this.latencies.get(family) ?? { firstAt: now, baseline: [], baselineP95: null, recent: [] };
    this.latencies.set(family, entry);
    const inBaseline = now - entry.firstAt < this.thresholds.baselineMs;
    // Bounded whatever the rate: a few thousand samples tell a p95 well enough.
    for (const ms of durationsMs) {
      if (inBaseline) {
        if (entry.baseline.length < MAX_SAMPLES) entry.baseline.push(ms);
      } else entry.recent.push({ at: now, ms });
    }
    if (entry.recent.length > MAX_SAMPLES) entry.recent.splice(0, entry.recent.length - MAX_SAMPLES);
  }

  start(): void {
    this.looking = repeat(() => this.sample(), SAMPLE_EVERY_MS);
  }

  /** The replica's lag in ms, or null without a replica to watch. A replica that does not answer counts as no lag: its own monitoring says so. */
  private async replicaLag(): Promise<number | null> {
    if (!this.deps.replica) return null;
    try {
      const { rows } = await this.deps.replica.query<{ replica: boolean; lag_ms: number }>(REPLICA_LAG_SQL);
      if (this.replicaUnreachable) this.deps.log.info('the replica answers again: its lag is watched');
      this.replicaUnreachable = false;
      if (rows[0]!.replica) return rows[0]!.lag_ms;
      if (!this.warnedNotReplica) this.deps.log.warn('TYS_REPLICA_URL points at a server that is not a replica: its lag is not watched');
      this.warnedNotReplica = true;
    } catch (error) {
      // Once per outage, not once a second.
      if (!this.replicaUnreachable) this.deps.log.warn({ err: (error as Error).message }, "could not read the replica's lag: not watched until it answers");
      this.replicaUnreachable = true;
    }
    return null;
  }

  async stop(): Promise<void> {
    await this.looking?.stop();
  }

  /** One look at the database and at the recent writes. */
  async sample(): Promise<void> {
    const t = this.thresholds;
    try {
      const [row] = await this.deps.prisma.$queryRaw<{ waiters: bigint; connections: bigint; max: number }[]>`
        SELECT count(*) FILTER (WHERE wait_event_type = 'Lock' AND datname = current_database()) AS waiters,
               count(*) AS connections, current_setting('max_connections')::int AS max
          FROM pg_stat_activity`;
      const probes: number[] = [];
      for (let i = 0; i < 3; i += 1) {
        const started = performance.now();
        await this.deps.prisma.$queryRaw`SELECT 1`;
        probes.push(performance.now() - started);
      }
      const probeMs = probes.sort((a, b) => a - b)[1]!;
      const waiters = Number(row!.waiters);
      const share = Number(row!.connections) / row!.max;
      this.databaseUnreachable = false;
      const lagMs = await this.replicaLag();
      this.serverReason =
        waiters >= t.lockWaiters
          ? `${waiters} sessions waiting on locks (limit ${t.lockWaiters})`
          : share >= t.connectionShare
            ? `${Number(row!.connections)} of ${row!.max} connections in use`
            : lagMs !== null && lagMs > t.replicaLagMs
              ? `replica ${(lagMs / 1000).toFixed(1)} s behind (limit ${(t.replicaLagMs / 1000).toFixed(1)} s)`
              : probeMs > t.probeMs
                ? `a trivial query took ${Math.round(probeMs)} ms (limit ${t.probeMs} ms): the server is short of CPU`
                : null;
    } catch (error) {
      // A database that does not answer is the workers' own concern (their jobs retry); not a reason to hold.
      if (!this.databaseUnreachable) this.deps.log.warn({ err: error }, 'could not read database health (said once until it answers)');
      this.databaseUnreachable = true;
      this.serverReason = null;
    }
    const now = Date.now();
    for (const family of this.families) {
      const entry = this.latencies.get(family);
      let reason: string | null = null;
      if (entry && entry.baseline.length >= 20 && now - entry.firstAt >= t.baselineMs) {
        entry.baselineP95 ??= p95(entry.baseline);
        entry.recent = entry.recent.filter((s) => now - s.at <= RECENT_MS);
        if (entry.recent.length >= 5) {
          const base = entry.baselineP95;
          const current = p95(entry.recent.map((s) => s.ms));
          if (current > base * t.latencyRatio && current - base >= t.latencyFloorMs) {
            reason = `p95 write ${Math.round(current)} ms > ${Math.round(base * t.latencyRatio)} ms (baseline ${Math.round(base)} ms)`;
          }
        }
      }
      if (reason) this.reasons.set(family, reason);
      else this.reasons.delete(family);
      const shown = this.reason(family);
      const key = throttleKey(this.deps.prefix, family);
      await (shown ? this.deps.redis.set(key, shown, 'PX', SAMPLE_EVERY_MS * 3) : this.deps.redis.del(key)).catch(() => undefined);
    }
  }
}

/** Reasons the families are throttled for now, as the workers wrote them. */
export async function throttleReasons(redis: RedisClient, prefix: string, families: string[]): Promise<Record<string, string>> {
  if (families.length === 0) return {};
  const values = await redis.mget(...families.map((family) => throttleKey(prefix, family)));
  return Object.fromEntries(families.flatMap((family, i) => (values[i] ? [[family, values[i]]] : [])));
}
