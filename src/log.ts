import { pino, type Logger } from 'pino';
import { ConfigError } from './config/settings.js';

/**
 * Structured JSON logs. Anything that looks like a secret is redacted even if
 * a caller passes it by mistake.
 */
export function createLogger(name: string, level = process.env.TYS_LOG_LEVEL || 'info'): Logger {
  if (!(level in pino.levels.values) && level !== 'silent') {
    throw new ConfigError(`TYS_LOG_LEVEL must be one of ${[...Object.keys(pino.levels.values), 'silent'].join(', ')}, got "${level.slice(0, 40)}"`);
  }
  return pino({
    name,
    level,
    redact: {
      paths: ['password', 'apiKey', 'apikey', 'token', 'secret', '*.password', '*.apiKey', '*.apikey', '*.token', '*.secret'],
      censor: '[redacted]',
    },
  });
}
