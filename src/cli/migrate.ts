import { parseDuration } from '../config/duration.js';
import { AdoptionRefused } from '../db/migrate/adopt.js';
import { deployMigrations } from '../db/migrate/deploy.js';
import { listMigrationFiles } from '../db/migrate/files.js';
import { planRevert, revertMigrations, type RevertPlan } from '../db/migrate/revert.js';
import { migrationStatus } from '../db/migrate/status.js';
import type { LockLimits } from '../db/lock-retry.js';
import { defineCommand, integerFlag, UsageError, type CommandIo } from './command.js';
import { confirmByTyping } from './confirm.js';

const help = `Usage: tys migrate [--to NAME | status | down --to NAME] [options]

  tys migrate [--to N]      apply pending migrations (up to N and no further
                            with --to), recorded in Prisma's
                            _prisma_migrations. A database that has the MVP
                            tables and no migration history is adopted first:
                            its schema is compared with the baseline migration;
                            when they match, the baseline is recorded as
                            applied; when they differ, the differences are
                            listed and nothing changes (exit 1)
  tys migrate status        list migrations: applied, pending, modified since
                            applied; "not adopted yet" for an MVP database
                            without history; exit 1 unless up to date
  tys migrate down --to N   revert applied migrations newer than N with their
                            down.sql, newest first; N = "empty" reverts all.
                            Lists what it drops and the rows each holds, and
                            changes nothing without --yes (or the database's
                            name typed at the prompt)

Options:
  --create-database         create the database when the server lacks it
                            (default: a missing database is an error)
  --baseline                adopt a database whose schema differs from the
                            baseline: create the baseline's missing indexes,
                            record the baseline, go on; asks first
  --yes                     consent given: no prompt (for scripts)
  --archive-sales           let a rollback of the tax-lot phase that finds
                            sales keep them, their allocations and the lots in
                            Archived* tables (default: such a rollback refuses)
  --lock-timeout DURATION   longest wait for a table lock per try (default 5s)
  --lock-retries N          tries again after a lock timeout, with backoff
                            (default 3); the blocking sessions are named
  --statement-timeout DURATION
                            longest a single statement may run (default 10m)
  --json                    machine-readable output (status)
  -h, --help                this help

Environment: DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/tys)`;

function durationFlag(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const ms = parseDuration(raw);
  if (ms === null || ms < 1) throw new UsageError(`tys migrate: --${flag} must look like 500ms, 5s or 10m, got "${raw}"`);
  return ms;
}

function describePlan(plan: RevertPlan, database: string): string[] {
  const lines = [`tys migrate down would revert ${plan.migrations.length} migration(s) on database "${database}":`];
  for (const migration of plan.migrations) {
    const drops = migration.drops.map((d) => (d.rows === null ? d.what : `${d.what} (${d.rows} ${d.what.startsWith('column') ? 'values' : 'rows'})`));
    lines.push(`  ${migration.name}: drops ${drops.join(', ') || 'nothing'}`);
  }
  return lines;
}

async function consent(io: CommandIo, yes: boolean | undefined, question: string, database: string): Promise<boolean> {
  return Boolean(yes) || confirmByTyping(io, question, database);
}

