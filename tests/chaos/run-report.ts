import type { ChaosReport } from './scenario.js';

/** The figures of a chaos run, for people. */
export function formatReport(report: ChaosReport): string {
  const faults = Object.entries(report.faults)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ');
  const provider = Object.entries(report.providerFaults)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ');
  return [
    `chaos ${report.ok ? 'PASSED' : 'FAILED'} (seed ${report.seed})`,
    `  data               ${report.data.investments} investments, ${report.data.tickers} tickers, ${report.data.violations} violations, ${report.data.alerts} alerts, ${report.data.actions} splits`,
    `  jobs processed     ${report.jobsProcessed} (counted by the runs that finished; a run Redis lost takes its counts with it)`,
    `  faults injected    ${faults}`,
    `  provider faults    ${provider}`,
    `  retries            ${report.retries} (jobs failed for good: ${report.finalFailures}, enqueues retried: ${report.producerRetries})`,
    `  producers killed   ${report.producersKilled} (runs left open: ${report.openRuns.length ? report.openRuns.join(', ') : 'none'})`,
    `  runs               ${report.runs.COMPLETED} completed, ${report.runs.FAILED} failed, ${report.runs.INTERRUPTED} interrupted`,
    `  duplicates found   ${report.duplicates}`,
    `  rows lost          ${report.lost}`,
    `  rows wrong         ${report.wrong}`,
    `  secrets found      ${report.secretsFound.length}`,
    `  unclean shutdowns  ${report.uncleanShutdowns.length}`,
    `  worker crashes     ${report.crashes.length}`,
    `  hand-written jobs  ${report.hostileJobsRefused} refused, ${report.hostileJobsBelieved.length} believed`,
    `  time to converge   ${report.convergeSeconds.toFixed(1)} s (${report.phases.map((p) => `${p.families.join('+')}: ${p.rounds} rounds, ${p.seconds.toFixed(1)} s`).join('; ')})`,
    ...[...report.findings, ...report.secretsFound, ...report.uncleanShutdowns, ...report.crashes, ...report.hostileJobsBelieved].map((line) => `  ! ${line}`),
  ].join('\n');
}
