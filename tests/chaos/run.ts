import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runChaos, type ChaosReport } from './scenario.js';

const help = `Usage: npm run chaos -- [--investments N] [--workers K] [--seed S] [--provider-fault-rate R] [--json FILE]

Seeds a database of its own on the local Postgres (TEST_DATABASE_URL), starts
K worker processes, a dashboard, a private Redis and a market-data stand-in,
and runs every family to the end while killing workers (SIGKILL and SIGTERM),
cutting and blocking Postgres connections, restarting Redis with its data
lost and answering provider calls with errors, timeouts, rate limits and
garbage. Then it checks the database against the expected state computed on
its own, and searches logs, Redis, Postgres and dashboard responses for the
API key and dashboard password. Exit status 0 when all holds, 1 otherwise.

Options:
  --investments N          investments to seed (default 100000)
  --workers K              worker processes (default 4)
  --seed S                 seed of every random choice, to replay a run (default random)
  --provider-fault-rate R  share of provider calls answered with a fault (default 0.15)
  --json FILE              also write the figures as JSON
  --logs DIR               write each worker's whole output there
  -h, --help               this help`;

function integer(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

export function formatReport(report: ChaosReport): string {
  const faults = Object.entries(report.faults).map(([kind, n]) => `${kind} ${n}`).join(', ');
  const provider = Object.entries(report.providerFaults).map(([kind, n]) => `${kind} ${n}`).join(', ');
  return [
    `chaos ${report.ok ? 'PASSED' : 'FAILED'} (seed ${report.seed})`,
    `  data               ${report.data.investments} investments, ${report.data.tickers} tickers, ${report.data.violations} violations, ${report.data.alerts} alerts, ${report.data.actions} splits`,
    `  jobs processed     ${report.jobsProcessed}`,
    `  faults injected    ${faults}`,
    `  provider faults    ${provider}`,
    `  retries            ${report.retries} (jobs failed for good: ${report.finalFailures}, enqueues retried: ${report.producerRetries})`,
    `  runs               ${report.runs.COMPLETED} completed, ${report.runs.FAILED} failed, ${report.runs.INTERRUPTED} interrupted`,
    `  duplicates found   ${report.duplicates}`,
    `  rows lost          ${report.lost}`,
    `  rows wrong         ${report.wrong}`,
    `  secrets found      ${report.secretsFound.length}`,
    `  unclean shutdowns  ${report.uncleanShutdowns.length}`,
    `  time to converge   ${report.convergeSeconds.toFixed(1)} s (${report.phases.map((p) => `${p.families.join('+')}: ${p.rounds} rounds, ${p.seconds.toFixed(1)} s`).join('; ')})`,
    ...[...report.findings, ...report.secretsFound, ...report.uncleanShutdowns].map((line) => `  ! ${line}`),
  ].join('\n');
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        investments: { type: 'string' },
        workers: { type: 'string' },
        seed: { type: 'string' },
        'provider-fault-rate': { type: 'string' },
        json: { type: 'string' },
        logs: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values.help) {
      console.log(help);
      return 0;
    }
    const rate = values['provider-fault-rate'] === undefined ? undefined : Number(values['provider-fault-rate']);
    if (rate !== undefined && !(rate >= 0 && rate < 1)) throw new Error(`--provider-fault-rate must be a number from 0 to below 1, got "${values['provider-fault-rate']}"`);
    var options = {
      investments: integer('investments', values.investments, 100, 10_000_000) ?? 100_000,
      workers: integer('workers', values.workers, 1, 64) ?? 4,
      seed: integer('seed', values.seed, 0, 2 ** 31),
      providerFaultRate: rate,
      logDir: values.logs,
    };
  } catch (error) {
    console.error(`chaos: ${(error as Error).message}`);
    return 2;
  }
  const report = await runChaos({ ...options, log: (line) => console.log(line) });
  console.log(formatReport(report));
  if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  return report.ok ? 0 : 1;
}

process.exitCode = await main();