export const migrateCommand = defineCommand({
  name: 'migrate',
  summary: 'apply, list or revert the schema migrations; adopt an MVP database',
  help,
  options: {
    json: { type: 'boolean' },
    to: { type: 'string' },
    'create-database': { type: 'boolean' },
    baseline: { type: 'boolean' },
    yes: { type: 'boolean' },
    'archive-sales': { type: 'boolean' },
    'lock-timeout': { type: 'string' },
    'lock-retries': { type: 'string' },
    'statement-timeout': { type: 'string' },
  },
  async run({ values, positionals, config, target, json }, io) {
    const [action = 'up', ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`tys migrate: unexpected argument "${extra[0]}". See "tys migrate --help".`);
    const database = target.postgres.database;
    const limits: Partial<LockLimits> = {
      lockTimeoutMs: durationFlag('lock-timeout', values['lock-timeout']),
      statementTimeoutMs: durationFlag('statement-timeout', values['statement-timeout']),
      lockRetries: integerFlag('migrate', 'lock-retries', values['lock-retries'], 0, 100),
    };
    const onProgress = (line: string) => io.out(line);

    if (action === 'up') {
      if (values.to !== undefined && !listMigrationFiles().some((file) => file.name === values.to)) {
        throw new UsageError(`tys migrate: --to "${values.to}" names no migration (tys migrate status lists them)`);
      }
      const options = { ...limits, createDatabase: values['create-database'], onProgress, to: values.to };
      let result;
      try {
        result = await deployMigrations(config.databaseUrl, options);
      } catch (error) {
        if (!(error instanceof AdoptionRefused)) throw error;
        io.err(`error: database "${database}" has the MVP tables and no migration history, but ${error.message}:`);
        for (const line of error.differences) io.err(`  ${line}`);
        if (!values.baseline) {
          io.err('Adopt it anyway with: tys migrate --baseline (creates missing indexes, records the baseline, then migrates)');
          return 1;
        }
        if (!(await consent(io, values.yes, `Adopt "${database}" with these differences?`, database))) {
          io.err('nothing changed: confirm at the prompt, or add --yes');
          return 1;
        }
        result = await deployMigrations(config.databaseUrl, { ...options, adoptAnyway: true });
      }
      if (result.adopted) {
        const created = result.adopted.createdIndexes;
        io.out(`adopted database "${database}": recorded the MVP baseline as applied${created.length ? `; created ${created.join(', ')}` : ''}`);
      }
      for (const name of result.applied) io.out(`applied ${name}`);
      const { migrations } = await migrationStatus(config.databaseUrl);
      const appliedCount = migrations.filter((s) => s.appliedAt).length;
      io.out(
        `${appliedCount} of ${migrations.length} migrations applied; ` +
          (appliedCount === migrations.length ? 'database is up to date' : `${migrations.length - appliedCount} pending after ${values.to}`),
      );
      return 0;
    }
    if (action === 'status') {
      const { migrations, notAdopted } = await migrationStatus(config.databaseUrl);
      const pending = migrations.filter((s) => !s.appliedAt);
      const modified = migrations.filter((s) => s.modified);
      const upToDate = pending.length === 0 && modified.length === 0;
      if (values.json) {
        json({ migrations, notAdopted, upToDate });
      } else {
        for (const state of migrations) {
          const mark = state.modified ? 'MODIFIED' : state.appliedAt ? 'applied ' : 'pending ';
          io.out(`${mark}  ${state.name}${state.appliedAt ? `  (${state.appliedAt.toISOString()})` : ''}`);
        }
        if (notAdopted) io.out('not adopted yet: the database has the MVP tables and no migration history; "tys migrate" adopts it');
        io.out(upToDate ? 'Database schema is up to date.' : `${pending.length} pending, ${modified.length} modified since applied.`);
      }
      return upToDate ? 0 : 1;
    }
    if (action === 'down') {
      if (!values.to) throw new UsageError('tys migrate down: --to NAME is required (a migration name, or "empty")');
      if (values.to !== 'empty' && !listMigrationFiles().some((file) => file.name === values.to)) {
        throw new UsageError(`tys migrate down: --to "${values.to.slice(0, 80)}" names no migration (tys migrate status lists them)`);
      }
      const plan = await planRevert(config.databaseUrl, values.to);
      if (plan.migrations.length === 0) {
        io.out('nothing to revert');
        return 0;
      }
      for (const line of describePlan(plan, database)) io.out(line);
      if (plan.sales && (plan.sales.sales > 0 || plan.sales.allocations > 0) && !values['archive-sales']) {
        io.err(
          `error: the tax-lot tables hold ${plan.sales.sales} sales and ${plan.sales.allocations} allocations; ` +
            'nothing changed. Add --archive-sales to keep them in archive tables',
        );
        return 1;
      }
      if (!(await consent(io, values.yes, 'This drops the data listed above.', database))) {
        io.err('nothing changed: add --yes to revert (or type the database name at the prompt)');
        return 1;
      }
      const reverted = await revertMigrations(config.databaseUrl, values.to, { ...limits, archiveSales: values['archive-sales'], onProgress });
      io.out(`reverted: ${reverted.join(', ')}`);
      return 0;
    }
    throw new UsageError(`tys migrate: unknown action "${action}" (expected status or down). See "tys migrate --help".`);
  },
});
