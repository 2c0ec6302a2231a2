import { describe, expect, it } from 'vitest';
import { rehearse, targetVerdict, verdictLine, type StepReport } from '../bench/rehearsal.js';
import { listMigrationFiles } from '../src/db/migrate/files.js';
import { REDIS_URL } from './support/fleet.js';
import { adminUrl } from './support/server.js';

describe('an online rehearsal, small', () => {
  it('the application keeps working through every step, and every investment verifies at the end, those it changed during the run included', async () => {
    const result = await rehearse({
      serverUrl: adminUrl(),
      redisUrl: REDIS_URL,
      investments: 3_000,
      rate: 25,
      baselineSeconds: 3,
      workers: 1,
      // Slow enough for the lots run to hold two working/stopped pairs.
      fleetRate: '600/1s',
      alternate: { busySeconds: 1, quietSeconds: 0.2 },
    });
    expect(result.steps.map((step) => step.step)).toEqual([
      ...listMigrationFiles().map((m) => `migrate ${m.name}`),
      'constraints (fleet)',
      'lots (fleet)',
      'corporate-actions (fleet)',
      'validate constraints',
    ]);
    for (const step of [result.baseline, ...result.steps, result.after]) {
      expect(step.app.errors, `${step.step}: ${step.app.sampleErrors.join('; ')}`).toBe(0);
      expect(step.fleet?.failed ?? 0, step.step).toBe(0);
    }
    expect(result.baseline.app.requests).toBeGreaterThan(30);
    // The application alone again after the migration, as long as the baseline.
    expect(result.after.app.requests).toBeGreaterThan(30);
    // What tells a slow database from a starved application process: each kind's p99, and the process's own delay.
    expect(Object.keys(result.baseline.app.p99ByKindMs)).toEqual(expect.arrayContaining(['open-portfolio', 'purchase', 'refresh-price']));
    for (const step of [result.baseline, ...result.steps]) expect(Number.isFinite(step.app.loopDelayP99Ms), step.step).toBe(true);
    expect(result.steps.reduce((sum, step) => sum + step.app.requests, 0)).toBeGreaterThan(50);
    // A short step is also set against the baseline's own windows of its length; the lots run is too long for two.
    const short = result.steps.filter((step) => step.seconds > 0 && step.seconds * 2 <= 3);
    expect(short.length).toBeGreaterThan(0);
    for (const step of short) {
      const windows = step.baselineWindows;
      expect(windows?.windows, step.step).toBeGreaterThanOrEqual(2);
      expect(windows!.medianP99Ms, step.step).toBeLessThanOrEqual(windows!.maxP99Ms);
      expect(windows!.p99VsMedian, step.step).toBeCloseTo(step.app.p99Ms / windows!.medianP99Ms, 1);
    }
    const lots = result.steps.find((s) => s.step === 'lots (fleet)')!;
    expect(lots.baselineWindows).toBeUndefined();
    // The workers stopped and went on again, the application measured on both sides, the ratio given its interval.
    const alternation = lots.alternation!;
    expect(alternation.quiet.windows).toBeGreaterThanOrEqual(2);
    expect(alternation.busy.windows).toBe(alternation.quiet.windows);
    expect(alternation.quiet.requests).toBeGreaterThan(0);
    expect(alternation.busy.requests).toBeGreaterThan(0);
    const interval = alternation.p99BusyVsQuietInterval!;
    expect(interval.confidence).toBe(0.9);
    expect(interval.low).toBeGreaterThan(0);
    expect(interval.low).toBeLessThanOrEqual(interval.high);
    // Each fleet step in its two parts, the producer's and the run's after it, which together are the step; a schema step has none.
    for (const step of result.steps.filter((s) => s.fleet)) {
      const { enqueue, run } = step.parts!;
      expect(enqueue.windows, step.step).toBe(1);
      expect(enqueue.requests, step.step).toBeGreaterThan(0);
      // Each figure is rounded to a tenth of a second.
      expect(Math.abs(enqueue.seconds + run.seconds - step.seconds), step.step).toBeLessThanOrEqual(0.15);
      expect(enqueue.requests + run.requests, step.step).toBe(step.app.requests);
    }
    // A paced run's producer is done about half way (it adds twice as fast as the jobs start): the run goes on after it.
    expect(lots.parts!.run.requests).toBeGreaterThan(0);
    expect(result.steps.find((s) => !s.fleet)!.parts).toBeUndefined();
    // The seed's broken quantities were fixed, then every investment got its lots, the application's own among them.
    expect(result.steps.find((s) => s.step === 'constraints (fleet)')!.fleet!.jobs).toBeGreaterThan(0);
    expect(result.steps.find((s) => s.step === 'lots (fleet)')!.fleet!.jobs).toBeGreaterThanOrEqual(3_000);
    expect(result.verify.lots, result.verify.lots.sample.join('\n')).toMatchObject({ ok: true, problems: 0 });
    expect(result.verify.lots.checked).toBeGreaterThanOrEqual(3_000 + result.appInvestments);
    expect(result.verify.constraintsLeft).toBe(0);
    // Every step is judged against the target, once; the baseline and the application alone after are not steps.
    expect([...result.target.met, ...result.target.missed.map((m) => m.step)].sort()).toEqual(result.steps.map((s) => s.step).sort());
  });

  it('judges each step by the target: its p99 at most 1.2 times the baseline and no application error', () => {
    const step = (name: string, p99Ms: number, errors = 0, maxWindowMs?: number): StepReport => ({
      step: name,
      seconds: 1,
      app: {
        requests: 200,
        p50Ms: 2,
        p99Ms,
        p99VsBaseline: p99Ms / 10,
        errors,
        errorRate: errors / 200,
        sampleErrors: [],
        p99ByKindMs: {},
        loopDelayP99Ms: 1,
        loopDelayMaxMs: 2,
      },
      fleet: null,
      lockWaitersMax: 0,
      appWaitsOnFleet: 0,
      throttled: false,
      ...(maxWindowMs === undefined ? {} : { baselineWindows: { windows: 30, medianP99Ms: 10, maxP99Ms: maxWindowMs, p99VsMedian: p99Ms / 10 } }),
    });
    const verdict = targetVerdict([
      step('at the line', 12),
      step('with an error', 5, 1),
      step('a stall', 13, 0, 14),
      step('the fleet', 25, 0, 14),
      step('long', 30),
    ]);
    expect(verdict.met).toEqual(['at the line']);
    expect(verdict.missed).toEqual([
      { step: 'with an error', p99VsBaseline: 0.5, errors: 1, pastBaselineWindows: null },
      { step: 'a stall', p99VsBaseline: 1.3, errors: 0, pastBaselineWindows: false },
      { step: 'the fleet', p99VsBaseline: 2.5, errors: 0, pastBaselineWindows: true },
      { step: 'long', p99VsBaseline: 3, errors: 0, pastBaselineWindows: null },
    ]);
    expect(verdictLine(verdict)).toBe(
      'target (application p99 at most 1.2 times its baseline, no application error): met in 1 of 5 steps; missed in with an error x0.5, 1 application error; ' +
        'a stall x1.3, within the baseline windows of its length; the fleet x2.5, past every baseline window of its length; long x3',
    );
    expect(verdictLine(targetVerdict([step('quiet', 11)]))).toBe(
      'target (application p99 at most 1.2 times its baseline, no application error): met in 1 of 1 steps',
    );
  });
});
