import { bullmq } from '../deps/bullmq.js';

/**
 * A failure that no retry can fix (bad data, a row that needs a person):
 * the job fails at once with this message as its readable reason.
 */
export class PermanentJobError extends bullmq.UnrecoverableError {
  constructor(message: string) {
    super(message);
    this.name = 'UnrecoverableError';
    // The reason is the whole story; a stack trace would only bury it in the dashboard.
    this.stack = `${this.name}: ${message}`;
  }
}

/**
 * A job whose claim to its run cannot be believed: it fails at once and
 * counts for no run, whatever run its data names.
 */
export class UntrustedJobError extends PermanentJobError {}

/** Job data that does not have the family's shape. */
export class InvalidJobDataError extends UntrustedJobError {}

/** A job that names a run it does not belong to. */
export class ForeignRunError extends UntrustedJobError {}

/**
 * The work must wait: a shared budget is spent or the provider asked to slow
 * down. The worker holds the family's queue back for `delayMs` and the job
 * runs again later without spending one of its attempts. No handler sleeps.
 */
export class RateLimitedError extends Error {
  override name = 'RateLimitedError';
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
  }
}
