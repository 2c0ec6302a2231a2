// Adds N no-op jobs with addBulk, one page in flight, in a process of its
// own: the adding half of BullMQ's two-process ceiling. Prints one JSON line
// with its CPU seconds.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const [queueName, prefix, total] = [process.argv[2]!, process.argv[3]!, Number(process.argv[4])];
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const queue = new Queue(queueName, { connection: redis, prefix });
const cpu = process.cpuUsage();
let inFlight: Promise<unknown> = Promise.resolve();
for (let i = 0; i < total; i += 1000) {
  const jobs = Array.from({ length: Math.min(1000, total - i) }, (_, k) => ({ name: 'noop', data: { k: i + k }, opts: { jobId: `noop-${i + k}` } }));
  await inFlight;
  inFlight = queue.addBulk(jobs);
}
await inFlight;
const used = process.cpuUsage(cpu);
await queue.close();
redis.disconnect();
process.stdout.write(`${JSON.stringify({ cpuSeconds: (used.user + used.system) / 1e6 })}\n`);
