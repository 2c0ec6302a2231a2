// npm run bench:follow -- [--n 100000] [--rounds 5] [--updates 2000] [--writes 20/1s] [--seconds 60] [--every 10s]
//
// Lots that follow the MVP application, measured in one run on one scratch
// database (tys_bench_follow, removed at the end):
// 1. a catch-up where nothing changed (`tys enqueue lots --changed`, which
//    reads the change log) against the full check (`--all`, which reads
//    every position and its lots): wall time of the whole command and rows
//    the server read for it;
// 2. the change-log trigger's cost to the application's own write (the MVP
//    code's purchase, an UPDATE of one position), in alternating rounds with
//    the trigger disabled and enabled: p50 and p99 of each;
// 3. the delay from an application write to its lots being in step, with the
//    application writing all along and a catch-up enqueued every --every.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { parseDuration } from '../src/config/duration.js';
import { parseRate } from '../src/config/rate.js';
import { PROJECT_ROOT } from '../src/project-root.js';
import { createPrisma } from '../src/db/prisma.js';
import { lotsFamily } from '../src/families/lots.js';
import { openFleet } from '../src/fleet/context.js';
import { scratchTarget } from './scratch.js';
import { integerOption, refuse, scriptOptions } from './script-options.js';
import { percentile } from './traffic.js';

const usage = `Usage: npm run bench:follow -- [options]

Seeds N MVP investments with their first lots into a scratch database
(tys_bench_follow, removed at the end) and measures in one run: a catch-up
where nothing changed against the full check, the change-log trigger's cost
to the application's writes, and the delay from a write to its lots being
in step while the application keeps writing.

Options:
  --n N             investments to seed (default 100000)
  --rounds N        rounds of each comparison (default 5)
  --updates N       application writes per arm of a trigger round (default 2000)
  --writes RATE     the application's writes during the delay run (default 20/1s)
  --seconds N       how long the application writes in the delay run (default 60)
  --every DURATION  a catch-up enqueued this often in the delay run (default 10s)
  -h, --help        this help`;

const values = scriptOptions('bench:follow', usage, {
  n: { type: 'string', default: '100000' },
  rounds: { type: 'string', default: '5' },
  updates: { type: 'string', default: '2000' },
  writes: { type: 'string', default: '20/1s' },
  seconds: { type: 'string', default: '60' },
  every: { type: 'string', default: '10s' },
});
const N = integerOption('bench:follow', 'n', values.n, 100);
const ROUNDS = integerOption('bench:follow', 'rounds', values.rounds, 1, 100);
const UPDATES = integerOption('bench:follow', 'updates', values.updates, 10);
const SECONDS = integerOption('bench:follow', 'seconds', values.seconds, 1);
const EVERY_MS = parseDuration(values.every) ?? refuse('bench:follow', `--every must look like 10s or 1m, got "${values.every}"`);
let writes: { max: number; windowMs: number };
try {
  writes = parseRate(values.writes);
} catch (error) {
  refuse('bench:follow', `--writes: ${(error as Error).message}`);
}

const scratch = scratchTarget('tys_bench_follow', 'tys-bench-follow');
const { dbUrl, redisUrl: REDIS_URL, prefix: PREFIX, env } = scratch;
const log = (line: string) => process.stderr.write(`${line}\n`);
const seconds = () => Number(process.hrtime.bigint()) / 1e9;
const median = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

const db = new pg.Client({ connectionString: dbUrl.toString(), application_name: 'bench-follow' });

