import { familiesNamed, familyNames, findFamily } from '../families/index.js';
import type { JobFamily } from '../fleet/family.js';
import { isRowId, type RowScope } from '../fleet/scope.js';
import { UsageError } from './command.js';

/** "  name   text..." as a help line, the text wrapped at 78 columns under itself. */
export function wrapped(name: string, text: string, width = 19): string {
  const indent = ' '.repeat(width + 3);
  const lines: string[] = [];
  let line = `  ${name.padEnd(width)} `;
  for (const word of text.split(/\s+/)) {
    if (line.length + word.length > 78 && line.trim().length > name.length) {
      lines.push(line.trimEnd());
      line = indent;
    }
    line += `${word} `;
  }
  lines.push(line.trimEnd());
  return lines.join('\n');
}

export function requireFamily(command: string, name: string | undefined): JobFamily {
  if (!name) throw new UsageError(`tys ${command}: name a family (one of: ${familyNames().join(', ')})`);
  const family = findFamily(name);
  if (!family) throw new UsageError(`tys ${command}: unknown family "${name}" (expected one of: ${familyNames().join(', ')})`);
  return family;
}

export function parseFamilyList(command: string, list: string | undefined): JobFamily[] {
  return familiesNamed(list?.split(','), (name, known) => new UsageError(`tys ${command}: unknown family "${name}" (expected one of: ${known.join(', ')})`));
}

function requireId(flag: string, value: string): string {
  if (!isRowId(value)) throw new UsageError(`tys enqueue: --${flag} "${String(value).slice(0, 40)}" is not a valid id`);
  return value;
}

/** Exactly one of --all, --changed, --investment ID..., --portfolio ID, --user ID. */
export function parseScope(
  family: JobFamily,
  values: { all?: boolean; changed?: boolean; investment?: string[]; portfolio?: string; user?: string },
): RowScope {
  const given = [
    values.all && 'all',
    values.changed && 'changed',
    values.investment?.length && 'investment',
    values.portfolio && 'portfolio',
    values.user && 'user',
  ].filter(Boolean);
  if (given.length !== 1) {
    throw new UsageError('tys enqueue: give exactly one of --all, --changed, --investment ID, --portfolio ID, --user ID');
  }
  let scope: RowScope;
  if (values.all) scope = { kind: 'all' };
  else if (values.changed) scope = { kind: 'changed' };
  else if (values.investment?.length) scope = { kind: 'investments', ids: values.investment.map((id) => requireId('investment', id)) };
  else if (values.portfolio) scope = { kind: 'portfolio', id: requireId('portfolio', values.portfolio) };
  else scope = { kind: 'user', id: requireId('user', values.user!) };
  if (!family.scopes.includes(scope.kind)) {
    throw new UsageError(`tys enqueue: family ${family.name} does not take --${given[0]} (it takes: ${family.scopes.join(', ')})`);
  }
  return scope;
}
