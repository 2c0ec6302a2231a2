import { families } from '../families/index.js';
import type { JobFamily } from '../fleet/family.js';
import { defineCommand, UsageError } from './command.js';

const help = `Usage: tys families [--markdown | --json]

The job families this fleet knows, each as it describes itself: what it
does, the scopes it takes, what a key looks like, and whether it has an
audit (tys audit), a verification (tys verify) and revertible changes
(tys revert).

Options:
  --markdown   the family table of docs/architecture.md
  --json       machine-readable list
  -h, --help   this help`;

function capabilities(family: JobFamily): string[] {
  return [family.audit && 'audit', family.verify && 'verify', family.revertible && 'revert'].filter((c): c is string => Boolean(c));
}

/** The family table of docs/architecture.md, from the registry: a test checks the page against it. */
export function familiesMarkdown(list: readonly JobFamily[] = families): string {
  return [
    '| family | work | scopes | checks |',
    '| --- | --- | --- | --- |',
    ...list.map((f) => `| \`${f.name}\` | ${f.description} | ${f.scopes.join(', ')} | ${capabilities(f).join(', ') || 'none'} |`),
  ].join('\n');
}

export const familiesCommand = defineCommand({
  name: 'families',
  summary: 'list the job families, as each describes itself',
  help,
  target: false,
  options: { markdown: { type: 'boolean' }, json: { type: 'boolean' } },
  run({ values, positionals }, io) {
    if (positionals.length > 0) throw new UsageError(`tys families: unexpected argument "${positionals[0]}"`);
    if (values.markdown && values.json) throw new UsageError('tys families: --markdown and --json exclude each other');
    if (values.markdown) io.out(familiesMarkdown());
    else if (values.json) {
      io.out(
        JSON.stringify(
          families.map((f) => ({ name: f.name, description: f.description, scopes: f.scopes, exampleKey: f.exampleKey, checks: capabilities(f) })),
          null,
          2,
        ),
      );
    } else {
      const width = Math.max(...families.map((f) => f.name.length));
      for (const f of families) io.out(`${f.name.padEnd(width)}  ${f.description} [${f.scopes.join(', ')}; ${capabilities(f).join(', ') || 'no checks'}]`);
    }
    return Promise.resolve(0);
  },
});
