import type { Queue } from 'bullmq';
import { Counter, Gauge, Registry } from 'prom-client';
import type { PrismaClient } from '../src/db/prisma.js';
import { COUNTED_OUTCOMES, type DurationHistogram, type FleetMetrics } from '../src/fleet/metrics.js';
import type { AuditWatch } from './audit-watch.js';
import { throttleReasons } from '../src/fleet/db-health.js';
import { AlphaVantage } from '../src/market/alpha-vantage.js';
import { MarketGateway } from '../src/market/gateway.js';
import type { RedisClient } from '../src/redis/connection.js';

const STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized'] as const;

/**
 * Prometheus metrics, read fresh at every scrape: job counts from the
 * queues, runs from their records, outcome counters, durations, rate-limit
 * delays and provider answers from what the workers keep in Redis, audit
 * findings from the AuditWatch's cache.
 */
function histogramLines(name: string, labels: string, h: DurationHistogram): string[] {
  return [
    ...h.buckets.map((b) => `${name}_bucket{${labels},le="${b.le}"} ${b.count}`),
    `${name}_sum{${labels}} ${h.sum}`,
    `${name}_count{${labels}} ${h.count}`,
  ];
}

/** Providers whose answers the workers count (the name each provider gives itself). */
const PROVIDERS = [AlphaVantage.NAME] as const;

