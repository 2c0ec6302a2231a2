import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Refuses state-changing requests that a browser sent on behalf of another
 * site. Basic credentials are resent by the browser to any request for the
 * dashboard, whoever's page makes it; the browser also says where a request
 * comes from (`Origin`, `Sec-Fetch-Site`), which a page cannot forge.
 * `publicUrl` is the address operators open (behind a proxy); without it the
 * request's own Host is the dashboard's.
 */
export function sameOriginWrites(options: { publicUrl?: URL; log: Logger }) {
  return function checkOrigin(req: Request, res: Response, next: NextFunction): void {
    if (READS.has(req.method)) return next();
    const from = requestOrigin(req);
    const expectedHost = options.publicUrl?.host ?? req.headers.host;
    const sameSite =
      from !== null
        ? from.host === expectedHost && (!options.publicUrl || from.protocol === options.publicUrl.protocol)
        : req.headers['sec-fetch-site'] === 'same-origin';
    if (sameSite) return next();
    options.log.warn({ method: req.method, path: req.path, origin: from?.origin ?? null, host: req.headers.host }, 'cross-site write refused');
    res.status(403).json({ error: 'cross-site request refused: writes must come from the dashboard itself' });
  };
}

/** Where the request says it comes from: its Origin, or failing that its Referer; null when neither (or "null"). */
function requestOrigin(req: Request): URL | null {
  for (const value of [req.headers.origin, req.headers.referer]) {
    if (!value || value === 'null') continue;
    try {
      return new URL(value);
    } catch {
      return new URL('invalid://origin');
    }
  }
  return null;
}

/**
 * For a dashboard served without authentication on 127.0.0.1: only requests
 * addressed to the loopback names are answered. A page on another site can
 * point its own host name at 127.0.0.1 (DNS rebinding) and would then be
 * same-origin with the dashboard; its requests still carry its own Host.
 */
export function loopbackHostOnly(log: Logger) {
  return function checkHost(req: Request, res: Response, next: NextFunction): void {
    const port = req.socket.localPort;
    const allowed = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`];
    if (req.headers.host && allowed.includes(req.headers.host.toLowerCase())) return next();
    log.warn({ host: req.headers.host ?? null, path: req.path }, 'request for a foreign host refused');
    res.status(421).json({ error: 'misdirected request: this dashboard answers only to 127.0.0.1, localhost and [::1]' });
  };
}
