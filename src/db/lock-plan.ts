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

const COMMENTS = String.raw`--[^\n]*|/\*[\s\S]*?\*/`;
const STRINGS = String.raw`'(?:[^']|'')*'`;

/** `sql` with each match of `pattern` blanked out, every other character where it was. */
function blanked(sql: string, pattern: string): string {
  return sql.replace(new RegExp(pattern, 'g'), (match) => ' '.repeat(match.length));
}

/** Comments and string literals hold words that are not statements. */
function withoutCommentsAndStrings(sql: string): string {
  return blanked(sql, `${COMMENTS}|${STRINGS}`);
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

/**
 * Words of SQL that name no object: two statements that share only these do
 * not depend on each other through them.
 */
const KEYWORDS = new Set(
  `add alter and as asc by cascade check column constraint create current_timestamp default delete desc exists false foreign if index
   key no not null on only primary references restrict set table to true type unique update using with without zone action time
   timestamp timestamptz date text varchar character varying char int integer int4 int8 bigint smallint serial bigserial decimal numeric
   real double precision boolean bool uuid json jsonb bytea btree enum`.split(/\s+/),
);

/**
 * The statements of a migration, or null where a dollar-quoted body (a
 * function) or a string with backslash escapes makes splitting at
 * semicolons unsafe.
 */
function statementsOf(sql: string): string[] | null {
  if (/\bE'/i.test(sql)) return null;
  // Quoted names too: a semicolon inside one ends no statement.
  const code = blanked(sql, `${COMMENTS}|${STRINGS}|"(?:[^"]|"")*"`);
  if (/\$[A-Za-z_]*\$/.test(code)) return null;
  const statements: string[] = [];
  let start = 0;
  for (let end = code.indexOf(';'); end >= 0; end = code.indexOf(';', end + 1)) {
    statements.push(sql.slice(start, end));
    start = end + 1;
  }
  statements.push(sql.slice(start));
  return statements.filter((s) => withoutCommentsAndStrings(s).trim() !== '');
}

/** The names a statement may refer to, strings' contents included (a default such as nextval('seq') names a sequence). */
function namesIn(statement: string): Set<string> {
  const names = new Set<string>();
  for (const [word] of blanked(statement, COMMENTS).matchAll(/"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*/g)) {
    const name = word.startsWith('"') ? word.slice(1, -1) : word.toLowerCase();
    if (word.startsWith('"') || !KEYWORDS.has(name)) names.add(name.toLowerCase());
  }
  return names;
}

const CREATE_TABLE = new RegExp(String.raw`\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?${QUALIFIED}`, 'gi');
const HOISTABLE = /^\s*(?:CREATE\s+TYPE|CREATE\s+TABLE|CREATE\s+(?:UNIQUE\s+)?INDEX|ALTER\s+TABLE)\b/i;
/**
 * Statements whose effect is confined to the objects they name. Anything
 * else (SET search_path, GRANT ON ALL TABLES, ALTER DEFAULT PRIVILEGES, DO)
 * can change what a later CREATE does without naming it: then nothing moves.
 */
const CONFINED =
  /^\s*(?:CREATE\s+(?:TYPE|TABLE|(?:UNIQUE\s+)?INDEX|SEQUENCE)|ALTER\s+(?:TABLE|TYPE|INDEX|SEQUENCE)|DROP\s+(?:TABLE|TYPE|INDEX|SEQUENCE)|INSERT|UPDATE|DELETE)\b/i;
/** Clauses through which a new table takes from an existing one. */
const BORROWS = /\b(?:LIKE|INHERITS|PARTITION\s+OF|AS\s+SELECT|AS\s+TABLE|AS\s+VALUES)\b/i;

/**
 * A migration's statements in the order that holds the application's
 * tables locked the shortest: first those that only create or change
 * objects new to the migration (types, tables and their indexes, nobody
 * else can see them before the commit, so they need no lock on an existing
 * table), then the rest, after the up-front locks of `late` are taken. In
 * the document's phase 5, the application's requests queued behind
 * ACCESS EXCLUSIVE on Investment while four tables, three types and seven
 * indexes nobody could see yet were created under it.
 *
 * A statement moves ahead only when it names nothing (table, column, type,
 * sequence: any word that is no SQL keyword) that a statement it passes
 * names: so it cannot depend on one. Where the SQL cannot be split safely
 * (a dollar-quoted body) or holds a statement whose effect reaches beyond
 * what it names (see CONFINED), nothing moves. Both parts run in the same
 * transaction: all or nothing, as before.
 */
export function newObjectsFirst(sql: string): { early: string; late: string } {
  const statements = statementsOf(sql)?.map((text) => {
    const bare = withoutCommentsAndStrings(text);
    return { text, bare, creates: [...bare.matchAll(CREATE_TABLE)].map(tableOf) };
  });
  if (!statements || !statements.every(({ bare }) => CONFINED.test(bare))) return { early: '', late: sql };
  const created = new Set(statements.flatMap(({ creates }) => creates));
  const early: string[] = [];
  const late: string[] = [];
  const passed = new Set<string>();
  for (const { text, bare, creates } of statements) {
    const plan = lockPlan(text);
    const names = namesIn(text);
    const movable =
      HOISTABLE.test(bare) &&
      !BORROWS.test(bare) &&
      [...plan.exclusive, ...plan.referenced, ...creates].every((table) => created.has(table)) &&
      [...names].every((name) => !passed.has(name));
    if (movable) early.push(text);
    else {
      late.push(text);
      for (const name of names) passed.add(name);
    }
  }
  const join = (part: string[]) => part.map((s) => s.trim()).join(';\n') + (part.length ? ';' : '');
  return { early: join(early), late: join(late) };
}
