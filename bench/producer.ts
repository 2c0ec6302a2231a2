// Runs one enqueue in a process of its own so that the benchmark can report
// the producer's peak RSS apart from everything else. Prints one JSON line.
// Arguments: FAMILY [RATE FIRST]: a run over the FIRST investments by id,
// paced at RATE (like 400/1s) unless RATE is empty.
import { loadConfig } from '../src/config/env.js';
import { parseRate } from '../src/config/rate.js';
import { findFamily } from '../src/families/index.js';
import { openFleet } from '../src/fleet/context.js';
import type { Scope } from '../src/fleet/scope.js';

const [familyName = 'lots', rateText, first] = process.argv.slice(2);
const family = findFamily(familyName);
if (!family) throw new Error(`unknown family ${familyName}`);
const fleet = await openFleet(loadConfig());
let scope: Scope = { kind: 'all' };
if (first !== undefined) {
  const rows = await fleet.prisma.$queryRaw<{ id: string }[]>`SELECT id FROM "Investment" ORDER BY id LIMIT ${Number(first)}`;
  scope = { kind: 'investments', ids: rows.map((row) => row.id) };
}
const started = process.hrtime.bigint();
const cpu = process.cpuUsage();
const result = await fleet.enqueue(family, scope, rateText ? { rate: parseRate(rateText) } : {});
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const used = process.cpuUsage(cpu);
await fleet.close();
process.stdout.write(
  `${JSON.stringify({ ...result, seconds, cpuSeconds: (used.user + used.system) / 1e6, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
);
