import { createPrisma } from '../db/prisma.js';
import { verifySchema } from '../fleet/verify-schema.js';
import { families } from '../families/index.js';
import type { VerifyReport } from '../fleet/family.js';
import { redisTarget } from '../config/env.js';
import { checkDatabase, connectProducer, producerConnection } from '../redis/connection.js';
import { keyLayout } from '../redis/key-layout.js';
import { defineCommand, UsageError, type CommandIo } from './command.js';
import { requireFamily, wrapped } from './families.js';

const verifiable = families.filter((f) => f.verify);
const CHECKS = ['schema', ...verifiable.map((f) => f.name)];

const help = `Usage: tys verify (<check> | --all) [--json]

Checks over the whole database that a phase's work is complete and exact,
as the Migration Strategy asks after every phase. Exit status 0 when it is,
1 when anything is wrong (the first 100 offenders are listed).

Checks:
  schema              every migration applied and unmodified since; every
                      CHECK constraint they add present and validated
${verifiable.map((f) => wrapped(f.name, f.verifyHelp ?? f.description)).join('\n')}

Options:
  --all        every check above, one after the other
  --json       machine-readable report
  -h, --help   this help`;

export const verifyCommand = defineCommand({
  name: 'verify',
  summary: "check that each phase's work is complete and exact",
  help,
  options: { all: { type: 'boolean' }, json: { type: 'boolean' } },
  async run({ values, positionals, config, json }, io) {
    if (values.all && positionals.length > 0) throw new UsageError('tys verify: give a check or --all, not both');
    if (!values.all && positionals.length !== 1) throw new UsageError(`tys verify: name one check (${CHECKS.join(', ')}) or --all`);
    const names = values.all ? CHECKS : positionals;
    for (const name of names) {
      if (name === 'schema') continue;
      const family = requireFamily('verify', name);
      if (!family.verify) throw new UsageError(`tys verify: family ${family.name} has no verification (checks: ${CHECKS.join(', ')})`);
    }
    const prisma = createPrisma(config.databaseUrl);
    // What the fleet remembers in Redis (tickers the provider has no data for)
    // excuses rows; read only. The checks are the database's: without Redis
    // they still run, only stricter.
    const target = redisTarget(config);
    const redis = await connectProducer(producerConnection(target), target).catch((error: Error) => {
      io.err(`warning: ${error.message}; rows Redis would excuse (tickers without provider data) count as wrong`);
      return null;
    });
    // A database the server does not have is a wrong setting, not an unreachable Redis.
    if (redis) {
      try {
        await checkDatabase(redis, target);
      } catch (error) {
        redis.disconnect();
        throw error;
      }
    }
    const context = redis ? { redis, prefix: keyLayout(config).shared } : undefined;
    try {
      const reports: (VerifyReport & { check: string })[] = [];
      for (const name of names) {
        const report = name === 'schema' ? await verifySchema(config.databaseUrl) : await requireFamily('verify', name).verify!(prisma, context);
        reports.push({ check: name, ...report });
        if (!values.json) print(io, name, report);
      }
      const ok = reports.every((r) => r.ok);
      if (values.json) json(values.all ? { ok, checks: reports } : reports[0]!);
      else if (values.all)
        io.out(
          ok
            ? `verify: all ${reports.length} checks OK`
            : `verify: ${reports
                .filter((r) => !r.ok)
                .map((r) => r.check)
                .join(', ')} FAILED`,
        );
      return ok ? 0 : 1;
    } finally {
      redis?.disconnect();
      await prisma.$disconnect();
    }
  },
});

function print(io: CommandIo, name: string, report: VerifyReport): void {
  const what = name === 'schema' ? 'migrations and constraints' : 'rows';
  if (report.ok) {
    io.out(`verify ${name}: OK, ${report.checked} ${what} checked`);
    return;
  }
  io.out(`verify ${name}: FAILED, ${report.problemCount} of ${report.checked} ${what} wrong`);
  for (const problem of report.problems) io.out(`  ${problem.id}: ${problem.problem}`);
  if (report.problemCount > report.problems.length) io.out(`  ... and ${report.problemCount - report.problems.length} more`);
}
