import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

export type Role = 'admin' | 'readonly';

export interface Account {
  user: string;
  password: string;
  role: Role;
}

export interface AuthOptions {
  accounts: Account[];
  /** A bearer token that opens /metrics alone (for Prometheus). */
  metricsToken?: string;
  /** Failed logins allowed per client address per window. Default 10. */
  maxFailures?: number;
  /** The window, in ms. Default 15 minutes. */
  failureWindowMs?: number;
}

declare module 'express-serve-static-core' {
  interface Request {
    role?: Role;
  }
}

/** Equal-length digests compared in constant time: neither content nor length leaks through timing. */
function same(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

function parseBasic(header: string | undefined): { user: string; password: string } | null {
  if (!header?.startsWith('Basic ')) return null;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * HTTP Basic authentication against the configured accounts, with a limit on
 * failed attempts per client address. Sets req.role.
 */
export function basicAuth(options: AuthOptions) {
  const maxFailures = options.maxFailures ?? 10;
  const windowMs = options.failureWindowMs ?? 15 * 60_000;
  const failures = new Map<string, { count: number; since: number }>();

  return function authenticate(req: Request, res: Response, next: NextFunction): void {
    const client = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const now = Date.now();
    const record = failures.get(client);
    if (record && now - record.since > windowMs) failures.delete(client);
    const current = failures.get(client);
    if (current && current.count >= maxFailures) {
      res.setHeader('Retry-After', String(Math.ceil((current.since + windowMs - now) / 1000)));
      res.status(429).json({ error: 'too many failed logins; try again later' });
      return;
    }
    if (options.metricsToken && req.path === '/metrics') {
      const bearer = req.headers.authorization?.startsWith('Bearer ') ? req.headers.authorization.slice(7) : null;
      if (bearer !== null && same(bearer, options.metricsToken)) {
        req.role = 'readonly';
        next();
        return;
      }
    }
    const given = parseBasic(req.headers.authorization);
    // Every account is compared, so the time taken does not tell which user exists.
    let role: Role | undefined;
    for (const account of options.accounts) {
      const match = given !== null && same(given.user, account.user) && same(given.password, account.password);
      if (match && !role) role = account.role;
    }
    if (!role) {
      if (given) failures.set(client, { count: (current?.count ?? 0) + 1, since: current?.since ?? now });
      res.setHeader('WWW-Authenticate', 'Basic realm="tys dashboard", charset="UTF-8"');
      res.status(401).json({ error: 'authentication required' });
      return;
    }
    req.role = role;
    next();
  };
}

/** The server side of the read-only account: nothing but reads gets through, whatever the page shows. */
export function readOnlyGuard(req: Request, res: Response, next: NextFunction): void {
  if (req.role === 'readonly' && req.method !== 'GET' && req.method !== 'HEAD') {
    res.status(403).json({ error: 'the read-only account cannot change anything' });
    return;
  }
  next();
}
