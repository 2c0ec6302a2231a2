// npm run bench:notes -- [--n 20000] [--bad 0.5] [--rounds 5]
//
// What keeping a note of every failed and skipped job (FleetJobOutcome)
// costs the fleet's throughput, measured in one run on the same data: a
// lots run over N investments of which a share breaks a phase 4 rule (the
// lots family refuses those, each failure leaving a note), with the notes
// written and with them left out, alternating, round after round. The
// workers and the producer run in this process, so the two arms differ in
// nothing but the notes.
import { Redis } from 'ioredis';
import { createPrisma } from '../src/db/prisma.js';
import { seedMvp } from '../src/demo/seed.js';
import { lotsFamily } from '../src/families/lots.js';
import { loadConfig } from '../src/config/env.js';
import { openFleet } from '../src/fleet/context.js';
import { deployMigrations } from '../src/db/migrate/deploy.js';
import { scratchTarget } from './scratch.js';
import { integerOption, refuse, scriptOptions } from './script-options.js';

const usage = `Usage: npm run bench:notes -- [options]

Times a lots run over investments of which a share is refused, with the
notes of failed jobs written and without them, alternating, in one run on
the same data (scratch database tys_bench_notes, removed at the end).

Options:
  --n N         investments (default 20000)
  --bad SHARE   share refused, from 0.01 to 1 (default 0.5)
  --rounds K    rounds of both arms, after one not counted (default 5)
  -h, --help    this help`;

const values = scriptOptions('bench:notes', usage, {
  n: { type: 'string', default: '20000' },
  bad: { type: 'string', default: '0.5' },
  rounds: { type: 'string', default: '5' },
});
const N = integerOption('bench:notes', 'n', values.n, 100);
const ROUNDS = integerOption('bench:notes', 'rounds', values.rounds, 1, 20);
const BAD = Number(values.bad);
if (!(BAD >= 0.01 && BAD <= 1)) refuse('bench:notes', `--bad must be a share from 0.01 to 1, got "${values.bad}"`);

const scratch = scratchTarget('tys_bench_notes', 'tys-bench-notes');
const redis = new Redis(scratch.redisUrl);
await scratch.dropDatabase();
await deployMigrations(scratch.dbUrl.toString(), { createDatabase: true });
const seeding = createPrisma(scratch.dbUrl.toString());
await seedMvp(seeding, { investments: N, badQuantityRate: BAD });
await seeding.$disconnect();

const fleet = await openFleet(loadConfig(scratch.env));
const outcomes = fleet.runs.outcomes;
const note = outcomes.note.bind(outcomes);
const results: { arm: 'notes' | 'none'; seconds: number; failed: number; notes: number }[] = [];

/** One lots run from a clean slate (no lots, no notes, no jobs), timed from enqueue to its end. */
async function runOnce(arm: 'notes' | 'none') {
  await fleet.prisma.$executeRawUnsafe('TRUNCATE "TaxLot", "TaxLotAllocation", "FleetJobOutcome", "FleetRun", "AuditLog", "FleetLotChange"');
  await scratch.clearRedis(redis);
  outcomes.note = arm === 'notes' ? note : () => Promise.resolve();
  const workers = fleet.startWorkers([lotsFamily]);
  const started = process.hrtime.bigint();
  const { runId } = await fleet.enqueue(lotsFamily, { kind: 'all' });
  for (;;) {
    const run = await fleet.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId! }, select: { finishedAt: true, failed: true } });
    if (run.finishedAt) {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      results.push({ arm, seconds, failed: run.failed, notes: await fleet.prisma.fleetJobOutcome.count() });
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await workers.close();
}

try {
  // A first run of each arm, not counted: the first run of a process pays for its connections and its JIT.
  await runOnce('notes');
  await runOnce('none');
  results.length = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // Which arm goes first alternates, so that neither always runs on a warmer cache.
    for (const arm of round % 2 === 0 ? (['notes', 'none'] as const) : (['none', 'notes'] as const)) {
      await runOnce(arm);
      const last = results.at(-1)!;
      process.stderr.write(`round ${round + 1} ${arm}: ${(N / last.seconds).toFixed(0)} jobs/s (${last.failed} failed, ${last.notes} notes)\n`);
    }
  }
} finally {
  await fleet.close();
  await scratch.clearRedis(redis);
  redis.disconnect();
  await scratch.dropDatabase();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ratesOf = (arm: 'notes' | 'none') => results.filter((r) => r.arm === arm).map((r) => N / r.seconds);
// Each round's two runs side by side: the machine drifts from round to round more than the arms differ.
const paired = ratesOf('notes').map((rate, i) => rate / ratesOf('none')[i]!);
console.log(
  JSON.stringify(
    {
      n: N,
      refused: results[0]!.failed,
      rounds: ROUNDS,
      jobsPerSecond: { withNotes: Math.round(median(ratesOf('notes'))), withoutNotes: Math.round(median(ratesOf('none'))) },
      pairedRatios: paired.map((ratio) => +ratio.toFixed(3)),
      cost: `${(100 * (1 - median(paired))).toFixed(1)}% (median of the rounds' paired ratios)`,
    },
    null,
    2,
  ),
);
