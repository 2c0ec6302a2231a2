// Runs one enqueue in a process of its own so that the benchmark can report
// the producer's peak RSS apart from everything else. Prints one JSON line.
import { loadConfig } from '../src/config/env.js';
import { findFamily } from '../src/families/index.js';
import { openFleet } from '../src/fleet/context.js';

const family = findFamily(process.argv[2] ?? 'lots');
if (!family) throw new Error(`unknown family ${process.argv[2]}`);
const fleet = await openFleet(loadConfig());
const started = process.hrtime.bigint();
const cpu = process.cpuUsage();
const result = await fleet.enqueue(family);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const used = process.cpuUsage(cpu);
await fleet.close();
process.stdout.write(
  `${JSON.stringify({ ...result, seconds, cpuSeconds: (used.user + used.system) / 1e6, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
);