/** The first lots of every position, by the fleet, then an empty change log: the state a follow starts from. */
async function setup(): Promise<void> {
  await scratch.seed(N);
  await db.connect();
  const fleet = await openFleet({ databaseUrl: dbUrl.toString(), redisUrl: REDIS_URL, queuePrefix: PREFIX });
  try {
    fleet.startWorkers([lotsFamily]);
    const { runId } = await fleet.enqueue(lotsFamily, { kind: 'all' });
    for (;;) {
      const run = await fleet.runs.get(runId!);
      if (run?.finishedAt) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await fleet.close();
  }
  const { rows } = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM "FleetLotChange"`);
  if (rows[0]!.n !== '0') throw new Error(`the first lots left ${rows[0]!.n} logged changes`);
  await db.query('VACUUM ANALYZE');
}

/** Rows the server has read from the tables a catch-up reads, by sequential and index scans. */
async function rowsRead(): Promise<number> {
  await db.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await db.query<{ n: string }>(`
    SELECT (sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)))::text AS n FROM pg_stat_user_tables
     WHERE relname IN ('Investment', 'Portfolio', 'TaxLot', 'FleetLotChange', 'AuditLog')`);
  return Number(rows[0]!.n);
}

/** One `tys enqueue lots` as the operator runs it; its server session has ended (and flushed its figures) when it resolves. */
async function enqueue(scope: '--changed' | '--all'): Promise<{ seconds: number; rows: number; found: number }> {
  const before = await rowsRead();
  const started = seconds();
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'tys.js'), 'enqueue', 'lots', scope], {
    env,
    cwd: PROJECT_ROOT,
  });
  const elapsed = seconds() - started;
  // A session's figures reach the shared counters as it ends, which can come a moment after the process exits.
  let rows = 0;
  for (let tries = 0; tries < 20; tries += 1) {
    rows = (await rowsRead()) - before;
    if (rows > 0 || scope === '--changed') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const added = /added (\d+) jobs/.exec(stdout);
  if (!added) throw new Error(`tys enqueue lots ${scope} said: ${stdout.trim()}`);
  return { seconds: elapsed, rows, found: Number(added[1]) };
}

async function unchangedCatchUp() {
  const changed: { seconds: number; rows: number; found: number }[] = [];
  const full: { seconds: number; rows: number; found: number }[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    // Alternating which goes first, so that neither always runs on a warmer cache.
    const order = round % 2 === 0 ? (['--changed', '--all'] as const) : (['--all', '--changed'] as const);
    for (const scope of order) (scope === '--changed' ? changed : full).push(await enqueue(scope));
  }
  for (const run of [...changed, ...full]) if (run.found !== 0) throw new Error(`a catch-up over unchanged positions found ${run.found}`);
  const summary = (runs: typeof changed) => ({ seconds: +median(runs.map((r) => r.seconds)).toFixed(3), rowsRead: median(runs.map((r) => r.rows)) });
  return { changed: summary(changed), full: summary(full) };
}

/** The MVP code's purchase: one position's quantity and average, in a statement of its own. */
const PURCHASE = `
  UPDATE "Investment" SET "averageCostBasis" = round(("totalQuantity" * "averageCostBasis" + 0.5 * 101.25) / ("totalQuantity" + 0.5), 8),
                          "totalQuantity" = "totalQuantity" + 0.5, "updatedAt" = now() WHERE id = $1 RETURNING id`;
/** The MVP code's sale, on a position that holds more than it sells. */
const SALE = `UPDATE "Investment" SET "totalQuantity" = "totalQuantity" - 0.25, "updatedAt" = now() WHERE id = $1 AND "totalQuantity" > 1 RETURNING id`;

async function investmentIds(): Promise<string[]> {
  return (await db.query<{ id: string }>(`SELECT id FROM "Investment" ORDER BY id`)).rows.map((row) => row.id);
}

async function triggerCost(ids: string[]) {
  const arms = { without: [] as number[], with: [] as number[] };
  const triggers = ['Investment_fleet_lot_update', 'Investment_fleet_lot_insert'];
  const setTriggers = (enabled: boolean) =>
    Promise.all(triggers.map((t) => db.query(`ALTER TABLE "Investment" ${enabled ? 'ENABLE' : 'DISABLE'} TRIGGER "${t}"`)));
  let n = 0;
  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      const order = round % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const);
      for (const arm of order) {
        await setTriggers(arm === 'with');
        for (let i = 0; i < UPDATES; i += 1) {
          const id = ids[(n += 7919) % ids.length]!;
          const started = process.hrtime.bigint();
          await db.query(PURCHASE, [id]);
          arms[arm].push(Number(process.hrtime.bigint() - started) / 1e6);
        }
      }
    }
  } finally {
    await setTriggers(true);
  }
  const stats = (ms: number[]) => {
    const sorted = [...ms].sort((a, b) => a - b);
    return { p50: +percentile(sorted, 50).toFixed(3), p99: +percentile(sorted, 99).toFixed(3) };
  };
  // These purchases' lots are not the delay run's business: it starts from lots in step.
  await db.query(`TRUNCATE "FleetLotChange"`);
  return { updates: UPDATES * ROUNDS, without: stats(arms.without), with: stats(arms.with) };
}

function startWorker(): ChildProcess {
  return spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'tys.js'), 'worker', '--families', 'lots'], { env, cwd: PROJECT_ROOT, stdio: 'inherit' });
}

/**
 * The application writes at the given rate; a catch-up is enqueued every
 * EVERY_MS; each write is in step once its logged change is gone (the
 * catch-up deletes it in the transaction that applies it).
 */
async function followDelay(ids: string[]) {
  const worker = startWorker();
  const fleet = await openFleet({ databaseUrl: dbUrl.toString(), redisUrl: REDIS_URL, queuePrefix: PREFIX });
  const writer = new pg.Client({ connectionString: dbUrl.toString(), application_name: 'the-mvp-application' });
  await writer.connect();
  const pending = new Map<string, number>();
  const delays: number[] = [];
  let catchUps = 0;
  try {
    const timer = setInterval(() => {
      catchUps += 1;
      fleet.enqueue(lotsFamily, { kind: 'changed' }).catch((error: Error) => log(`catch-up: ${error.message}`));
    }, EVERY_MS);
    const look = async () => {
      if (pending.size === 0) return;
      const { rows } = await db.query<{ id: string }>(`SELECT id::text AS id FROM "FleetLotChange" WHERE id = ANY($1::bigint[])`, [[...pending.keys()]]);
      const left = new Set(rows.map((row) => row.id));
      const at = seconds();
      for (const [id, writtenAt] of pending) {
        if (left.has(id)) continue;
        delays.push(at - writtenAt);
        pending.delete(id);
      }
    };
    const ends = seconds() + SECONDS;
    const gap = writes.windowMs / 1000 / writes.max;
    for (let n = 0, next = seconds(); seconds() < ends; n += 1) {
      const id = ids[(n * 104_729) % ids.length]!;
      const { rowCount } = await writer.query(n % 3 === 2 ? SALE : PURCHASE, [id]);
      if (rowCount) {
        const { rows } = await writer.query<{ id: string }>(`SELECT currval(pg_get_serial_sequence('"FleetLotChange"', 'id'))::text AS id`);
        pending.set(rows[0]!.id, seconds());
      }
      await look();
      next += gap;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, (next - seconds()) * 1000)));
    }
    const deadline = seconds() + 10 * (EVERY_MS / 1000) + 60;
    while (pending.size > 0 && seconds() < deadline) {
      await look();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    clearInterval(timer);
    if (pending.size > 0) throw new Error(`${pending.size} write(s) were not in step ${((deadline - SECONDS) / 60).toFixed(0)} min after the writes stopped`);
  } finally {
    await writer.end();
    await fleet.close();
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
  const verify = await lotsFamily.verify!(createPrisma(dbUrl.toString()));
  const sorted = [...delays].sort((a, b) => a - b);
  return {
    writes: delays.length,
    catchUps,
    p50: +percentile(sorted, 50).toFixed(2),
    p99: +percentile(sorted, 99).toFixed(2),
    max: +sorted[sorted.length - 1]!.toFixed(2),
    verified: verify.ok,
  };
}

try {
  log(`1/4 seeding ${N} investments and their first lots...`);
  await setup();
  const ids = await investmentIds();
  log(`2/4 a catch-up over ${N} unchanged positions against the full check, ${ROUNDS} rounds...`);
  const unchanged = await unchangedCatchUp();
  log(`3/4 the application writing for ${SECONDS} s at ${values.writes}, a catch-up every ${values.every}...`);
  const delay = await followDelay(ids);
  log(`4/4 the trigger's cost to the application's purchase, ${ROUNDS} rounds of ${UPDATES} writes per arm...`);
  const trigger = await triggerCost(ids);
  const rows: [string, string][] = [
    [`catch-up over ${N} unchanged positions (--changed)`, `${unchanged.changed.seconds} s, ${unchanged.changed.rowsRead} rows read`],
    [`full check over the same (--all)`, `${unchanged.full.seconds} s, ${unchanged.full.rowsRead} rows read`],
    [
      `write to lots in step, catch-up every ${values.every}`,
      `p50 ${delay.p50} s, p99 ${delay.p99} s, max ${delay.max} s (${delay.writes} writes, ${delay.catchUps} catch-ups, verify ${delay.verified ? 'ok' : 'FAILED'})`,
    ],
    [`application purchase without the trigger`, `p50 ${trigger.without.p50} ms, p99 ${trigger.without.p99} ms`],
    [
      `application purchase with the trigger`,
      `p50 ${trigger.with.p50} ms, p99 ${trigger.with.p99} ms (p99 x${(trigger.with.p99 / trigger.without.p99).toFixed(2)})`,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log('');
  for (const [k, v] of rows) console.log(`| ${k.padEnd(width)} | ${v} |`);
  console.log(`\n${JSON.stringify({ at: new Date().toISOString(), n: N, rounds: ROUNDS, unchanged, delay, trigger })}`);
} finally {
  await db.end().catch(() => undefined);
  const redis = new Redis(REDIS_URL);
  await scratch.clearRedis(redis);
  redis.disconnect();
  await scratch.dropDatabase();
}
