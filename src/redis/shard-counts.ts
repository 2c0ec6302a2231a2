import { ioredis } from '../deps/ioredis.js';
import { ConfigError, type FleetConfig } from '../config/env.js';
import type { RedisClient } from './connection.js';
import { keyLayout } from './key-layout.js';

function countsKey(config: Pick<FleetConfig, 'queuePrefix' | 'redisCluster'>): string {
  return `${keyLayout(config).shared}:shards`;
}

/**
 * How many shards each family has, as this process will use them: the count
 * Redis has on record for the family, else the configured one, else one per
 * master (one on a single Redis). Producers and workers must agree, or jobs
 * would wait in a queue nobody reads: a configured count that differs from
 * the record is refused, naming both.
 */
export async function resolveShardCounts(redis: RedisClient, config: FleetConfig): Promise<ShardCounts> {
  const recorded = await redis.hgetall(countsKey(config));
  const masters = redis instanceof ioredis.Cluster ? Math.max(1, redis.nodes('master').length) : 1;
  for (const [family, wanted] of Object.entries(config.shards?.byFamily ?? {})) checkAgainstRecord(family, wanted, recorded[family]);
  const all = config.shards?.all;
  if (all) for (const [family, count] of Object.entries(recorded)) if (!config.shards?.byFamily[family]) checkAgainstRecord(family, all, count, 'TYS_SHARDS');
  const of = (family: string): number => (recorded[family] ? Number(recorded[family]) : (config.shards?.byFamily[family] ?? config.shards?.all ?? masters));
  return {
    of,
    async pin(family) {
      const count = of(family);
      await redis.hsetnx(countsKey(config), family, count);
      checkAgainstRecord(family, count, (await redis.hget(countsKey(config), family)) ?? undefined, 'this process');
    },
  };
}

export interface ShardCounts {
  of(family: string): number;
  /** Records the family's count if Redis has none yet, before the first job is added or taken; refuses a count that differs from the record. */
  pin(family: string): Promise<void>;
}

function checkAgainstRecord(family: string, wanted: number, recorded: string | undefined, source = settingName(family)): void {
  if (recorded === undefined || Number(recorded) === wanted) return;
  throw new ConfigError(
    `${source} says ${wanted} shard(s) for ${family}, but its queues in Redis have ${recorded}: ` +
      `run every process with the same count (changing it needs the family's queues drained first)`,
  );
}

function settingName(family: string): string {
  return `TYS_SHARDS_${family.toUpperCase().replace(/-/g, '_')}`;
}
