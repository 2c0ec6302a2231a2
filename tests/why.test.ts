import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { constraintsFamily } from '../src/families/constraints.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { fleetEnv, runTys } from './support/processes.js';

/** Every tenth position has a quantity the phase 4 constraints forbid: the lots family refuses it. */
const INVESTMENTS = 60;

describe('why a row, and which jobs, failed or were skipped', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let env: NodeJS.ProcessEnv;
  let runId: string;
  let refused: string[];
  let changed: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: INVESTMENTS, badQuantityRate: 0.1 });
    fleet = await testFleet(db);
    env = fleetEnv(fleet.config);
    const workers = fleet.startWorkers([lotsFamily]);
    try {
      runId = (await fleet.enqueue(lotsFamily)).runId!;
      expect(await fleet.waitForRun(runId)).toMatchObject({ status: 'FAILED' });
    } finally {
      await workers.close();
    }
    refused = (await db.prisma.investment.findMany({ where: { totalQuantity: { lte: 0 } }, select: { id: true } })).map((i) => i.id).sort();
    changed = (await db.prisma.taxLot.findFirstOrThrow({ select: { investmentId: true } })).investmentId;
    expect(refused.length).toBeGreaterThan(2);
  });

  afterAll(async () => {
    await fleet.close();
    await db.drop();
  });

  it("tys jobs counts a run's failures by reason, each row in its place, and --reason finds exactly those jobs", async () => {
    const listed = await runTys(['jobs', '--run', runId], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`${refused.length} job(s), by reason:`);
    expect(listed.stdout).toMatch(
      new RegExp(
        `^ +${refused.length}  failed +investment <key> breaks Investment_totalQuantity_positive \\(totalQuantity = <value>\\): run the constraints family first`,
        'm',
      ),
    );

    const found = await runTys(['jobs', '--run', runId, '--reason', 'CONSTRAINTS FAMILY', '--json'], env);
    expect(found.code).toBe(0);
    const report = JSON.parse(found.stdout) as { jobs: { key: string; outcome: string; attempts: number }[] };
    expect(report.jobs.map((job) => job.key).sort()).toEqual(refused);
    expect(report.jobs.every((job) => job.outcome === 'failed' && job.attempts === 1)).toBe(true);

    // Times come back as the moments they were, whatever the zone of the command's machine (these columns hold UTC).
    const far = JSON.parse((await runTys(['jobs', '--run', runId, '--json'], { ...env, TZ: 'Pacific/Kiritimati' })).stdout) as { jobs: { at: string }[] };
    for (const job of far.jobs) expect(Math.abs(Date.parse(job.at) - Date.now())).toBeLessThan(10 * 60_000);

    const none = await runTys(['jobs', '--family', 'lots', '--reason', 'no reason says this'], env);
    expect(none.stdout).toContain('no failed or skipped job matches');
    const bad = await runTys(['jobs', '--outcome', 'lost'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual(['error: tys jobs: --outcome takes failed or skipped (got "lost")']);
  });

  it("tys why names a refused row's reason and the command that retries it, a changed row's audit entries, and exits 1 for an unknown key", async () => {
    const why = await runTys(['why', 'lots', refused[0]!], env);
    expect(why.code).toBe(0);
    expect(why.stdout).toContain(`failed in ${runId} after 1 attempt(s): investment ${refused[0]} breaks`);
    expect(why.stdout).toContain(`next: failed (investment ${refused[0]} breaks`);
    expect(why.stdout).toContain(`tys retry --run ${runId}`);
    // The family's source query, asked now: the refused row still needs its lot, the changed one nothing.
    expect(why.stdout).toContain("now: still needs the lots family's work");
    expect((await runTys(['why', 'lots', changed], env)).stdout).toContain('now: nothing left for the lots family to do');

    const done = await runTys(['why', 'lots', changed, '--json'], env);
    expect(done.code).toBe(0);
    const story = JSON.parse(done.stdout) as { changes: { runId: string; after: unknown }[]; outcomes: unknown[]; next: string };
    expect(story.outcomes).toEqual([]);
    expect(story.changes.length).toBeGreaterThan(0);
    expect(story.changes.every((change) => change.runId === runId && change.after !== null)).toBe(true);
    expect(story.next).toMatch(/^nothing to fix/);

    // Across the families whose jobs concern an investment: here only lots has a record of it.
    const across = await runTys(['why', 'investment', refused[0]!, '--json'], env);
    expect(across.code).toBe(0);
    const all = JSON.parse(across.stdout) as { found: boolean; stories: { family: string; key: string }[] };
    expect(all.stories.map((story) => [story.family, story.key])).toEqual([['lots', refused[0]]]);
    expect((await runTys(['why', 'investment', changed], env)).stdout).toMatch(new RegExp(`^lots ${changed} \\(job lots-${changed}\\)$`, 'm'));
    expect((await runTys(['why', 'investment', 'nosuchrow0000000000000000'], env)).code).toBe(1);
    expect((await runTys(['why', 'investment', 'AAPL.X'], env)).code).toBe(2);

    const unknown = await runTys(['why', 'lots', 'nosuchrow0000000000000000'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toContain('the fleet has no record of it');
    expect((await runTys(['why', 'lots'], env)).code).toBe(2);
  });

  it('tys retry by a filter shows the count and changes nothing, then with --yes retries exactly those as a new run, once', async () => {
    const [first, second] = refused;
    const runsBefore = await db.prisma.fleetRun.count();
    const preview = await runTys(['retry', '--run', runId, '--key', first!, '--key', second!], env);
    expect(preview.code).toBe(0);
    expect(preview.stdout).toContain(`2 job(s) to retry, the failed and skipped jobs of ${runId} among 2 row(s); by reason:`);
    expect(preview.stdout).toMatch(/^ +2 +failed +investment <key> breaks Investment_totalQuantity_positive/m);
    expect(preview.stdout).toContain(`rows: ${first}, ${second}\n`);
    expect(preview.stdout).toContain('nothing changed');
    const byReason = JSON.parse((await runTys(['retry', '--run', runId, '--reason', 'constraints FAMILY', '--json'], env)).stdout) as { jobs: number };
    expect(byReason.jobs).toBe(refused.length);
    expect(await db.prisma.fleetRun.count()).toBe(runsBefore);
    expect(await db.prisma.fleetJobOutcome.count({ where: { retriedBy: { not: null } } })).toBe(0);

    // The person fixes the two rows, then retries just them.
    await db.prisma.investment.updateMany({ where: { id: { in: [first!, second!] } }, data: { totalQuantity: '3' } });
    const workers = fleet.startWorkers([lotsFamily]);
    try {
      const retried = await runTys(['retry', '--run', runId, '--key', first!, '--key', second!, '--yes', '--wait', '--note', 'two fixed by hand'], env);
      expect(retried.code).toBe(0);
      const newRunId = /^run (run-\S+): lots over the failed and skipped jobs/m.exec(retried.stdout)![1]!;
      expect(retried.stdout).toContain(`run ${newRunId} finished: 2 completed, 0 skipped, 0 failed`);
      const newRun = await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: newRunId } });
      expect(newRun).toMatchObject({ status: 'COMPLETED', total: 2, completed: 2 });
      expect(newRun.origin).toMatch(new RegExp(`^cli \\S+@\\S+: tys retry --run ${runId} --key \\(2 rows\\)$`));
      expect(await db.prisma.taxLot.count({ where: { investmentId: { in: [first!, second!] } } })).toBe(2);
      const notes = await db.prisma.fleetJobOutcome.findMany({ where: { runId }, select: { key: true, retriedBy: true } });
      expect(
        notes
          .filter((note) => note.retriedBy === newRunId)
          .map((note) => note.key)
          .sort(),
      ).toEqual([first, second].sort());
      expect(notes.filter((note) => note.retriedBy === null)).toHaveLength(refused.length - 2);

      // Again: nothing new to take up, and no run made.
      const again = await runTys(['retry', '--run', runId, '--key', first!, '--key', second!, '--yes'], env);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(`nothing to retry: the 2 matching job(s) were taken up already, by ${newRunId}\n`);
      expect(await db.prisma.fleetRun.count()).toBe(runsBefore + 1);

      const why = await runTys(['why', 'lots', first!], env);
      expect(why.stdout).toContain(`(taken up again by ${newRunId})`);
      const action = await db.prisma.fleetRunAction.findFirstOrThrow({ where: { runId } });
      expect(action).toMatchObject({ action: 'retry', note: 'two fixed by hand', result: `2 job(s) taken up by ${newRunId}` });
    } finally {
      await workers.close();
    }

    const wrong = await runTys(['retry', '--run', runId, '--key', "x'; drop"], env);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr.trim()).toBe(`error: tys retry: "x'; drop" is not a key of lots (like ${lotsFamily.exampleKey})`);
    expect((await runTys(['retry', '--run', runId, '--yes'], env)).stderr.trim()).toBe(
      'error: tys retry: --yes goes with a filter (--outcome, --reason or --key)',
    );
  });

  it('tys jobs --purge deletes what is older than it is told, and only that', async () => {
    const kept = await runTys(['jobs', '--purge', '--older-than', '1d'], env);
    expect(kept.stdout).toContain('deleted 0 job outcome(s)');
    const purged = await runTys(['jobs', '--purge', '--older-than', '0s'], env);
    expect(purged.code).toBe(0);
    expect(purged.stdout).toContain(`deleted ${refused.length} job outcome(s)`);
    expect((await runTys(['jobs', '--run', runId], env)).stdout).toContain('no failed or skipped job matches');
  });

  it('tys cancel --key shows the queued jobs of those rows, then with --yes cancels just them; the run counts them skipped', async () => {
    // No worker takes constraints jobs here: the run's jobs stay queued.
    const { runId: fixing, added } = await fleet.enqueue(constraintsFamily);
    expect(added).toBe(refused.length - 2);
    const dropped = `Investment.${refused[3]}`;
    const preview = await runTys(['cancel', '--run', fixing!, '--key', dropped, '--key', 'Investment.nosuchrow'], env);
    expect(preview.code).toBe(0);
    expect(preview.stdout).toContain(`1 of 2 row(s) have a job of ${fixing} that has not started: ${dropped}\n`);
    expect(await fleet.context.queue(constraintsFamily).getWaitingCount()).toBe(added);

    const cancelled = await runTys(['cancel', '--run', fixing!, '--key', dropped, '--yes', '--note', 'left for a person'], env);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain(`cancelled 1 job(s) of ${fixing}`);
    expect(await fleet.context.queue(constraintsFamily).getWaitingCount()).toBe(added - 1);
    expect(await fleet.context.runs.get(fixing!)).toMatchObject({ status: 'RUNNING', skipped: 1, total: added });
    const note = await db.prisma.fleetJobOutcome.findFirstOrThrow({ where: { runId: fixing! } });
    expect(note).toMatchObject({ key: dropped, outcome: 'skipped', attempts: 0 });
    expect(note.reason).toMatch(/^cancelled by cli \S+@\S+$/);
    expect((await runTys(['cancel', '--run', fixing!, '--key', dropped, '--yes'], env)).stdout).toContain(`cancelled 0 job(s) of ${fixing}`);
    expect(await db.prisma.fleetRunAction.findFirstOrThrow({ where: { runId: fixing! } })).toMatchObject({ action: 'cancel', note: 'left for a person' });

    // The other jobs run on, and the run ends with the cancelled one counted.
    const workers = fleet.startWorkers([constraintsFamily]);
    try {
      expect(await fleet.waitForRun(fixing!)).toMatchObject({ status: 'COMPLETED', skipped: 1, completed: added - 1 });
    } finally {
      await workers.close();
    }
  });

  it("records each operator action with who took it and the note, and tys status --run shows the run's history", async () => {
    const retried = await runTys(['retry', '--run', runId, '--note', 'quantities fixed by hand'], env);
    expect(retried.code).toBe(0);
    const cancelled = await runTys(['cancel', '--run', runId], env);
    expect(cancelled.code).toBe(0);
    const refused = await runTys(['resume', '--run', runId, '--note', 'too late'], env);
    expect(refused.code).toBe(2);

    const status = await runTys(['status', '--run', runId], env);
    const history = status.stdout
      .split('\n')
      .slice(status.stdout.split('\n').indexOf('history:') + 1)
      .filter((line) => line.startsWith('  '));
    expect(history).toHaveLength(3);
    expect(history[0]).toMatch(/^ {2}\S+Z {2}retry by cli \S+@\S+: 2 job\(s\) taken up by run-\S+ \(two fixed by hand\)$/);
    expect(history[1]).toMatch(/^ {2}\S+Z {2}retry by cli \S+@\S+: RUNNING \(quantities fixed by hand\)$/);
    expect(history[2]).toMatch(/^ {2}\S+Z {2}cancel by cli \S+@\S+: CANCELLED$/);
    const report = JSON.parse((await runTys(['status', '--run', runId, '--json'], env)).stdout) as { actions: { action: string; note: string | null }[] };
    expect(report.actions.map((action) => [action.action, action.note])).toEqual([
      ['retry', 'two fixed by hand'],
      ['retry', 'quantities fixed by hand'],
      ['cancel', null],
    ]);
  });
});
