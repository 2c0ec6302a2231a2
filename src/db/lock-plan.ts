/**
 * The table locks a migration's SQL will take, read from the SQL itself, so
 * that they can all be taken before its first statement.
 *
 * Taken one by one as the statements run, they can deadlock with the
 * application: a query that joins two tables holds the one the migration
 * asks for next while waiting for the one the migration already holds. The
 * query started waiting first, so Postgres's deadlock check picks it as the
 * victim, and the application sees the error.
 */
export interface LockPlan {
  /** Tables altered, dropped, truncated or indexed: ACCESS EXCLUSIVE (the strongest any ALTER TABLE takes). Quoted, ready for SQL. */
  exclusive: string[];
  /** Tables only referenced by a new foreign key: SHARE ROW EXCLUSIVE, which lets reads through. Quoted, ready for SQL. */
  referenced: string[];
}

const IDENTIFIER = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const QUALIFIED = String.raw`(?:(?<schema>${IDENTIFIER})\s*\.\s*)?(?<table>${IDENTIFIER})`;

const EXCLUSIVE_PATTERNS = [
  new RegExp(String.raw`\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?${QUALIFIED}`, 'gi'),
  new RegExp(String.raw`\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?${QUALIFIED}`, 'gi'),
  new RegExp(String.raw`\bTRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?${QUALIFIED}`, 'gi'),
  new RegExp(String.raw`\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:${IDENTIFIER}\s+)?ON\s+(?:ONLY\s+)?${QUALIFIED}`, 'gi'),
];
const REFERENCES_PATTERN = new RegExp(String.raw`\bREFERENCES\s+${QUALIFIED}`, 'gi');

/** Comments and string literals hold words that are not statements. */
function withoutCommentsAndStrings(sql: string): string {
  return sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\/|'(?:[^']|'')*'/g, ' ');
}

/** A name quoted as the catalog holds it: quoted names keep their case, bare ones are folded to lower case. */
function quotedName(identifier: string): string {
  return identifier.startsWith('"') ? identifier : `"${identifier.toLowerCase()}"`;
}

function tableOf(match: RegExpMatchArray): string {
  const { schema, table } = match.groups!;
  return schema ? `${quotedName(schema)}.${quotedName(table!)}` : quotedName(table!);
}

export function lockPlan(sql: string): LockPlan {
  const text = withoutCommentsAndStrings(sql);
  const exclusive = new Set<string>();
  for (const pattern of EXCLUSIVE_PATTERNS) for (const match of text.matchAll(pattern)) exclusive.add(tableOf(match));
  const referenced = new Set<string>();
  for (const match of text.matchAll(REFERENCES_PATTERN)) {
    const table = tableOf(match);
    if (!exclusive.has(table)) referenced.add(table);
  }
  return { exclusive: [...exclusive], referenced: [...referenced] };
}
