import { createPrisma } from '../db/prisma.js';
import { auditConstraints, validateConstraints } from '../families/constraints.js';
import { defineCommand, UsageError } from './command.js';

const help = `Usage: tys validate constraints [--json]

Runs ALTER TABLE ... VALIDATE CONSTRAINT for each phase 4 constraint that is
not yet valid, then reads pg_constraint.convalidated back. Refuses, with exit
status 1 and the audit's counts, while any row still breaks a constraint: fix
them first with "tys enqueue constraints --all --wait".

Options:
  --json       machine-readable report
  -h, --help   this help`;

export const validateCommand = defineCommand({
  name: 'validate',
  summary: 'validate the phase 4 constraints once the data is clean',
  help,
  options: { json: { type: 'boolean' } },
  async run({ values, positionals, config, json }, io) {
    if (positionals[0] !== 'constraints' || positionals.length > 1) {
      throw new UsageError(`tys validate: expected "tys validate constraints", got "${positionals.join(' ')}"`);
    }
    const prisma = createPrisma(config.databaseUrl);
    try {
      const audits = await auditConstraints(prisma);
      const remaining = audits.filter((a) => a.violations > 0);
      if (remaining.length > 0) {
        if (values.json) json({ validated: false, violations: remaining });
        else {
          io.out('refusing to validate: rows still break constraints');
          for (const a of remaining) io.out(`  ${a.constraint}: ${a.violations} (e.g. ${a.sample.slice(0, 3).join(', ')})`);
          io.out('fix them with: tys enqueue constraints --all --wait');
        }
        return 1;
      }
      const results = await validateConstraints(prisma);
      if (values.json) json({ validated: true, constraints: results });
      else {
        for (const r of results) {
          io.out(
            `${r.constraint.padEnd(38)} ${r.validAfter ? 'valid' : 'NOT VALID'}${r.validBefore ? ' (already was)' : r.validAfter ? ' (validated now)' : ''}`,
          );
        }
      }
      return results.every((r) => r.validAfter) ? 0 : 1;
    } finally {
      await prisma.$disconnect();
    }
  },
});
