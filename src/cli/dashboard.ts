import type { Account } from '../../dashboard/auth.js';
import { ConfigError } from '../config/env.js';
import { createLogger } from '../log.js';
import { defineCommand, integerFlag, integerSetting, UsageError } from './command.js';

const help = `Usage: tys dashboard [--port N] [--host ADDRESS] [--insecure]

Serves bull-board for every family's queue, a runs page (/runs), health
(/healthz, no authentication) and Prometheus metrics (/metrics), until
SIGTERM or SIGINT.

Authentication (HTTP Basic) is required. Accounts come from the environment:
  DASHBOARD_USER, DASHBOARD_PASSWORD                    full access
  DASHBOARD_READONLY_USER, DASHBOARD_READONLY_PASSWORD  optional: sees
                                                        everything, changes nothing
  METRICS_TOKEN         optional bearer token that opens /metrics alone
                        (at least 24 characters)

Behind a proxy:
  DASHBOARD_PUBLIC_URL  the address operators open (https://ops.example.com);
                        writes must come from that origin; https adds HSTS
  DASHBOARD_TRUST_PROXY which proxies' X-Forwarded-For names the client, for
                        the login throttle: a hop count (1) or addresses and
                        subnets (10.0.0.1, 10.0.0.0/8); default none

Metrics:
  TYS_AUDIT_REFRESH_MS  how often the families' audits behind
                        tys_audit_findings and tys_verify_problems run again
                        (default 300000: they read whole tables)

Options:
  --port N        port (default 3000, or PORT)
  --host ADDRESS  address to bind (default 0.0.0.0)
  --insecure      no authentication; binds 127.0.0.1 only
  -h, --help      this help`;

/** The proxy settings of the environment, checked: a wrong one is an error at start, not a quiet hole. */
export function dashboardSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): { publicUrl?: URL; trustProxy?: number | string; auditRefreshMs?: number } {
  let publicUrl: URL | undefined;
  if (env.DASHBOARD_PUBLIC_URL) {
    try {
      publicUrl = new URL(env.DASHBOARD_PUBLIC_URL);
    } catch {
      throw new ConfigError('DASHBOARD_PUBLIC_URL must be a URL like https://ops.example.com');
    }
    if (publicUrl.protocol !== 'https:' && publicUrl.protocol !== 'http:') throw new ConfigError('DASHBOARD_PUBLIC_URL must start with https:// or http://');
  }
  const raw = env.DASHBOARD_TRUST_PROXY?.trim();
  let trustProxy: number | string | undefined;
  if (raw) {
    if (/^\d+$/.test(raw)) trustProxy = Number(raw);
    else if (/^[0-9a-fA-F.:/,\s]+$/.test(raw)) trustProxy = raw;
    else throw new ConfigError('DASHBOARD_TRUST_PROXY must be a hop count or addresses and subnets (10.0.0.1, 10.0.0.0/8)');
  }
  const token = env.METRICS_TOKEN;
  if (token !== undefined && token !== '' && token.length < 24) throw new ConfigError('METRICS_TOKEN must be at least 24 characters');
  const auditRefreshMs = integerSetting('TYS_AUDIT_REFRESH_MS', env.TYS_AUDIT_REFRESH_MS || undefined, 1_000, 24 * 3_600_000);
  return { publicUrl, trustProxy, auditRefreshMs };
}

/** Accounts from the environment; a half-configured account is an error, not a silent open door. */
export function accountsFromEnv(env: NodeJS.ProcessEnv = process.env): Account[] {
  const accounts: Account[] = [];
  const pair = (userVar: string, passwordVar: string, role: Account['role']) => {
    const user = env[userVar];
    const password = env[passwordVar];
    if (!user && !password) return;
    if (!user || !password) throw new ConfigError(`${userVar} and ${passwordVar} must be set together`);
    if (password.length < 8) throw new ConfigError(`${passwordVar} must be at least 8 characters`);
    accounts.push({ user, password, role });
  };
  pair('DASHBOARD_USER', 'DASHBOARD_PASSWORD', 'admin');
  pair('DASHBOARD_READONLY_USER', 'DASHBOARD_READONLY_PASSWORD', 'readonly');
  return accounts;
}

export const dashboardCommand = defineCommand({
  name: 'dashboard',
  summary: 'serve the queue dashboard, runs, health and metrics',
  help,
  options: { port: { type: 'string' }, host: { type: 'string' }, insecure: { type: 'boolean' } },
  positionals: false,
  async run({ values, config }, io) {
    const port = integerFlag('dashboard', 'port', values.port ?? process.env.PORT, 0, 65_535) ?? 3000;
    const accounts = accountsFromEnv();
    if (!values.insecure && accounts.length === 0) {
      throw new ConfigError('tys dashboard: set DASHBOARD_USER and DASHBOARD_PASSWORD (or pass --insecure to serve 127.0.0.1 only, without authentication)');
    }
    if (values.insecure && values.host && values.host !== '127.0.0.1') {
      throw new UsageError('tys dashboard: --insecure binds 127.0.0.1 only; drop --host or set credentials');
    }
    const host = values.insecure ? '127.0.0.1' : (values.host ?? '0.0.0.0');
    const log = createLogger('tys-dashboard');
    // Loaded here, not at the top: express and bull-board would add about
    // 20 MB to every other command, the long-running enqueue among them.
    const { createDashboard, listen } = await import('../../dashboard/server.js');
    const { families } = await import('../families/index.js');
    const dashboard = await createDashboard({
      config,
      families,
      accounts: values.insecure ? [] : accounts,
      metricsToken: process.env.METRICS_TOKEN || undefined,
      insecure: values.insecure,
      ...dashboardSettingsFromEnv(),
      log,
    });
    const server = await listen(dashboard.app, port, host);
    const address = server.address();
    const bound = typeof address === 'object' && address ? address.port : port;
    io.out(`dashboard on http://${host}:${bound}/ ${values.insecure ? '(INSECURE: no authentication, local only)' : `(${accounts.length} account(s))`}`);
    log.info({ host, port: bound, insecure: Boolean(values.insecure) }, 'dashboard listening');
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await dashboard.close();
    return 0;
  },
});
