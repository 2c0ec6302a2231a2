import type { FleetConfig } from '../config/env.js';
import { spreadTag } from './slot.js';

/** One of the queues a family's jobs are spread over, with the keys of its runs. */
export interface QueueShard {
  family: string;
  index: number;
  /** BullMQ queue name: the family's name, with `.index` when the family has several shards. */
  queueName: string;
  /** BullMQ prefix of the shard's queue, and prefix of the keys that count its runs' outcomes. */
  prefix: string;
}

/**
 * Which prefix each of the fleet's keys goes under, and how a family's jobs
 * are spread over queues.
 *
 * On one Redis with one shard per family, everything is under the configured
 * prefix, as it always was. On a Redis Cluster every script and multi-key
 * command must stay within one hash slot: a shard's queue and its runs'
 * counters (the scripts that count outcomes read both) share a hash tag of
 * their own, chosen so that the shards of a family spread over the masters;
 * everything else (budgets, metrics, throttles, the schedules and
 * notifications queues) shares the fleet's tag.
 */
export interface KeyLayout {
  /** Prefix of the keys that belong to no family. */
  shared: string;
  /** The family's shards; one unless the family is sharded. */
  shards(family: string): QueueShard[];
  /** The shard a job goes to: a stable hash of its id, so a row's job is always looked for in the same queue. */
  shardOf(family: string, jobId: string): QueueShard;
}

/** FNV-1a: cheap, stable across processes and versions, well spread over short ids. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** `shardCounts`: shards per family (see resolveShardCounts); default one each. */
export function keyLayout(config: Pick<FleetConfig, 'queuePrefix' | 'redisCluster'>, shardCounts?: { of(family: string): number }): KeyLayout {
  const tagged = Boolean(config.redisCluster);
  const bare = config.queuePrefix.replace(/[{}]/g, '');
  const made = new Map<string, QueueShard[]>();
  const prefixOf = (family: string, index: number, count: number): string => {
    if (tagged) return count === 1 ? `{${bare}.${family}}` : `{${spreadTag(`${bare}.${family}.${index}`, index, count)}}`;
    return count === 1 ? config.queuePrefix : `${config.queuePrefix}.${family}.${index}`;
  };
  const shards = (family: string): QueueShard[] => {
    let list = made.get(family);
    if (!list) {
      const count = shardCounts?.of(family) ?? 1;
      list = Array.from({ length: count }, (_, index) => ({
        family,
        index,
        queueName: count === 1 ? family : `${family}.${index}`,
        prefix: prefixOf(family, index, count),
      }));
      made.set(family, list);
    }
    return list;
  };
  return {
    shared: tagged ? `{${bare}}` : config.queuePrefix,
    shards,
    shardOf(family, jobId) {
      const list = shards(family);
      return list.length === 1 ? list[0]! : list[hash(jobId) % list.length]!;
    },
  };
}
