import pg from 'pg';
import { MigrationError } from './migration-error.js';

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

/**
 * Runs `body` in a transaction under the lock and statement timeouts; when
 * it times out on a lock, rolls back, names the sessions that held the lock
 * and tries again after a pause. After the last try: a MigrationError,
 * with nothing of `body` applied.
 */
export async function withLockRetries(
  client: pg.Client,
  databaseUrl: string,
  what: string,
  options: Partial<LockLimits> & { onProgress?: (line: string) => void },
  body: () => Promise<void>,
): Promise<void> {
  const limits = { ...DEFAULT_LOCK_LIMITS, ...definedOnly(options) };
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const tries = limits.lockRetries + 1;
  for (let attempt = 1; ; attempt++) {
    const watch = watchBlockers(databaseUrl, pid, Math.min(200, Math.max(20, limits.lockTimeoutMs / 5)));
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`, [
        `${limits.lockTimeoutMs}ms`,
        `${limits.statementTimeoutMs}ms`,
      ]);
      await body();
      await client.query('COMMIT');
      await watch.stop();
      return;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      const blockers = await watch.stop();
      const code = (error as { code?: string }).code;
      if (code !== LOCK_NOT_AVAILABLE) {
        const reason = code === '57014' ? `a statement ran longer than the statement timeout (${limits.statementTimeoutMs} ms)` : (error as Error).message;
        throw new MigrationError(`${what} failed and was rolled back: ${reason}`);
      }
      const holders = blockers.length ? `blocked by ${blockers.map(describeBlocker).join('; ')}` : 'the blocking session ended before it could be named';
      if (attempt >= tries) {
        throw new MigrationError(
          `${what} not applied: no lock within ${limits.lockTimeoutMs} ms in ${tries} tries, ${holders}; nothing was changed. ` +
            'End or wait out those transactions, then run it again.',
        );
      }
      const delay = limits.retryDelayMs * 2 ** (attempt - 1);
      options.onProgress?.(`${what}: lock timeout (${limits.lockTimeoutMs} ms) on try ${attempt} of ${tries}, ${holders}; trying again in ${delay} ms`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

function definedOnly(options: Partial<LockLimits>): Partial<LockLimits> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
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
      if (rows.rows.length > 0) {
        seen = rows.rows.map((row) => ({
          pid: row.pid,
          application: row.application_name || 'unnamed',
          state: row.state ?? 'unknown state',
          transactionSeconds: row.xact_seconds,
        }));
      }
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
