import type { FleetConfig } from '../src/config/env.js';
import { ConfigError } from '../src/config/settings.js';
import type { JobFamily } from '../src/fleet/family.js';
import { createLogger } from '../src/log.js';
import { untilStopRequested } from '../src/process-stop.js';
import { createDashboard, listen } from './server.js';
import type { DashboardSettings } from './settings.js';

export interface ServeOptions {
  /** No authentication, bound to 127.0.0.1 only (a look on one's own machine). Default false. */
  insecure?: boolean;
  /** Told the address once the dashboard listens. */
  announce(line: string): void;
}

/** Serves the dashboard until SIGTERM, SIGINT or the end of its parent process, then closes it. */
export async function serveDashboard(config: FleetConfig, families: readonly JobFamily[], settings: DashboardSettings, options: ServeOptions): Promise<void> {
  const { accounts } = settings;
  if (!options.insecure && accounts.length === 0) {
    throw new ConfigError('set DASHBOARD_USER and DASHBOARD_PASSWORD (or, from the CLI, pass --insecure to serve 127.0.0.1 only, without authentication)');
  }
  const stopping = untilStopRequested();
  const host = options.insecure ? '127.0.0.1' : settings.host;
  const log = createLogger('tys-dashboard');
  const dashboard = await createDashboard({ ...settings, config, families, accounts: options.insecure ? [] : accounts, insecure: options.insecure, log });
  const server = await listen(dashboard.app, settings.port, host);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : settings.port;
  options.announce(
    `dashboard on http://${host}:${port}/ ${options.insecure ? '(INSECURE: no authentication, local only)' : `(${accounts.length} account(s))`}`,
  );
  log.info({ host, port, insecure: Boolean(options.insecure) }, 'dashboard listening');
  const reason = await stopping;
  log.info({ signal: reason }, 'dashboard stopping');
  // Open keep-alive connections (a browser's) would hold close() for minutes.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
  await dashboard.close();
}
