import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { integerSetting } from '../../src/cli/command.js';
import { killSpawnedWorkers } from '../support/processes.js';
import { formatReport } from './run-report.js';
import { runChaos, type ChaosOptions } from './scenario.js';

const help = `Usage: npm run chaos -- [--investments N] [--workers K] [--fault-every MIN-MAX] [--seed S] [--provider-fault-rate R] [--json FILE] [--logs DIR]

Seeds a database of its own on the local Postgres (TEST_DATABASE_URL), starts
K worker processes, a dashboard, a private Redis and a market-data stand-in,
and runs every family to the end while killing workers (SIGKILL and SIGTERM),
cutting and blocking Postgres connections, restarting Redis with its data
lost and answering provider calls with errors, timeouts, rate limits and
garbage. Then it checks the database against the expected state computed on
its own, and searches logs, Redis, Postgres and dashboard responses for the
API key and dashboard password. Exit status 0 when all holds, 1 otherwise.

Options:
  --investments N          investments to seed (default 50000)
  --workers K              worker processes (default 4)
  --fault-every MIN-MAX    pause between two faults, in ms, drawn from the range (default 2000-6000)
  --seed S                 seed of the random choices: fault order, provider faults, alerts (default random)
  --provider-fault-rate R  share of provider calls answered with a fault (default 0.15)
  --json FILE              also write the figures as JSON
  --logs DIR               write each worker's whole output there
  -h, --help               this help`;

const integer = (name: string, raw: string | undefined, min: number, max: number) => integerSetting(`--${name}`, raw, min, max);

/** The scenario's options from the command line; throws with a readable reason on bad input. */
function parseOptions(argv: string[]): (ChaosOptions & { json?: string }) | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      investments: { type: 'string' },
      workers: { type: 'string' },
      seed: { type: 'string' },
      'provider-fault-rate': { type: 'string' },
      'fault-every': { type: 'string' },
      json: { type: 'string' },
      logs: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const rate = values['provider-fault-rate'] === undefined ? undefined : Number(values['provider-fault-rate']);
  if (rate !== undefined && !(rate >= 0 && rate < 1)) {
    throw new Error(`--provider-fault-rate must be a number from 0 to below 1, got "${values['provider-fault-rate']}"`);
  }
  const every = /^(\d+)-(\d+)$/.exec(values['fault-every'] ?? '2000-6000');
  if (!every || Number(every[1]) < 100 || Number(every[1]) > Number(every[2])) {
    throw new Error(`--fault-every must look like MIN-MAX in ms (such as 2000-6000), MIN at least 100, got "${values['fault-every']}"`);
  }
  return {
    investments: integer('investments', values.investments, 100, 10_000_000) ?? 50_000,
    faultEveryMs: [Number(every[1]), Number(every[2])],
    workers: integer('workers', values.workers, 1, 64) ?? 4,
    seed: integer('seed', values.seed, 0, 2 ** 31),
    providerFaultRate: rate,
    logDir: values.logs,
    json: values.json,
  };
}

async function main(): Promise<number> {
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`chaos: ${(error as Error).message}`);
    return 2;
  }
  if (options === 'help') {
    console.log(help);
    return 0;
  }
  // Made before anything starts: the first worker log is written when a worker ends, minutes in.
  if (options.logDir) mkdirSync(options.logDir, { recursive: true });
  // A first Ctrl-C stops the scenario and lets it remove what it made (its database above all); a second one leaves at once.
  const stop = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stop.signal.aborted) {
        killSpawnedWorkers();
        process.exit(130);
      }
      console.error(`chaos: ${signal}: stopping and removing the scenario's database, Redis and workers (again to leave at once)`);
      stop.abort();
    });
  }
  let report;
  try {
    report = await runChaos({ ...options, signal: stop.signal, log: (line) => console.log(line) });
  } catch (error) {
    if (!stop.signal.aborted) throw error;
    return 130;
  }
  console.log(formatReport(report));
  if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  return report.ok ? 0 : 1;
}

// Whatever happens, no worker process outlives the scenario.
process.on('exit', killSpawnedWorkers);
process.exitCode = await main();
