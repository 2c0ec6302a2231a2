import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { families } from '../src/families/index.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { flushPrefix, REDIS_URL, testFleet, testPrefix } from './support/fleet.js';
import { fleetEnv, runTys, spawnTys, threadNiceness, until } from './support/processes.js';

describe('tys CLI', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: 500, badQuantityRate: 0.01 });
    fleet = await testFleet(db);
    env = fleetEnv(fleet.config);
  });
  afterAll(async () => {
    await fleet?.close();
    await db?.drop();
  });

  it.each([
    [['enqueue', 'nope', '--all'], /unknown family "nope" \(expected one of: lots/],
    [['enqueue', 'lots'], /give exactly one of --all, --changed, --investment ID, --portfolio ID, --user ID/],
    [['enqueue', 'lots', '--all', '--user', 'u1'], /give exactly one of/],
    [['enqueue', 'constraints', '--changed'], /family constraints does not take --changed \(it takes: all, investments, portfolio, user\)/],
    [['enqueue', 'lots', '--investment', 'x\'; DROP TABLE "Investment"; --'], /--investment "x'; DROP TABLE .*" is not a valid id/],
    [['enqueue', 'lots', '--all', '--frobnicate'], /unknown option '--frobnicate'/],
    [['enqueue', 'lots', '--all', '--page-size', '0'], /--page-size must be an integer from 1 to 100000/],
    [['worker', '--concurrency', 'many'], /--concurrency must be an integer/],
    [['worker', '--rate', 'fast'], /--rate must look like 500\/1s or 100\/1m \(.*\), got "fast"/],
    // A window a timer can keep, a count that is a number: otherwise a run could wait past the year 10^13.
    [['enqueue', 'lots', '--all', '--rate', '5/0s'], /--rate must look like .* got "5\/0s"/],
    [['enqueue', 'lots', '--all', '--rate', '1/0ms'], /--rate must look like .* got "1\/0ms"/],
    [['enqueue', 'lots', '--all', '--rate', '99999999999999999999/1s'], /--rate must look like .* got "99999999999999999999\/1s"/],
    [['enqueue', 'lots', '--all', '--rate', '1/99999999999h'], /--rate must look like .* got "1\/99999999999h"/],
    [['worker', '--families', ''], /unknown family "" \(expected one of: lots/],
    [['migrate', 'down', '--to', "'; drop"], /--to "'; drop" names no migration/],
    [['schedule', 'remove', 'nosuch'], /no scheduler named "nosuch"/],
    // Control characters from an argument reach the terminal escaped, never raw (no cursor moves, no cleared screen).
    [['pause', '--run', '\x1b[2Jboom\x07'], /^error: tys pause: "\\x1b\[2Jboom\\x07" is not a run id/],
    [['pause', '--run', 'x'], /"x" is not a run id/],
    [['resume'], /--run ID is required/],
    [['status', '--run', '42'], /"42" is not a run id/],
    [['verify', 'unknown'], /unknown family "unknown"/],
    [['launch'], /unknown command "launch"/],
    [['migrate', 'sideways'], /unknown action "sideways"/],
    [['enqueue', 'lots', '--investment', 'nosuchinvestment'], /no investment nosuchinvestment; nothing enqueued/],
    [['enqueue', 'constraints', '--user', 'nosuchuser'], /no user nosuchuser; nothing enqueued/],
    [['enqueue', 'metadata', '--portfolio', 'nosuchportfolio'], /no portfolio nosuchportfolio; nothing enqueued/],
    [['status', '--run', 'run-20990101T000000Z-abcdef'], /no run run-20990101T000000Z-abcdef/],
    [['revert', '--run', 'run-20990101T000000Z-abcdef'], /no run run-20990101T000000Z-abcdef/],
  ])('tys %j: one line on stderr, exit status 2, nothing enqueued or recorded', async (args, message) => {
    const state = async () => [await db.prisma.fleetRun.count(), ...(await Promise.all(families.map((f) => fleet.context.queue(f).count())))];
    const before = await state();
    const result = await runTys(args, env);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toMatch(/^(target: [^\n]*\n)?$/);
    expect(await state()).toEqual(before);
  });

  it("tys enqueue never starts Prisma's query engine (a third of its CPU), where a command that reads runs through Prisma does", async () => {
    const log = path.join(mkdtempSync(path.join(tmpdir(), 'tys-modules-')), 'engine.log');
    onTestFinished(() => rmSync(path.dirname(log), { recursive: true, force: true }));
    // A module hook in every node process of the command (the launcher and its relaunch): it notes each load of the engine's compiler.
    const hooks = `import{appendFileSync}from'node:fs';export async function load(url,context,next){if(url.includes('query_compiler'))appendFileSync(${JSON.stringify(log)},url+'\\n');return next(url,context);}`;
    const register = `import{register}from'node:module';register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
    // Queues of its own: the run's job must not be among this file's.
    const prefix = testPrefix();
    onTestFinished(async () => {
      await flushPrefix(prefix, '[:.]*');
    });
    const watched = { ...env, TYS_QUEUE_PREFIX: prefix, NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(register)}` };
    const engineLoads = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0);
    // One run that checks its scope, adds a job and looks for an operator's hold; one with nothing to do, finished at once.
    const { id } = await db.prisma.investment.findFirstOrThrow({ where: { totalQuantity: { gt: 0 } } });
    for (const args of [
      ['enqueue', 'lots', '--investment', id],
      ['enqueue', 'corporate-actions', '--all'],
    ]) {
      const enqueued = await runTys(args, watched);
      expect(enqueued.stderr).toBe('');
      expect(enqueued.stdout).toMatch(/added [01] jobs/);
    }
    expect(engineLoads()).toBe(0);
    expect((await runTys(['status'], watched)).code).toBe(0);
    expect(engineLoads()).toBeGreaterThan(0);
  });

  it('rejects a bad environment before doing anything, exit 2', async () => {
    const result = await runTys(['status'], { ...env, REDIS_URL: 'http://example.com' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/REDIS_URL must be a URL starting with redis:\/\/ or rediss:\/\//);
    const malformed: [string, string][] = [
      ['REDIS_URL', 'redis://127.0.0.1:notaport'],
      ['DATABASE_URL', 'postgresql://a b'],
      ['TYS_QUEUE_PREFIX', 'a:b'],
      ['REDIS_CLUSTER_NODES', '127.0.0.1'],
      ['TYS_SHARDS', '0'],
      ['TYS_SHARDS_LOTS', 'many'],
      ['TYS_NICE', '20'],
    ];
    for (const [name, value] of malformed) {
      const bad = await runTys(['enqueue', 'lots', '--all'], { ...env, [name]: value });
      expect(bad.code, name).toBe(2);
      expect(bad.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(bad.stderr, name).toMatch(new RegExp(name));
    }
    // Market settings are read once, when a worker starts: a malformed one stops the start, not every job.
    const market = await runTys(['worker', '--families', 'metadata'], { ...env, MARKET_DATA_RATE_LIMIT: 'fast' });
    expect(market.code).toBe(2);
    expect(market.stderr.trim()).toBe(
      'error: MARKET_DATA_RATE_LIMIT must look like 5/60s, 75/1m or 1000/1h (1 to 1,000,000,000 per 1ms to 24 days), got "fast"',
    );
    for (const [name, value, message] of [
      ['MARKET_DATA_RATE_LIMIT', '5/0s', /MARKET_DATA_RATE_LIMIT must look like/],
      ['TYS_LOG_LEVEL', 'verbose', /TYS_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got "verbose"/],
    ] as const) {
      const refused = await runTys(['worker', '--families', 'metadata'], { ...env, [name]: value });
      expect(refused.code, name).toBe(2);
      expect(refused.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(refused.stderr, name).toMatch(message);
    }
    // A database that is not there is said once, and the process ends, rather than warning at every job.
    const gone = new URL(env.DATABASE_URL!);
    gone.pathname = '/tys_no_such_database';
    for (const args of [
      ['worker', '--families', 'lots'],
      ['dashboard', '--insecure', '--port', '0'],
    ]) {
      const missing = await runTys(args, { ...env, DATABASE_URL: gone.toString() });
      expect(missing.code, args[0]).toBe(1);
      expect(missing.stderr.trim(), args[0]).toBe(
        `error: database "tys_no_such_database" does not exist on ${gone.hostname}:${gone.port || 5432}: is DATABASE_URL right?`,
      );
    }
    const secret = await runTys(['status'], { ...env, DATABASE_URL: 'mysql://admin:hunter2@db/x' });
    expect(secret.code).toBe(2);
    expect(secret.stderr).not.toContain('hunter2');
    // A cluster password without a cluster is a mistake to name, never to echo.
    const stray = await runTys(['status'], { ...env, REDIS_PASSWORD: 'hunter3' });
    expect(stray.code).toBe(2);
    expect(stray.stderr.trim()).toBe(
      'error: REDIS_PASSWORD and REDIS_TLS apply to REDIS_CLUSTER_NODES; for one Redis, put them in REDIS_URL (rediss://:password@host)',
    );
  });

  it.each([['--help'], ['enqueue', '--help'], ['worker', '--help'], ['status', '--help'], ['verify', '--help'], ['migrate', '--help']])(
    'tys %j prints help and exits 0',
    async (...args) => {
      const result = await runTys(args, env);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/Usage: tys/);
    },
  );

  it("TYS_NICE lowers a command's CPU priority before it loads anything, on every thread, in an autogroup of its own, stopped and resumed with its launcher and dying with it", async () => {
    const scratch = await createTestDatabase();
    const prefix = testPrefix();
    try {
      await seedMvp(scratch.prisma, { investments: 5, badQuantityRate: 0 });
      // No worker: the enqueue waits for its run until it is stopped.
      const enqueue = spawnTys(['enqueue', 'lots', '--all', '--wait', '--timeout', '1m'], {
        ...fleetEnv({ ...fleet.config, databaseUrl: scratch.url, queuePrefix: prefix }),
        TYS_NICE: '11',
      });
      const children = () => readFileSync(`/proc/${enqueue.pid}/task/${enqueue.pid}/children`, 'utf8').trim();
      await until('the enqueue to be waiting for its run', () => /waiting/i.test(enqueue.output()) || /added 5 jobs/.test(enqueue.output()), 30_000);
      expect(getPriority(enqueue.pid)).toBe(11);
      const relaunched = Number(children().split(' ')[0]);
      expect(relaunched).toBeGreaterThan(0);
      expect(getPriority(relaunched)).toBe(11);
      // Every thread: Node's helper threads (garbage collection, compilation) run before any script.
      expect(new Set([...threadNiceness(enqueue.pid!), ...threadNiceness(relaunched)])).toEqual(new Set([11]));
      // Between sessions, the kernel's autogroups share the CPU equally whatever the niceness
      // (bin/priority.js): the command leads a session of its own, whose autogroup is niced.
      if (readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1') {
        expect(procStat(relaunched).session).toBe(relaunched);
        expect(readFileSync(`/proc/${relaunched}/autogroup`, 'utf8')).toMatch(/ nice 11\n$/);
        // The session it was started from keeps its own.
        expect(readFileSync(`/proc/${enqueue.pid}/autogroup`, 'utf8')).toBe(readFileSync('/proc/self/autogroup', 'utf8'));
      } else {
        expect(procStat(relaunched).session).toBe(procStat(enqueue.pid!).session);
      }
      // Job control reaches the command through its launcher: stopped together, resumed together.
      enqueue.kill('SIGTSTP');
      await until('the relaunched enqueue to stop', () => procStat(relaunched).state === 'T' && procStat(enqueue.pid!).state === 'T', 10_000);
      enqueue.kill('SIGCONT');
      await until('the relaunched enqueue to go on', () => !['T', 'gone'].includes(procStat(relaunched).state), 10_000);
      // A launcher killed outright takes the command with it, as one process would have gone.
      enqueue.kill('SIGKILL');
      await enqueue.exited;
      await until('the relaunched enqueue to end', () => procStat(relaunched).state === 'gone', 10_000);
    } finally {
      await scratch.drop();
      await flushPrefix(prefix, '[:.]*');
    }
  });

  it('fails fast with one line naming Redis when it is unreachable', async () => {
    const result = await runTys(['status'], { ...env, REDIS_URL: 'redis://127.0.0.1:1' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe('error: cannot reach Redis at 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1');
  });

  it('names its target first (Postgres database, Redis database, prefix), in JSON too, never a password', async () => {
    const url = new URL(db.url);
    url.password = 'pw-never-shown';
    const redisUrl = new URL(REDIS_URL);
    redisUrl.password = 'redis-pw-never-shown';
    const withPassword = { ...env, DATABASE_URL: url.toString(), REDIS_URL: redisUrl.toString() };
    const text = await runTys(['verify', 'lots'], withPassword);
    expect(text.stdout.split('\n')[0]).toBe(
      `target: postgres 127.0.0.1:5432 database "${db.name}", redis ${redisUrl.hostname}:${redisUrl.port || 6379} db 0, queue prefix "${fleet.prefix}"`,
    );
    const json = await runTys(['audit', 'constraints', '--json'], withPassword);
    expect(JSON.parse(json.stdout).target).toEqual({
      postgres: { host: '127.0.0.1', port: 5432, database: db.name },
      redis: { host: redisUrl.hostname, port: Number(redisUrl.port || 6379), db: 0 },
      queuePrefix: fleet.prefix,
    });
    for (const output of [text.stdout, text.stderr, json.stdout, json.stderr]) expect(output).not.toMatch(/never-shown/);
  });

  it('a lots run from the CLI: --dry-run counts, --wait shows progress and exits 1 on failures, verify and status name them, retry after the fix completes the run, verify passes', async () => {
    // One story, in order, on this file's data.
    const dryRun = await runTys(['enqueue', 'lots', '--all', '--dry-run'], env);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toMatch(/500 rows need work, would add 500 jobs \(0 already queued by an earlier run\)/);
    expect(await fleet.context.queue(lotsFamily).count()).toBe(0);

    fleet.startWorkers([lotsFamily]);
    const result = await runTys(['enqueue', 'lots', '--all', '--wait'], env);
    // The run's id comes first (after the target line), before any job is added, then what was added.
    const [first, second] = result.stdout.split('\n').filter((line) => line.startsWith('run '));
    expect(first).toMatch(/^run run-\d{8}T\d{6}Z-[0-9a-f]{6}: lots over all rows: adding its jobs \(tys status --run run-\S+\)$/);
    expect(second).toMatch(/^run run-\d{8}T\d{6}Z-[0-9a-f]{6}: lots over all rows: added 500 jobs/);
    expect(result.stdout).toMatch(/\[#+\] 100\.0% 500\/500 \(completed 495, skipped 0, failed 5\)/);
    expect(result.stdout).toMatch(/finished: 495 completed, 0 skipped, 5 failed/);
    expect(result.code).toBe(1);

    const verify = await runTys(['verify', 'lots'], env);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/verify lots: FAILED, 5 of 500 rows wrong/);
    expect(verify.stdout.match(/: no tax lots/g)).toHaveLength(5);

    const runId = /run (run-\S+):/.exec(result.stdout)![1]!;
    const status = await runTys(['status', '--run', runId], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/FAILED/);
    expect(status.stdout.match(/run the constraints family first/g)).toHaveLength(5);

    const json = JSON.parse((await runTys(['status', '--json'], env)).stdout);
    expect(json.families.lots).toMatchObject({ failed: 5, waiting: 0, active: 0 });
    expect(json.runs[0]).toMatchObject({ id: runId, status: 'FAILED', total: 500, completed: 495, failed: 5 });

    // retry runs the failed jobs again; fixed, they succeed and the run is COMPLETED; it records who started it.
    const run = await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } });
    expect(run.origin).toMatch(/^cli \S+@\S+$/);
    await db.prisma.$executeRaw`UPDATE "Investment" SET "totalQuantity" = 1 WHERE "totalQuantity" <= 0`;
    const retry = await runTys(['retry', '--run', runId], env);
    expect(retry.stderr).toBe('');
    expect(retry.code).toBe(0);
    expect(retry.stdout).toMatch(`run ${runId}: 5 failed job(s) queued again`);
    await until('the run to complete', async () => (await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).status === 'COMPLETED');
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ completed: 500, failed: 0 });
    const again = await runTys(['retry', '--run', runId], env);
    expect(again.code).toBe(2);
    expect(again.stderr.trim()).toBe(`error: tys retry: run ${runId} is COMPLETED: only a FAILED run has failed jobs to retry`);

    // The family table lines up whatever the names; a finished run says how long it took, not an ETA.
    const table = await runTys(['status'], env);
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    const header = lines.find((line) => line.startsWith('family'))!;
    const rightEdges = (line: string) => [...line.matchAll(/\S+/g)].map((m) => m.index + m[0].length);
    for (const family of families) {
      const row = lines.find((line) => line.startsWith(`${family.name} `));
      expect(row, family.name).toBeDefined();
      expect(rightEdges(row!).slice(1), family.name).toEqual(rightEdges(header).slice(1));
    }
    // The workers this file started listen on the lots queue.
    expect(
      Number(
        lines
          .find((line) => line.startsWith('lots '))!
          .split(/\s+/)
          .at(-1),
      ),
    ).toBeGreaterThanOrEqual(1);
    const finished = lines.find((line) => line.startsWith(runId))!;
    expect(finished).toMatch(/ COMPLETED +started .*, took \d+ (s|min)/);
    expect(finished).not.toMatch(/ETA/);

    const fixed = await runTys(['verify', 'lots'], env);
    expect(fixed.stdout).toMatch(/verify lots: OK, 500 rows checked/);
    expect(fixed.code).toBe(0);
  }, 120_000);
});

/** Where a process is: its state ('gone' once it has ended, a zombie included) and its session. */
function procStat(pid: number): { state: string; session: number } {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return { state: 'gone', session: 0 };
  }
  // pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
  const [state, , , session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: state === 'Z' ? 'gone' : state!, session: Number(session) };
}
