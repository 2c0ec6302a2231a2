import type { FleetConfig } from '../config/env.js';

/**
 * Which prefix each of the fleet's keys goes under. On one Redis, all under
 * the configured prefix, as always. On a Redis Cluster every script and
 * multi-key command must stay within one hash slot, and each family should
 * be free to live on another master: a family's queue and its runs' keys
 * (the scripts that count outcomes read both) share a hash tag of the
 * family's own; everything else (budgets, metrics, throttles, the schedules
 * and notifications queues) shares the fleet's tag.
 */
export interface KeyLayout {
  /** Prefix of the keys that belong to no family. */
  shared: string;
  /** Prefix of a family's queue (its BullMQ prefix) and of its runs' keys. */
  family(name: string): string;
  /** Whether the layout is the cluster's, with hash tags. */
  tagged: boolean;
}

export function keyLayout(config: Pick<FleetConfig, 'queuePrefix' | 'redisCluster'>): KeyLayout {
  if (!config.redisCluster) return { shared: config.queuePrefix, family: () => config.queuePrefix, tagged: false };
  const bare = config.queuePrefix.replace(/[{}]/g, '');
  return { shared: `{${bare}}`, family: (name) => `{${bare}.${name}}`, tagged: true };
}
