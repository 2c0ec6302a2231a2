import { pino, type Logger } from 'pino';

/**
 * Structured JSON logs. Anything that looks like a secret is redacted even if
 * a caller passes it by mistake.
 */
export function createLogger(name: string, level = process.env.TYS_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: ['password', 'apiKey', 'apikey', 'token', 'secret', '*.password', '*.apiKey', '*.apikey', '*.token', '*.secret'],
      censor: '[redacted]',
    },
  });
}
