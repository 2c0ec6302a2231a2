import { createPrisma } from '../db/prisma.js';
import { families } from '../families/index.js';
import { defineCommand, UsageError } from './command.js';
import { requireFamily, wrapped } from './families.js';

const auditable = families.filter((f) => f.audit).map((f) => f.name);

const help = `Usage: tys audit <family> [--json]

Counts what the family still has to do, check by check, with a sample of
offending ids. Exit status 1 when anything is found, 0 when nothing is.

Families:
${families
  .filter((f) => f.audit)
  .map((f) => wrapped(f.name, f.auditHelp ?? f.description))
  .join('\n')}

Options:
  --json       machine-readable report
  -h, --help   this help`;

export const auditCommand = defineCommand({
  name: 'audit',
  summary: 'count what a family still has to fix, with sample ids',
  help,
  options: { json: { type: 'boolean' } },
  async run({ values, positionals, config, json }, io) {
    const family = requireFamily('audit', positionals[0]);
    if (!family.audit) throw new UsageError(`tys audit: family ${family.name} has no audit (families that do: ${auditable.join(', ')})`);
    const prisma = createPrisma(config.databaseUrl);
    try {
      const findings = await family.audit(prisma);
      const total = findings.reduce((sum, f) => sum + f.count, 0);
      if (values.json) json({ family: family.name, total, findings });
      else {
        const width = Math.max(...findings.map((f) => f.check.length));
        for (const f of findings) {
          // Ids go on the line as examples; a described row (a disposal to record) is a list, one a line.
          const listed = f.sample.some((s) => s.includes(' '));
          io.out(`${f.check.padEnd(width)}  ${String(f.count).padStart(8)}${f.sample.length && !listed ? `  e.g. ${f.sample.join(', ')}` : ''}`);
          if (listed) for (const s of f.sample) io.out(`    ${s}`);
        }
        io.out(total === 0 ? `audit ${family.name}: nothing to fix` : `audit ${family.name}: ${total} to fix`);
      }
      return total === 0 ? 0 : 1;
    } finally {
      await prisma.$disconnect();
    }
  },
});
