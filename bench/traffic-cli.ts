// npm run traffic -- [options]; --help lists them.
//
// The application's traffic against DATABASE_URL (a rehearsal copy, never
// production: it writes rows, of users of its own) until Ctrl-C or
// --seconds, with a line of figures per request kind every --every seconds;
// then it deletes its users and everything of theirs unless --keep.
import { loadConfig } from '../src/config/env.js';
import { createPrisma } from '../src/db/prisma.js';
import { integerOption, scriptOptions } from './script-options.js';
import { TrafficLog, TrafficSimulator, type WindowStats } from './traffic.js';

const usage = `Usage: npm run traffic -- [options]

The application's traffic against DATABASE_URL: open a portfolio, add an
investment, buy more of one, refresh a price, and price alerts once that phase
is in. Only ever against a rehearsal copy, never production: it writes rows,
of users of its own, and deletes them at the end unless --keep. A line of
figures per request kind every --every seconds, until Ctrl-C or --seconds.

Options:
  --rate N      requests per second (default 200)
  --seconds S   stop after S seconds; 0 runs until Ctrl-C (default 0)
  --every S     seconds between two lines of figures (default 10)
  --users N     simulated users (default 50)
  --keep        keep the simulated users and their rows
  -h, --help    this help`;

const values = scriptOptions('traffic', usage, {
  rate: { type: 'string', default: '200' },
  seconds: { type: 'string', default: '0' },
  every: { type: 'string', default: '10' },
  users: { type: 'string', default: '50' },
  keep: { type: 'boolean', default: false },
});
const numbers = {
  rate: integerOption('traffic', 'rate', values.rate, 1),
  seconds: integerOption('traffic', 'seconds', values.seconds, 0),
  every: integerOption('traffic', 'every', values.every, 1),
  users: integerOption('traffic', 'users', values.users, 1),
};

function print(window: WindowStats): void {
  const line = (name: string, s: WindowStats['all']) =>
    `  ${name.padEnd(15)} ${String(s.count).padStart(7)} req  ${String(s.errors).padStart(4)} err  p50 ${s.p50Ms.toFixed(1)} ms  p95 ${s.p95Ms.toFixed(1)} ms  p99 ${s.p99Ms.toFixed(1)} ms`;
  console.log(`${window.label}: ${window.perSecond.toFixed(0)} requests/s over ${window.seconds.toFixed(0)} s`);
  for (const [kind, stats] of Object.entries(window.byKind)) console.log(line(kind, stats));
  console.log(line('all', window.all));
  for (const error of window.all.sampleErrors) console.log(`  error: ${error}`);
}

const config = loadConfig();
const CONNECTIONS = 20;
const prisma = createPrisma(config.databaseUrl, { maxConnections: CONNECTIONS, applicationName: 'application (traffic)' });
const traffic = new TrafficSimulator(prisma, { rate: numbers.rate, users: numbers.users, connections: CONNECTIONS });
await traffic.setUp();
console.log(`traffic at ${numbers.rate} requests/s; phases seen: ${JSON.stringify(traffic.phasesSeen)}; Ctrl-C to stop`);
const log = new TrafficLog();
let windowFrom = Date.now();
traffic.start();
// Each line is the requests due in its span, up to the last one that has answered: a slow one is not left out.
const closeWindow = (label: (to: number) => string) => {
  log.add(traffic.drain());
  const to = log.settledAt;
  print(log.window(label(to), [[windowFrom, to]]));
  log.forgetBefore(to);
  windowFrom = to;
};
const report = setInterval(() => closeWindow((to) => new Date(to).toISOString()), numbers.every * 1000);
await new Promise<void>((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
  if (numbers.seconds > 0) setTimeout(resolve, numbers.seconds * 1000);
});
clearInterval(report);
await traffic.stop();
closeWindow(() => 'last');
if (!values.keep) console.log(`removed ${await traffic.tearDown()} simulated users and their rows`);
await prisma.$disconnect();
