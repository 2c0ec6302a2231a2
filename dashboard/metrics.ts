import type { Queue } from 'bullmq';
import { Gauge, Registry } from 'prom-client';
import type { PrismaClient } from '../src/db/prisma.js';
import type { FleetMetrics } from '../src/fleet/metrics.js';
import { throttleReasons } from '../src/fleet/db-health.js';
import { MarketGateway } from '../src/market/gateway.js';
import type { Redis } from 'ioredis';

const STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized'] as const;

/**
 * Prometheus metrics, read fresh at every scrape: job counts from the
 * queues, job outcome totals from the run records, durations and rate-limit
 * delays from what the workers keep in Redis.
 */
export function createMetricsRegistry(deps: { queues: Map<string, Queue>; prisma: PrismaClient; metrics: FleetMetrics; redis: Redis; prefix: string }): {
  registry: Registry;
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
      for (const [name, queue] of deps.queues) {
        const counts = await queue.getJobCounts(...STATES);
        for (const state of STATES) this.set({ family: name, state }, counts[state] ?? 0);
      }
    },
  });
  new Gauge({
    name: 'tys_jobs_total',
    help: 'Jobs that ended, by family and outcome, over every recorded run',
    labelNames: ['family', 'outcome'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await deps.prisma.fleetRun.groupBy({ by: ['family'], _sum: { completed: true, skipped: true, failed: true } });
      for (const row of rows) {
        this.set({ family: row.family, outcome: 'completed' }, row._sum.completed ?? 0);
        this.set({ family: row.family, outcome: 'skipped' }, row._sum.skipped ?? 0);
        this.set({ family: row.family, outcome: 'failed' }, row._sum.failed ?? 0);
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
    registry,
    async render() {
      // The histogram and the rate-limit counters are kept by the workers;
      // they are written here in the same text format.
      const lines: string[] = [
        '# HELP tys_job_duration_seconds Time from a job starting to its outcome',
        '# TYPE tys_job_duration_seconds histogram',
      ];
      const limits: string[] = [
        '# HELP tys_rate_limit_delays_total Times a job waited for the provider budget',
        '# TYPE tys_rate_limit_delays_total counter',
      ];
      const limitSeconds: string[] = [
        '# HELP tys_rate_limit_delay_seconds_total Seconds jobs were held back by the provider budget',
        '# TYPE tys_rate_limit_delay_seconds_total counter',
      ];
      for (const family of deps.queues.keys()) {
        const h = await deps.metrics.durations(family);
        for (const b of h.buckets) lines.push(`tys_job_duration_seconds_bucket{family="${family}",le="${b.le}"} ${b.count}`);
        lines.push(`tys_job_duration_seconds_sum{family="${family}"} ${h.sum}`);
        lines.push(`tys_job_duration_seconds_count{family="${family}"} ${h.count}`);
        const r = await deps.metrics.rateLimitDelays(family);
        limits.push(`tys_rate_limit_delays_total{family="${family}"} ${r.count}`);
        limitSeconds.push(`tys_rate_limit_delay_seconds_total{family="${family}"} ${r.seconds}`);
      }
      return `${await registry.metrics()}\n${[...lines, ...limits, ...limitSeconds].join('\n')}\n`;
    },
  };
}
