import { deployMigrations } from '../db/migrate/deploy.js';
import { seedMvp } from '../demo/seed.js';
import { lotsFamily } from '../families/lots.js';
import { openFleet } from '../fleet/context.js';
import { defineCommand, integerFlag } from './command.js';
import { waitForRun } from './progress.js';

const help = `Usage: tys demo [--investments N]

Shows the fleet end to end on the database of DATABASE_URL: applies the
migrations, seeds N MVP investments (default 5000) when the database has
none, runs lot workers in this process, enqueues the lots family with a
progress bar and prints the verification. Refuses to seed a database that
already holds investments.

Options:
  --investments N   investments to seed (default 5000, at most 1000000)
  -h, --help        this help`;

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'migrate, seed demo data and run the lots family end to end',
  help,
  options: { investments: { type: 'string' } },
  positionals: false,
  async run({ values, config }, io) {
    const count = integerFlag('demo', 'investments', values.investments, 1, 1_000_000) ?? 5_000;
    const { applied } = await deployMigrations(config.databaseUrl, { createDatabase: true });
    io.out(`migrations: ${applied.length} applied, database up to date`);
    const fleet = await openFleet(config);
    fleet.startWorkers([lotsFamily]);
    try {
      const existing = await fleet.prisma.investment.count();
      if (existing > 0) {
        io.err(`error: the database already holds ${existing} investments; tys demo seeds only an empty one (use tys enqueue lots --all on real data)`);
        return 1;
      }
      await seedMvp(fleet.prisma, { investments: count });
      io.out(`seeded ${count} MVP investments`);
      const result = await fleet.enqueue(lotsFamily);
      io.out(`run ${result.runId}: added ${result.added} lot jobs`);
      const outcome = await waitForRun(fleet.runs, lotsFamily.name, result.runId!, io, { lineEveryMs: 1_000 });
      if (outcome.ended !== 'finished') {
        io.err('error: Redis lost the run');
        return 1;
      }
      const report = await lotsFamily.verify!(fleet.prisma);
      io.out(report.ok ? `verify lots: OK, ${report.checked} investments, one exact lot each` : `verify lots: FAILED, ${report.problemCount} wrong`);
      return report.ok ? 0 : 1;
    } finally {
      await fleet.close();
    }
  },
});
