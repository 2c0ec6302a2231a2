import { randomBytes } from 'node:crypto';
import { ioredis } from '../../deps/ioredis.js';
import type { RedisClient as Redis } from '../../redis/connection.js';
import { runKeys } from './keys.js';
import { runScripts } from './scripts.js';

/**
 * The fleet's mark in a Redis it uses: an id made when the fleet first
 * writes there, and the ids of earlier markers that this Redis is known to
 * have lost. A run records the marker of its Redis; the run's live data is
 * lost only when that Redis's current marker is its marker or names it as
 * lost. A Redis without a marker, or with an unrelated one, says nothing
 * about the run: the command may just be pointed at the wrong Redis.
 */
export interface RedisMarker {
  id: string;
  /** Markers this Redis had before it lost its data, newest first. */
  lost: string[];
}

const MAX_LOST = 50;

export async function readMarker(redis: Redis, prefix: string): Promise<RedisMarker | null> {
  const raw = await redis.hgetall(runKeys(prefix).marker);
  if (!raw.id) return null;
  return { id: raw.id, lost: raw.lost ? raw.lost.split(' ') : [] };
}

/**
 * The marker of this Redis, created if it has none. `seen` is the marker
 * this same process saw in this same Redis earlier: if the current one
 * differs, that one (and what it had lost) is recorded as lost.
 */
export async function ensureMarker(redis: Redis, prefix: string, seen: RedisMarker | null = null): Promise<RedisMarker> {
  const fresh = `redis-${randomBytes(8).toString('hex')}`;
  const [id, lost] = (await runScripts
    .on(redis)
    .ensureMarker([runKeys(prefix).marker], [fresh, seen?.id ?? '', new Date().toISOString(), seen?.lost.slice(0, MAX_LOST - 1).join(' ') ?? ''])) as [
    string,
    string,
  ];
  return { id, lost: lost ? lost.split(' ').slice(0, MAX_LOST) : [] };
}

/** Where a run's Redis was: the marker it had and its address. */
export interface RunRedis {
  redisMarker: string | null;
  redisAddress: string | null;
}

/**
 * Whether what this Redis shows (its marker, at `address`) proves that the
 * Redis of a run lost the run's data: the run's marker is this Redis's
 * marker (and the caller found the run's keys gone), or is recorded as lost
 * here, or this is the run's Redis address and it now carries another
 * marker. A Redis at another address, or without a marker, proves nothing.
 */
export function provesLoss(marker: RedisMarker | null, address: string, run: RunRedis): boolean {
  if (!marker || !run.redisMarker) return false;
  return marker.id === run.redisMarker || marker.lost.includes(run.redisMarker) || run.redisAddress === address;
}

/** Where a run's keys are: host:port/db of the connection and the key prefix (never a password). */
export function redisAddressOf(redis: Redis, prefix: string): string {
  if (redis instanceof ioredis.Cluster) {
    // The seed nodes the cluster was reached through: unlike its masters, they do not move with a failover.
    const { startupNodes } = redis as unknown as { startupNodes: ({ host?: string; port?: number } | string | number)[] };
    const seeds = startupNodes.map((node) => (typeof node === 'object' ? `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}` : String(node)));
    return `cluster ${seeds.join(',')}/${prefix}`;
  }
  const { host, port, db } = redis.options;
  return `${host ?? '127.0.0.1'}:${port ?? 6379}/${db ?? 0}/${prefix}`;
}
