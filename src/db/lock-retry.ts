import pg from 'pg';
import { MigrationError } from './migration-error.js';
import type { LockPlan } from './lock-plan.js';

/**
 * How a schema change waits for its locks. An ALTER TABLE queued behind one
 * long transaction blocks every later query on that table, so it waits at
 * most `lockTimeoutMs`, then lets the application through and tries again.
 */
export interface LockLimits {
  /** Longest wait for one lock, in ms. Default 5,000. */
  lockTimeoutMs: number;
  /** Longest any one statement may run, in ms. Default 600,000. */
  statementTimeoutMs: number;
  /** Tries after the first one that timed out on a lock. Default 3. */
  lockRetries: number;
  /** Pause before the first retry, in ms, doubled for each next one. Default 1,000. */
  retryDelayMs: number;
}

export const DEFAULT_LOCK_LIMITS: LockLimits = { lockTimeoutMs: 5_000, statementTimeoutMs: 600_000, lockRetries: 3, retryDelayMs: 1_000 };

interface Blocker {
  pid: number;
  application: string;
  state: string;
  transactionSeconds: number | null;
}

const LOCK_NOT_AVAILABLE = '55P03';
const DEADLOCK_DETECTED = '40P01';

/**
 * The longest the up-front locking waits for one table while it may hold
 * others. Kept well under Postgres's deadlock_timeout (1 s by default), so
 * that an application query caught in a cycle with it is let go before the
 * deadlock check would pick that query as the victim, and so that no query
 * queues behind the migration for longer than this before it has started.
 */
const LOCK_STEP_MS = 100;

/** The up-front locking did not get every table within the lock timeout; `blockers` held them. */
class LocksNotTaken extends Error {
  readonly code = LOCK_NOT_AVAILABLE;
  constructor(readonly blockers: Blocker[]) {
    super('tables not locked within the lock timeout');
  }
}

/**
 * Runs `body` in a transaction under the lock and statement timeouts, after
 * `beforeLocks` and after taking every lock of `locks` up front; when that or
 * the body times out on a lock or is chosen as a deadlock victim, rolls back,
 * names the sessions that held the lock and tries again after a pause. After
 * the last try: a MigrationError, with nothing of `body` applied.
 */