export function createMetricsRegistry(deps: {
  /** Queues by family (a sharded family's shards, added up) and by name for the others. */
  queues: Map<string, Queue[]>;
  /** The job families (queues that are not families have no outcomes or runs). */
  families: string[];
  prisma: PrismaClient;
  metrics: FleetMetrics;
  audits: AuditWatch;
  redis: RedisClient;
  prefix: string;
}): {
  render(): Promise<string>;
} {
  const registry = new Registry();
  new Gauge({
    name: 'tys_queue_jobs',
    help: 'Jobs in each queue by state',
    labelNames: ['family', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [name, queues] of deps.queues) {
        const counts = await Promise.all(queues.map((queue) => queue.getJobCounts(...STATES)));
        for (const state of STATES)
          this.set(
            { family: name, state },
            counts.reduce((sum, c) => sum + (c[state] ?? 0), 0),
          );
      }
    },
  });
  new Counter({
    name: 'tys_jobs_total',
    help: 'Jobs that ended, by family and outcome, as the workers counted them; retried is a failed attempt tried again. Error rate: failed over the sum of completed, skipped and failed',
    labelNames: ['family', 'outcome'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const family of deps.families) {
        const counts = await deps.metrics.outcomes(family);
        for (const outcome of COUNTED_OUTCOMES) this.inc({ family, outcome }, counts[outcome]);
      }
    },
  });
  new Gauge({
    name: 'tys_runs',
    help: 'Runs by family and status',
    labelNames: ['family', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await deps.prisma.fleetRun.groupBy({ by: ['family', 'status'], _count: true });
      for (const row of rows) this.set({ family: row.family, status: row.status }, row._count);
    },
  });
  new Gauge({
    name: 'tys_run_oldest_running_seconds',
    help: 'Age of the oldest run of each family that has not ended (0 when none is going)',
    labelNames: ['family'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await deps.prisma.fleetRun.groupBy({ by: ['family'], where: { finishedAt: null }, _min: { startedAt: true } });
      const oldest = new Map(rows.map((row) => [row.family, row._min.startedAt]));
      for (const family of deps.families) {
        const startedAt = oldest.get(family);
        this.set({ family }, startedAt ? Math.max(0, (Date.now() - startedAt.getTime()) / 1000) : 0);
      }
    },
  });
  // Read once per scrape, however many metrics show a piece of it.
  let scrape = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, load: () => Promise<T>): Promise<T> => {
    if (!scrape.has(key)) scrape.set(key, load());
    return scrape.get(key) as Promise<T>;
  };
  const providerAnswers = (provider: string) => once(`provider ${provider}`, () => deps.metrics.providerAnswers(provider));
  const lastEnded = () =>
    once(
      'last ended',
      () =>
        deps.prisma.$queryRaw<{ family: string; seconds: number; ended: Date }[]>`
      SELECT DISTINCT ON (family) family, EXTRACT(EPOCH FROM "finishedAt" - "startedAt")::float8 AS seconds, "finishedAt" AS ended
        FROM "FleetRun" WHERE "finishedAt" IS NOT NULL AND status IN ('COMPLETED', 'FAILED')
       ORDER BY family, "finishedAt" DESC`,
    );
  new Gauge({
    name: 'tys_run_last_duration_seconds',
    help: 'How long the last run of each family that ran to its end (COMPLETED or FAILED) took',
    labelNames: ['family'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await lastEnded()) this.set({ family: row.family }, row.seconds);
    },
  });
  new Gauge({
    name: 'tys_run_last_ended_timestamp_seconds',
    help: 'When the last run of each family that ran to its end (COMPLETED or FAILED) ended, in Unix time',
    labelNames: ['family'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await lastEnded()) this.set({ family: row.family }, row.ended.getTime() / 1000);
    },
  });
  new Gauge({
    name: 'tys_audit_findings',
    help: "What each family's audit still finds, check by check (for constraints: rows violating each phase 4 CHECK constraint); refreshed on an interval",
    labelNames: ['family', 'check'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { family, findings } of deps.audits.snapshot()) for (const f of findings) this.set({ family, check: f.check }, f.count);
    },
  });
  new Gauge({
    name: 'tys_audit_timestamp_seconds',
    help: "When each family's audit figures were last read, in Unix time",
    labelNames: ['family'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { family, at } of deps.audits.snapshot()) this.set({ family }, at / 1000);
    },
  });
  new Gauge({
    name: 'tys_verify_problems',
    help: "Rows each family's verification finds wrong (what tys verify FAMILY lists); refreshed on an interval",
    labelNames: ['family'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { family, problems } of deps.audits.verifications()) this.set({ family }, problems);
    },
  });
  new Gauge({
    name: 'tys_workers',
    help: 'Worker connections listening on each queue, over every process and machine',
    labelNames: ['family'],
    registers: [registry],
    async collect() {
      this.reset();
      // BullMQ counts workers with CLIENT LIST, which some managed Redis services refuse: then no figure, not a failed scrape.
      for (const [name, queues] of deps.queues) {
        const counts = await Promise.all(queues.map((queue) => queue.getWorkersCount().catch(() => null)));
        // A worker process listens on every shard of its families: the first shard counts the processes.
        if (counts[0] !== null && counts[0] !== undefined) this.set({ family: name }, counts[0]);
      }
    },
  });
  new Counter({
    name: 'tys_provider_answers_total',
    help: "The market-data provider's answers by class (data, no-data, rate-limited, quota-spent, premium, rejected, transient)",
    labelNames: ['provider', 'class'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const provider of PROVIDERS) {
        const { answers } = await providerAnswers(provider);
        for (const [answerClass, n] of Object.entries(answers)) this.inc({ provider, class: answerClass }, n);
      }
    },
  });
  new Gauge({
    name: 'tys_provider_budget_left',
    help: "Calls the shared call budget still allowed in its window at the provider's last answer",
    labelNames: ['provider'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const provider of PROVIDERS) {
        const { budgetLeft } = await providerAnswers(provider);
        if (budgetLeft !== null) this.set({ provider }, budgetLeft);
      }
    },
  });
  new Gauge({
    name: 'tys_throttled',
    help: 'Whether the workers of a family hold back for the database (1) or not (0); tys status says why',
    labelNames: ['family'],
    registers: [registry],
    async collect() {
      this.reset();
      const families = [...deps.queues.keys()];
      const reasons = await throttleReasons(deps.redis, deps.prefix, families);
      for (const family of families) this.set({ family }, reasons[family] ? 1 : 0);
    },
  });
  new Gauge({
    name: 'tys_market_quota_spent_seconds',
    help: "Seconds until the market-data provider renews the key's spent daily quota; 0 while calls are allowed",
    registers: [registry],
    async collect() {
      this.set(await MarketGateway.quotaSpentSeconds(deps.redis, deps.prefix));
    },
  });
  return {
    async render() {
      scrape = new Map();
      // The histogram and the rate-limit counters are kept by the workers;
      // they are written here in the same text format.
      const lines: string[] = ['# HELP tys_job_duration_seconds Time from a job starting to its outcome', '# TYPE tys_job_duration_seconds histogram'];
      const limits: string[] = ['# HELP tys_rate_limit_delays_total Times a job waited for the provider budget', '# TYPE tys_rate_limit_delays_total counter'];
      const limitSeconds: string[] = [
        '# HELP tys_rate_limit_delay_seconds_total Seconds jobs were held back by the provider budget',
        '# TYPE tys_rate_limit_delay_seconds_total counter',
      ];
      for (const family of deps.queues.keys()) {
        lines.push(...histogramLines('tys_job_duration_seconds', `family="${family}"`, await deps.metrics.durations(family)));
        const r = await deps.metrics.rateLimitDelays(family);
        limits.push(`tys_rate_limit_delays_total{family="${family}"} ${r.count}`);
        limitSeconds.push(`tys_rate_limit_delay_seconds_total{family="${family}"} ${r.seconds}`);
      }
      const provider = [
        '# HELP tys_provider_request_duration_seconds Time the market-data provider took to answer',
        '# TYPE tys_provider_request_duration_seconds histogram',
      ];
      for (const name of PROVIDERS) {
        provider.push(...histogramLines('tys_provider_request_duration_seconds', `provider="${name}"`, (await providerAnswers(name)).durations));
      }
      return `${await registry.metrics()}\n${[...lines, ...limits, ...limitSeconds, ...provider].join('\n')}\n`;
    },
  };
}
