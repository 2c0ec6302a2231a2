import { createPrisma } from '../db/prisma.js';
import { families } from '../families/index.js';
import { defineCommand, UsageError } from './command.js';
import { requireFamily } from './families.js';

const verifiable = families.filter((f) => f.verify).map((f) => f.name);

const help = `Usage: tys verify <family> [--json]

Checks over the whole database that the family's work is complete and exact.
Exit status 0 when it is, 1 when any row is wrong (the first 100 are listed).

Families: ${verifiable.join(', ')}
  lots          every investment has tax lots, and the sum of their
                remainingQuantity equals its totalQuantity exactly (no tolerance)
  constraints   no Investment or TaxLot row breaks a phase 4 constraint

Options:
  --json       machine-readable report
  -h, --help   this help`;

export const verifyCommand = defineCommand({
  name: 'verify',
  summary: "check that a family's work is complete and exact",
  help,
  options: { json: { type: 'boolean' } },
  async run({ values, positionals, config, json }, io) {
    const family = requireFamily('verify', positionals[0]);
    if (!family.verify) throw new UsageError(`tys verify: family ${family.name} has no verification (families that do: ${verifiable.join(', ')})`);
    const prisma = createPrisma(config.databaseUrl);
    try {
      const report = await family.verify(prisma);
      if (values.json) json(report);
      else if (report.ok) io.out(`verify ${family.name}: OK, ${report.checked} rows checked`);
      else {
        io.out(`verify ${family.name}: FAILED, ${report.problemCount} of ${report.checked} rows wrong`);
        for (const problem of report.problems) io.out(`  ${problem.id}: ${problem.problem}`);
        if (report.problemCount > report.problems.length) io.out(`  ... and ${report.problemCount - report.problems.length} more`);
      }
      return report.ok ? 0 : 1;
    } finally {
      await prisma.$disconnect();
    }
  },
});
