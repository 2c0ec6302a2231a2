import { UnrecoverableError } from 'bullmq';

/**
 * A failure that no retry can fix (bad data, a row that needs a person):
 * the job fails at once with this message as its readable reason.
 */
export class PermanentJobError extends UnrecoverableError {
  constructor(message: string) {
    super(message);
    this.name = 'UnrecoverableError';
    // The reason is the whole story; a stack trace would only bury it in the dashboard.
    this.stack = `${this.name}: ${message}`;
  }
}

/** Job data that does not have the family's shape. */
export class InvalidJobDataError extends PermanentJobError {}
