import type { AddressInfo, Server } from 'node:net';
import pino from 'pino';
import type { Account } from '../../dashboard/auth.js';
import { createDashboard, listen, type Dashboard } from '../../dashboard/server.js';
import type { FleetConfig } from '../../src/config/env.js';

export const ADMIN: Account = { user: 'operator', password: 'correct horse battery', role: 'admin' };
export const VIEWER: Account = { user: 'viewer', password: 'look but do not touch', role: 'readonly' };

export async function startDashboard(config: FleetConfig, options: { accounts?: Account[]; metricsToken?: string } = {}) {
  const dashboard: Dashboard = await createDashboard({
    config,
    accounts: options.accounts ?? [ADMIN, VIEWER],
    metricsToken: options.metricsToken,
    log: pino({ level: 'silent' }),
  });
  const server: Server = await listen(dashboard.app, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await dashboard.close();
    },
  };
}

export function basic(account: Account): string {
  return `Basic ${Buffer.from(`${account.user}:${account.password}`).toString('base64')}`;
}
