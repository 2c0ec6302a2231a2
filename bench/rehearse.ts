// npm run rehearse -- [--investments 200000] [--rate 200] [--baseline 60] [--workers 1] [--fleet-rate 500/1s] [--fleet-nice 0..19] [--fleet-cpus LIST] [--app-cpus LIST] [--alternate BUSY/QUIET] [--json rehearsal.json] [--keep]
//
// The whole migration of a scratch MVP database while the application's
// traffic flows (see bench/rehearsal.ts), printed as a table per step and
// written as JSON.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { reportTable, rehearse } from './rehearsal.js';

const { values } = parseArgs({
  options: {
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
  },
});
const numbers = { investments: Number(values.investments), rate: Number(values.rate), baseline: Number(values.baseline), workers: Number(values.workers) };
const fleetNice = Number(values['fleet-nice']);
if (!Number.isInteger(fleetNice) || fleetNice < 0 || fleetNice > 19) {
  console.error(`error: --fleet-nice must be an integer from 0 to 19, got "${values['fleet-nice']}"`);
  process.exit(2);
}
for (const name of ['fleet-cpus', 'app-cpus'] as const) {
  const list = values[name];
  if (list !== undefined && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) {
    console.error(`error: --${name} must be a CPU list like 1, 0-1 or 0,2, got "${list}"`);
    process.exit(2);
  }
}
// BUSY/QUIET seconds: each family's run works BUSY seconds, then its workers stop for QUIET (under a second).
const alternate = values.alternate === undefined ? undefined : /^(\d+)\/(0?\.\d+)$/.exec(values.alternate);
if (alternate === null || (alternate && (Number(alternate[1]) < 1 || Number(alternate[2]) < 0.1))) {
  console.error(`error: --alternate must be BUSY/QUIET, whole seconds of work and a quiet spell from 0.1 to 0.9 s, like 10/0.8, got "${values.alternate}"`);
  process.exit(2);
}
for (const [name, value] of Object.entries(numbers)) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`error: --${name} must be a positive integer, got "${values[name as keyof typeof values] as string}"`);
    process.exit(2);
  }
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
writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
console.log(`written to ${values.json}`);
const failedJobs = result.steps.reduce((sum, step) => sum + (step.fleet?.failed ?? 0), 0);
if (failedJobs > 0) console.log(`${failedJobs} jobs failed: tys status --run ID names their reasons`);
process.exit(result.verify.lots.ok && result.verify.constraintsLeft === 0 && failedJobs === 0 ? 0 : 1);
