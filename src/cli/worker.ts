import { familyNames, families as allFamilies } from '../families/index.js';
import { runWorkerProcess } from '../../workers/process.js';
import { workerSettings } from '../../workers/settings.js';
import { defineCommand, integerFlag, rateFlag, UsageError } from './command.js';
import { parseFamilyList } from './families.js';

const help = `Usage: tys worker [--families NAME,...] [--concurrency N] [--rate N/DURATION]

Runs workers in the foreground until SIGTERM or SIGINT (Ctrl-C), then lets
active jobs finish and exits 0. Start as many worker processes, on as many
machines, as the work needs: they share the queues through Redis.

Options:
  --families LIST     comma-separated families (default TYS_FAMILIES, or all:
                      ${familyNames().join(', ')})
  --concurrency N     jobs per family at once in this process (default
                      TYS_CONCURRENCY, or the family's own)
  --rate N/DURATION   at most N jobs per DURATION per family queue, like 500/1s
                      (BullMQ's limiter: it holds for the whole queue, every
                      worker process together; default: the family's own)
  -h, --help          this help

The same process runs without the CLI as node dist/workers/index.js.

Environment: DATABASE_URL, REDIS_URL, TYS_QUEUE_PREFIX, TYS_LOG_LEVEL, the
market-data settings (docs/operations.md), and
  TYS_LOCK_DURATION_MS     how long a job stays locked to a worker that stops
                           renewing it (killed, frozen) before another takes
                           it over (default 30000)
  TYS_STALLED_INTERVAL_MS  how often workers look for such jobs (default 30000)
  TYS_SHUTDOWN_TIMEOUT_MS  how long active jobs may take to finish after
                           SIGTERM before the process exits 1 anyway; the
                           jobs it still holds go to other workers as
                           stalled (default 60000)
  TYS_DB_POOL_SIZE         Postgres connections this process may open
                           (default 20; mind the server's max_connections
                           times the number of worker processes); as many
                           as one family's jobs use at once are opened
                           before the first job
  TYS_NICE                 niceness, 0 to 19 (default 0): 19 on a machine
                           shared with Postgres leaves it the CPU first;
                           tys then runs the process in a session of its
                           own (docs/operations.md says why)

Throttling on the database's health (on unless TYS_THROTTLE=off): while a
threshold is passed, the workers take no new job (active ones finish,
nothing fails) and take jobs again once it is not; tys status says why.
  TYS_THROTTLE_LOCK_WAITERS     sessions waiting on locks (default 5)
  TYS_THROTTLE_CONNECTIONS      share of max_connections in use (default 0.9)
  TYS_THROTTLE_LATENCY_RATIO    p95 of the family's writes over the last
                                10 s against its baseline (default 1.2)
  TYS_THROTTLE_LATENCY_FLOOR_MS ...and at least this much above it (default 20)
  TYS_THROTTLE_PROBE_MS         the longest a trivial query (SELECT 1) may
                                take: the server is short of CPU (default 50)
  TYS_THROTTLE_BASELINE_MS      the first writes that make the baseline
                                (default 60000)
  TYS_REPLICA_URL               a replica of the database (postgres://...):
                                its replay lag is watched too (default none)
  TYS_THROTTLE_REPLICA_LAG_MS   how far behind the replica may fall
                                (default 10000)`;

export const workerCommand = defineCommand({
  name: 'worker',
  summary: 'run workers in the foreground',
  help,
  options: {
    families: { type: 'string' },
    concurrency: { type: 'string' },
    rate: { type: 'string' },
  },
  async run({ values, positionals, config }) {
    if (positionals.length > 0) throw new UsageError(`tys worker: unexpected argument "${positionals[0]}"`);
    const concurrency = integerFlag('worker', 'concurrency', values.concurrency, 1, 1_000);
    const rate = rateFlag('worker', values.rate);
    const limiter = rate && { max: rate.max, duration: rate.windowMs };
    const settings = workerSettings();
    await runWorkerProcess(config, {
      ...settings,
      families: values.families !== undefined ? parseFamilyList('worker', values.families) : settings.families,
      knownFamilies: allFamilies,
      concurrency: concurrency ?? settings.concurrency,
      limiter,
    });
    return 0;
  },
});
