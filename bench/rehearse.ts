// npm run rehearse -- [options]; --help lists them.
//
// The whole migration of a scratch MVP database while the application's
// traffic flows (see bench/rehearsal.ts), printed as a table per step and
// written as JSON.
import { writeFileSync } from 'node:fs';
import { parseRate } from '../src/config/rate.js';
import { reportTable, rehearse, verdictLine } from './rehearsal.js';
import { integerOption, refuse, scriptOptions } from './script-options.js';

const usage = `Usage: npm run rehearse -- [options]

Seeds a scratch MVP database (a database of its own on the server of
REHEARSAL_DATABASE_URL or DATABASE_URL, removed at the end), starts the
application's simulated traffic in a process of its own, measures a baseline,
then runs the whole migration as an operator would, each family with worker
processes, and validates. Prints a table per step (the application's p99
against its baseline, errors, the fleet's jobs, the p99 while tys enqueue ran
and after it, lock waits, throttling), then a line on the target (the
application's p99 at most 1.2 times its baseline in every step, with no
application error), and writes it all as JSON. Exit status 0 when every
investment verifies, no constraint violation is left and no job failed; 1
otherwise; 2 on a bad option. The target is reported, not part of the exit
status: what it measures depends on the machine.

Options:
  --investments N        MVP investments to seed (default 200000)
  --rate N               the application's requests per second (default 200)
  --baseline S           seconds of traffic measured before the migration, and again after it (default 60)
  --workers K            worker processes (default 1)
  --fleet-rate RATE      each run's pace, like 500/1s (tys enqueue --rate; default: as fast as allowed)
  --fleet-nice N         niceness of the workers and producers, 0 to 19 (default 0)
  --fleet-cpus LIST      CPUs for the workers and producers, a taskset list like 1 or 0-1
  --app-cpus LIST        CPUs for the simulated application
  --alternate BUSY/QUIET every BUSY s of a run, stop the workers for QUIET s (under 1) and compare
                         the application's p99 just before each stop with its p99 during it; the
                         ratio comes with a 90% interval from resampling the pairs: when it holds 1,
                         the run's own noise could have made the difference
  --json FILE            where to write the table (default rehearsal.json)
  --keep                 keep the scratch database and its Redis keys
  -h, --help             this help`;

const values = scriptOptions('rehearse', usage, {
  investments: { type: 'string', default: '200000' },
  rate: { type: 'string', default: '200' },
  baseline: { type: 'string', default: '60' },
  workers: { type: 'string', default: '1' },
  json: { type: 'string', default: 'rehearsal.json' },
  keep: { type: 'boolean', default: false },
  'fleet-rate': { type: 'string' },
  'fleet-nice': { type: 'string', default: '0' },
  'fleet-cpus': { type: 'string' },
  'app-cpus': { type: 'string' },
  alternate: { type: 'string' },
});
const integer = (name: string, raw: string | undefined, min: number, max?: number) => integerOption('rehearse', name, raw, min, max);
const numbers = {
  investments: integer('investments', values.investments, 1),
  rate: integer('rate', values.rate, 1),
  baseline: integer('baseline', values.baseline, 1),
  workers: integer('workers', values.workers, 1, 64),
};
if (values['fleet-rate'] !== undefined) {
  try {
    parseRate(values['fleet-rate']);
  } catch {
    refuse('rehearse', `--fleet-rate must look like 500/1s or 100/1m, got "${values['fleet-rate']}"`);
  }
}
const fleetNice = integer('fleet-nice', values['fleet-nice'], 0, 19);
for (const name of ['fleet-cpus', 'app-cpus'] as const) {
  const list = values[name];
  if (list !== undefined && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) refuse('rehearse', `--${name} must be a CPU list like 1, 0-1 or 0,2, got "${list}"`);
}
// BUSY/QUIET seconds: each family's run works BUSY seconds, then its workers stop for QUIET (under a second).
const alternate = values.alternate === undefined ? undefined : /^(\d+)\/(0?\.\d+)$/.exec(values.alternate);
if (alternate === null || (alternate && (Number(alternate[1]) < 1 || Number(alternate[2]) < 0.1))) {
  refuse('rehearse', `--alternate must be BUSY/QUIET, whole seconds of work and a quiet spell from 0.1 to 0.9 s, like 10/0.8, got "${values.alternate}"`);
}
// Ctrl-C stops at the next look and still removes the scratch database, its Redis keys and the workers.
const stop = new AbortController();
process.once('SIGINT', () => stop.abort(new Error('interrupted')));
process.once('SIGTERM', () => stop.abort(new Error('interrupted')));
const result = await rehearse({
  signal: stop.signal,
  serverUrl: process.env.REHEARSAL_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  investments: numbers.investments,
  rate: numbers.rate,
  baselineSeconds: numbers.baseline,
  workers: numbers.workers,
  keep: values.keep,
  fleetRate: values['fleet-rate'],
  fleetNice,
  fleetCpus: values['fleet-cpus'],
  appCpus: values['app-cpus'],
  alternate: alternate ? { busySeconds: Number(alternate[1]), quietSeconds: Number(alternate[2]) } : undefined,
  say: (line) => process.stderr.write(`${line}\n`),
});
console.log(reportTable(result));
console.log(
  `verify lots: ${result.verify.lots.ok ? 'OK' : 'FAILED'} (${result.verify.lots.checked} investments, ${result.appInvestments} of them the application's); ` +
    `constraint violations left: ${result.verify.constraintsLeft}`,
);
console.log(verdictLine(result.target));
writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
console.log(`written to ${values.json}`);
const failedJobs = result.steps.reduce((sum, step) => sum + (step.fleet?.failed ?? 0), 0);
if (failedJobs > 0) console.log(`${failedJobs} jobs failed: tys status --run ID names their reasons`);
process.exit(result.verify.lots.ok && result.verify.constraintsLeft === 0 && failedJobs === 0 ? 0 : 1);
