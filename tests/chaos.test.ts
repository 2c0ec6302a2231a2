import { describe, expect, it } from 'vitest';
import { formatReport } from './chaos/run-report.js';
import { runChaos, type ChaosReport } from './chaos/scenario.js';

/**
 * The CI-sized chaos scenario: the whole fleet, every family, through worker
 * kills, SIGTERM under load, Postgres cuts and outages, a Redis restart that
 * loses every job, and a faulty provider; then the database is compared with
 * the expected state and logs, Redis, Postgres and dashboard responses are
 * searched for the API key and the dashboard password.
 */
describe('chaos', () => {
  let report: ChaosReport;

  it('converges to exactly the expected database through every kind of fault', async () => {
    const lines: string[] = [];
    report = await runChaos({ investments: 5_000, workers: 3, log: (line) => lines.push(line) });
    console.log(formatReport(report));
    expect(report.findings).toEqual([]);
    expect({ duplicates: report.duplicates, lost: report.lost, wrong: report.wrong }).toEqual({ duplicates: 0, lost: 0, wrong: 0 });
    expect(report.data.violations).toBeGreaterThan(0);
    expect(report.data.alerts).toBeGreaterThan(0);
    expect(report.data.actions).toBeGreaterThan(0);
    expect(report.jobsProcessed).toBeGreaterThan(0);
    for (const [kind, n] of Object.entries(report.faults)) expect(n, `${kind} injected`).toBeGreaterThan(0);
    for (const kind of ['note', 'http', 'hang', 'garbage']) expect(report.providerFaults[kind], `provider ${kind}`).toBeGreaterThan(0);
    expect(report.retries).toBeGreaterThan(0);
    // The Redis restart was noticed: the runs it cut short are reported interrupted, not waited for.
    expect(report.runs.INTERRUPTED).toBeGreaterThan(0);
    expect(report.uncleanShutdowns).toEqual([]);
    expect(report.crashes).toEqual([]);
    expect(report.ok).toBe(true);
  }, 300_000);

  it('leaves the API key and the dashboard password nowhere: logs, job data, runs, audit entries, dashboard responses', () => {
    expect(report.secretsFound).toEqual([]);
  });
});
