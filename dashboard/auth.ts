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
  /** (address, user) pairs, and addresses, remembered at most; the least recently failed are forgotten first. Default 10,000. */
  maxTracked?: number;
  /** Failed attempts per client address, whatever the user names, before each further one must wait. Default 50. */
  freePerAddress?: number;
  /** Failed logins are logged here, with address and user name, never the password. */
  log?: Logger;
}

declare module 'express-serve-static-core' {
  interface Request {
    role?: Role;
    /** The account the request authenticated as; unset for the metrics token. */
    user?: string;
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

/** Failures of one key with a delay that doubles after each past the free ones; at most `maxTracked` keys, the least recently failed forgotten first. */
class Backoff {
  private readonly entries = new Map<string, { failures: number; lastAt: number; blockedUntil: number }>();

  constructor(
    private readonly freeFailures: number,
    private readonly maxDelayMs: number,
    private readonly maxTracked: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  waitMs(key: string, now: number): number {
    const entry = this.entries.get(key);
    return entry ? Math.max(0, entry.blockedUntil - now) : 0;
  }

  fail(key: string, now: number): void {
    const entry = this.entries.get(key);
    // A key quiet for the longest delay starts over: failures long past are no evidence of a guess under way.
    const failures = (entry && now - entry.lastAt < this.maxDelayMs ? entry.failures : 0) + 1;
    const over = failures - this.freeFailures;
    const blockedUntil = over > 0 ? now + Math.min(this.maxDelayMs, 1_000 * 2 ** Math.min(over - 1, 30)) : 0;
    this.entries.delete(key); // re-inserted last: a Map keeps insertion order, the oldest goes first
    this.entries.set(key, { failures, lastAt: now, blockedUntil });
    if (this.entries.size > this.maxTracked) this.entries.delete(this.entries.keys().next().value!);
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}

/**
 * Failed attempts per (client address, user name), with a delay that
 * doubles after each failure past the free ones. Keyed by both, so that one
 * client guessing cannot lock out another, and one user's few failures do
 * not lock out the other users behind the same address. Failures are also
 * counted per address alone, with more free ones (`freePerAddress`): a
 * client that tries many user names (throwaway ones, to push the pair it
 * attacks out of the bounded memory) is delayed as a whole. Memory is
 * bounded: past `maxTracked` pairs (or addresses), the least recently failed
 * is forgotten. A success clears its pair, never its address: knowing one
 * account must not reset the guessing of another.
 */
export class FailedLogins {
  private readonly pairs: Backoff;
  private readonly addresses: Backoff;

  constructor(freeFailures = 5, maxDelayMs = 15 * 60_000, maxTracked = 10_000, freePerAddress = 50) {
    this.pairs = new Backoff(freeFailures, maxDelayMs, maxTracked);
    this.addresses = new Backoff(freePerAddress, maxDelayMs, maxTracked);
  }

  get size(): number {
    return this.pairs.size + this.addresses.size;
  }

  /** Milliseconds this pair must still wait before its next attempt; 0 when it may try now. */
  waitMs(address: string, user: string, now = Date.now()): number {
    return Math.max(this.pairs.waitMs(`${address}\u0000${user}`, now), this.addresses.waitMs(address, now));
  }

  fail(address: string, user: string, now = Date.now()): void {
    this.pairs.fail(`${address}\u0000${user}`, now);
    this.addresses.fail(address, now);
  }

  succeed(address: string, user: string): void {
    this.pairs.forget(`${address}\u0000${user}`);
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
  const failures = new FailedLogins(options.freeFailures, options.maxDelayMs, options.maxTracked, options.freePerAddress);

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
        if (match && !role) {
          role = account.role;
          req.user = account.user;
        }
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
