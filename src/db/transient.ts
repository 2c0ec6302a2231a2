/**
 * Errors that say the database could not be reached or dropped the
 * connection, as opposed to errors in what was asked: the same statement can
 * succeed a moment later. SQLSTATE class 08 (connection exception), 57P01-03
 * (administrator or crash shutdown, cannot connect now), 53300 (too many
 * connections), 55000 as raised for a database not accepting connections,
 * Prisma's P1001/P1002/P1008/P1017, and the socket errors underneath.
 */
const TRANSIENT_TEXT =
  /\b(08\d{3}|57P0[123]|53300|P1001|P1002|P1008|P1017|ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE)\b|not currently accepting connections|terminating connection|connection error|Connection terminated|server closed the connection|Can't reach database server/i;

export function isTransientDatabaseError(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth += 1) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (TRANSIENT_TEXT.test(`${typeof code === 'string' ? code : ''} ${typeof message === 'string' ? message : ''}`)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

export interface RetryOptions {
  /** Tries in all. Default 6. */
  attempts?: number;
  /** First pause in ms, doubled after each try. Default 250 (so 250 ms to 4 s, about 8 s in all). */
  baseDelayMs?: number;
}

/** Runs `work` again after a transient database error, with exponential backoff; any other error, or the last one, is thrown. */
export async function retryTransient<T>(work: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 6;
  const base = options.baseDelayMs ?? 250;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= attempts || !isTransientDatabaseError(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, base * 2 ** (attempt - 1)));
    }
  }
}
