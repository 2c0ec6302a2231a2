// npm run traffic -- [--rate 200] [--seconds 0] [--every 10] [--users 50] [--keep]
//
// The application's traffic against DATABASE_URL (a rehearsal copy, never
// production: it writes rows, of users of its own) until Ctrl-C or
// --seconds, with a line of figures per request kind every --every seconds;
// then it deletes its users and everything of theirs unless --keep.
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/env.js';
import { createPrisma } from '../src/db/prisma.js';
import { TrafficLog, TrafficSimulator, type WindowStats } from './traffic.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '0' },
    every: { type: 'string', default: '10' },
    users: { type: 'string', default: '50' },
    keep: { type: 'boolean', default: false },
  },
});
const numbers = { rate: Number(values.rate), seconds: Number(values.seconds), every: Number(values.every), users: Number(values.users) };
for (const [name, value] of Object.entries(numbers)) {
  if (!Number.isInteger(value) || value < (name === 'seconds' ? 0 : 1)) {
    console.error(
      `error: --${name} must be a ${name === 'seconds' ? 'non-negative' : 'positive'} integer, got "${values[name as keyof typeof values] as string}"`,
    );
    process.exit(2);
  }
}

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