export async function withLockRetries(
  client: pg.Client,
  databaseUrl: string,
  what: string,
  locks: LockPlan,
  options: Partial<LockLimits> & {
    onProgress?: (line: string) => void;
    /** Statements that need none of `locks`, run in the same transaction before they are taken (see newObjectsFirst). */
    beforeLocks?: () => Promise<unknown>;
  },
  body: () => Promise<void>,
): Promise<void> {
  const limits = { ...DEFAULT_LOCK_LIMITS, ...definedOnly(options) };
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const tries = limits.lockRetries + 1;
  for (let attempt = 1; ; attempt++) {
    const watch = watchBlockers(databaseUrl, pid, Math.min(200, Math.max(20, limits.lockTimeoutMs / 5)));
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('statement_timeout', $1, true)`, [`${limits.statementTimeoutMs}ms`]);
      await options.beforeLocks?.();
      await takeLocks(client, locks, limits.lockTimeoutMs);
      await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${limits.lockTimeoutMs}ms`]);
      await body();
      await client.query('COMMIT');
      await watch.stop();
      return;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      const watched = await watch.stop();
      const code = (error as { code?: string }).code;
      if (code !== LOCK_NOT_AVAILABLE && code !== DEADLOCK_DETECTED) {
        const reason = code === '57014' ? `a statement ran longer than the statement timeout (${limits.statementTimeoutMs} ms)` : (error as Error).message;
        throw new MigrationError(`${what} failed and was rolled back: ${reason}`);
      }
      const blockers = error instanceof LocksNotTaken && error.blockers.length ? error.blockers : watched;
      const holders = blockers.length ? `blocked by ${blockers.map(describeBlocker).join('; ')}` : 'the blocking session ended before it could be named';
      if (attempt >= tries) {
        throw new MigrationError(
          `${what} not applied: no lock within ${limits.lockTimeoutMs} ms in ${tries} tries, ${holders}; nothing was changed. ` +
            'End or wait out those transactions, then run it again.',
        );
      }
      const delay = limits.retryDelayMs * 2 ** (attempt - 1);
      const failure = code === DEADLOCK_DETECTED ? 'deadlock' : `lock timeout (${limits.lockTimeoutMs} ms)`;
      options.onProgress?.(`${what}: ${failure} on try ${attempt} of ${tries}, ${holders}; trying again in ${delay} ms`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/**
 * Takes the locks of `locks` on the tables that exist, all or none, waiting
 * at most LOCK_STEP_MS per table at a time and trying again until
 * `timeoutMs` has passed. Never waiting long while holding a lock keeps the
 * migration out of deadlocks and out of the application's way.
 */
async function takeLocks(client: pg.Client, locks: LockPlan, timeoutMs: number): Promise<void> {
  const existing = async (tables: string[]) =>
    (await client.query<{ name: string }>(`SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NOT NULL`, [tables])).rows.map((r) => r.name);
  const exclusive = await existing(locks.exclusive);
  const referenced = await existing(locks.referenced);
  if (exclusive.length + referenced.length === 0) return;
  await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.min(LOCK_STEP_MS, timeoutMs)}ms`]);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await client.query('SAVEPOINT tys_locks');
    try {
      if (exclusive.length) await client.query(`LOCK TABLE ${exclusive.join(', ')} IN ACCESS EXCLUSIVE MODE`);
      if (referenced.length) await client.query(`LOCK TABLE ${referenced.join(', ')} IN SHARE ROW EXCLUSIVE MODE`);
      await client.query('RELEASE SAVEPOINT tys_locks');
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== LOCK_NOT_AVAILABLE && code !== DEADLOCK_DETECTED) throw error;
      await client.query('ROLLBACK TO SAVEPOINT tys_locks');
      if (Date.now() >= deadline) throw new LocksNotTaken(await lockHolders(client, exclusive, referenced));
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40));
    }
  }
}

/** Sessions holding a lock that conflicts with what takeLocks asks for. */
async function lockHolders(client: pg.Client, exclusive: string[], referenced: string[]): Promise<Blocker[]> {
  const rows = await client.query<{ pid: number; application_name: string; state: string | null; xact_seconds: number | null }>(
    `SELECT DISTINCT a.pid, a.application_name, a.state, floor(extract(epoch FROM now() - a.xact_start))::int AS xact_seconds, a.xact_start
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid()
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND (l.relation = ANY($1::text[]::regclass[])
             OR (l.relation = ANY($2::text[]::regclass[]) AND l.mode NOT IN ('AccessShareLock', 'RowShareLock')))
      ORDER BY a.xact_start`,
    [exclusive, referenced],
  );
  return rows.rows.map(toBlocker);
}

function definedOnly(options: Partial<LockLimits>): Partial<LockLimits> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

function toBlocker(row: { pid: number; application_name: string; state: string | null; xact_seconds: number | null }): Blocker {
  return { pid: row.pid, application: row.application_name || 'unnamed', state: row.state ?? 'unknown state', transactionSeconds: row.xact_seconds };
}

function describeBlocker(blocker: Blocker): string {
  const open = blocker.transactionSeconds === null ? 'no transaction open' : `transaction open ${blocker.transactionSeconds} s`;
  return `pid ${blocker.pid} (application "${blocker.application}", ${blocker.state}, ${open})`;
}

/**
 * Polls, on a connection of its own, which sessions block `pid` while it
 * waits: after a lock timeout, the waiting is over and Postgres no longer
 * says who held the lock.
 */
function watchBlockers(databaseUrl: string, pid: number, everyMs: number): { stop(): Promise<Blocker[]> } {
  const monitor = new pg.Client({ connectionString: databaseUrl, application_name: 'tys migrate (lock monitor)' });
  monitor.on('error', () => undefined);
  let seen: Blocker[] = [];
  let stopped = false;
  const connected = monitor.connect().then(
    () => true,
    () => false,
  );
  const poll = async () => {
    while (!stopped && (await connected)) {
      const rows = await monitor
        .query<{ pid: number; application_name: string; state: string | null; xact_seconds: number }>(
          `SELECT pid, application_name, state,
                  floor(extract(epoch FROM now() - xact_start))::int AS xact_seconds
             FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids($1)) ORDER BY xact_start`,
          [pid],
        )
        .catch(() => ({ rows: [] }));
      if (rows.rows.length > 0) seen = rows.rows.map(toBlocker);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  };
  const polling = poll();
  return {
    async stop() {
      stopped = true;
      await polling;
      await monitor.end().catch(() => undefined);
      return seen;
    },
  };
}
