import { loadConfig } from '../config/env.js';
import { deployMigrations, migrationStatus, revertMigrations } from '../db/migrations.js';
import { defineCommand, UsageError } from './command.js';

const help = `Usage: tys migrate [status | down --to NAME] [--json]

  tys migrate               create the database if needed and apply pending
                            migrations, recorded in Prisma's _prisma_migrations
  tys migrate status        list migrations: applied, pending, modified since
                            applied; exit 1 when any is pending or modified
  tys migrate down --to N   revert applied migrations newer than N with their
                            down.sql, newest first; N = "empty" reverts all

Options:
  --json                    machine-readable output (status)
  -h, --help                this help

Environment: DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/tys)`;

export const migrateCommand = defineCommand({
  name: 'migrate',
  summary: 'apply, list or revert the schema migrations',
  help,
  options: {
      json: { type: 'boolean' },
      to: { type: 'string' },
    },
  async run({ values, positionals }, io) {
    const config = loadConfig();
    const [action = 'up', ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`tys migrate: unexpected argument "${extra[0]}". See "tys migrate --help".`);
    if (action === 'up') {
      const applied = await deployMigrations(config.databaseUrl);
      for (const name of applied) io.out(`applied ${name}`);
      const states = await migrationStatus(config.databaseUrl);
      io.out(`${states.filter((s) => s.appliedAt).length} of ${states.length} migrations applied; database is up to date`);
      return 0;
    }
    if (action === 'status') {
      const states = await migrationStatus(config.databaseUrl);
      const pending = states.filter((s) => !s.appliedAt);
      const modified = states.filter((s) => s.modified);
      if (values.json) {
        io.out(JSON.stringify({ migrations: states, upToDate: pending.length === 0 && modified.length === 0 }, null, 2));
      } else {
        for (const state of states) {
          const mark = state.modified ? 'MODIFIED' : state.appliedAt ? 'applied ' : 'pending ';
          io.out(`${mark}  ${state.name}${state.appliedAt ? `  (${state.appliedAt.toISOString()})` : ''}`);
        }
        io.out(
          pending.length === 0 && modified.length === 0
            ? 'Database schema is up to date.'
            : `${pending.length} pending, ${modified.length} modified since applied.`,
        );
      }
      return pending.length === 0 && modified.length === 0 ? 0 : 1;
    }
    if (action === 'down') {
      if (!values.to) throw new UsageError('tys migrate down: --to NAME is required (a migration name, or "empty")');
      const reverted = await revertMigrations(config.databaseUrl, values.to);
      io.out(reverted.length ? `reverted: ${reverted.join(', ')}` : 'nothing to revert');
      return 0;
    }
    throw new UsageError(`tys migrate: unknown action "${action}" (expected status or down). See "tys migrate --help".`);
  },
});
