import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';

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
  /** Failed attempts per client address and user name before each further one must wait. Default 5. */
  freeFailures?: number;
  /** The longest wait, in ms, however many failures. Default 15 minutes. */
  maxDelayMs?: number;
  /** (address, user) pairs remembered at most; the least recently seen are forgotten first. Default 10,000. */
  maxTracked?: number;
  /** Failed logins are logged here, with address and user name, never the password. */
  log?: Logger;
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
 * Failed attempts per (client address, user name), with a delay that
 * doubles after each failure past the free ones. Keyed by both, so that one
 * client guessing cannot lock out another, and one user's guesses do not
 * lock out the other users behind the same address. Memory is bounded:
 * past `maxTracked` pairs, the least recently seen is forgotten.
 */
export class FailedLogins {
  private readonly pairs = new Map<string, { failures: number; blockedUntil: number }>();

  constructor(
    private readonly freeFailures = 5,
    private readonly maxDelayMs = 15 * 60_000,
    private readonly maxTracked = 10_000,
  ) {}

  get size(): number {
    return this.pairs.size;
  }

  /** Milliseconds this pair must still wait before its next attempt; 0 when it may try now. */
  waitMs(address: string, user: string, now = Date.now()): number {
    const entry = this.pairs.get(`${address}\u0000${user}`);
    return entry ? Math.max(0, entry.blockedUntil - now) : 0;
  }

  fail(address: string, user: string, now = Date.now()): void {
    const key = `${address}\u0000${user}`;
    const failures = (this.pairs.get(key)?.failures ?? 0) + 1;
    const over = failures - this.freeFailures;
    const blockedUntil = over > 0 ? now + Math.min(this.maxDelayMs, 1_000 * 2 ** (over - 1)) : 0;
    this.pairs.delete(key); // re-inserted last: a Map keeps insertion order, the oldest goes first
    this.pairs.set(key, { failures, blockedUntil });
    if (this.pairs.size > this.maxTracked) this.pairs.delete(this.pairs.keys().next().value!);
  }

  succeed(address: string, user: string): void {
    this.pairs.delete(`${address}\u0000${user}`);
  }
}

/** The user name under which bearer-token attempts on /metrics are counted. */
const BEARER = '(metrics bearer token)';

/**
 * HTTP Basic authentication against the configured accounts (and a bearer
 * token for /metrics), with failed attempts delayed per client address and
 * user (see FailedLogins). The client address is the socket's, or the one
 * the proxies named by express's `trust proxy` setting pass on. Sets req.role.
 */
export function basicAuth(options: AuthOptions) {
  const failures = new FailedLogins(options.freeFailures, options.maxDelayMs, options.maxTracked);

  return function authenticate(req: Request, res: Response, next: NextFunction): void {
    const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const bearer = req.headers.authorization?.startsWith('Bearer ') ? req.headers.authorization.slice(7) : null;
    const given = parseBasic(req.headers.authorization);
    const user = bearer !== null ? BEARER : (given?.user ?? null);
    const waitMs = user === null ? 0 : failures.waitMs(address, user);
    if (waitMs > 0) {
      res.setHeader('Retry-After', String(Math.ceil(waitMs / 1000)));
      res.status(429).json({ error: 'too many failed logins; try again later' });
      return;
    }
    let role: Role | undefined;
    if (bearer !== null) {
      if (options.metricsToken && req.path === '/metrics' && same(bearer, options.metricsToken)) role = 'readonly';
    } else {
      // Every account is compared, so the time taken does not tell which user exists.
      for (const account of options.accounts) {
        const match = given !== null && same(given.user, account.user) && same(given.password, account.password);
        if (match && !role) role = account.role;
      }
    }
    if (!role) {
      if (user !== null) {
        failures.fail(address, user);
        options.log?.warn({ address, user: user.slice(0, 100), path: req.path }, 'failed login');
      }
      res.setHeader('WWW-Authenticate', 'Basic realm="tys dashboard", charset="UTF-8"');
      res.status(401).json({ error: 'authentication required' });
      return;
    }
    if (user !== null) failures.succeed(address, user);
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
