import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Anyone who can write to Redis can add a job that names a run: a leftover
 * of an older deployment, a script, a bug. A run's producer therefore seals
 * each job it adds with a key of the run's own (an HMAC of the job's id),
 * and a worker runs a job under a run only when the seal is that run's.
 * The key lives in the run's Postgres record, never in Redis, logs or
 * responses; the seal in the job's data proves the job's origin and gives
 * nothing away.
 */

/** A new run's sealing key: 256 random bits. */
export function newJobKey(): string {
  return randomBytes(32).toString('base64url');
}

/** 128 bits of HMAC-SHA256 of the job's id, base64url. */
export function sealOf(jobKey: string, jobId: string): string {
  return createHmac('sha256', jobKey).update(jobId).digest('base64url').slice(0, 22);
}

/** Whether `seal` is the seal of `jobId` under `jobKey`, in constant time. */
export function sealMatches(jobKey: string, jobId: string, seal: unknown): boolean {
  if (typeof seal !== 'string' || seal.length !== 22) return false;
  return timingSafeEqual(Buffer.from(sealOf(jobKey, jobId)), Buffer.from(seal));
}
