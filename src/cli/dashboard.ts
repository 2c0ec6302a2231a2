import { dashboardSettings } from '../../dashboard/settings.js';
import { defineCommand, integerFlag, UsageError } from './command.js';

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

The same server runs without the CLI as node dist/dashboard/index.js.

Options:
  --port N        port (default PORT, or 3000)
  --host ADDRESS  address to bind (default DASHBOARD_HOST, or 0.0.0.0)
  --insecure      no authentication; binds 127.0.0.1 only
  -h, --help      this help`;

export const dashboardCommand = defineCommand({
  name: 'dashboard',
  summary: 'serve the queue dashboard, runs, health and metrics',
  help,
  options: { port: { type: 'string' }, host: { type: 'string' }, insecure: { type: 'boolean' } },
  positionals: false,
  async run({ values, config }, io) {
    const settings = dashboardSettings();
    const port = integerFlag('dashboard', 'port', values.port, 0, 65_535) ?? settings.port;
    if (values.insecure && values.host && values.host !== '127.0.0.1') {
      throw new UsageError('tys dashboard: --insecure binds 127.0.0.1 only; drop --host or set credentials');
    }
    // Loaded here, not at the top: express and bull-board would add about
    // 20 MB to every other command, the long-running enqueue among them.
    const { serveDashboard } = await import('../../dashboard/serve.js');
    const { families } = await import('../families/index.js');
    await serveDashboard(config, families, { ...settings, port, host: values.host ?? settings.host }, { insecure: values.insecure, announce: io.out });
    return 0;
  },
});
