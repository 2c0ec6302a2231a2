import type { AddressInfo, Server } from 'node:net';
import pino from 'pino';
import type { Account } from '../../dashboard/auth.js';
import { createDashboard, listen, type Dashboard, type DashboardOptions } from '../../dashboard/server.js';
import type { FleetConfig } from '../../src/config/env.js';
import { families } from '../../src/families/index.js';

export const ADMIN: Account = { user: 'operator', password: 'correct horse battery', role: 'admin' };
export const VIEWER: Account = { user: 'viewer', password: 'look but do not touch', role: 'readonly' };

export async function startDashboard(config: FleetConfig, options: Partial<Omit<DashboardOptions, 'config'>> = {}) {
  const dashboard: Dashboard = await createDashboard({
    accounts: [ADMIN, VIEWER],
    families,
    log: pino({ level: 'silent' }),
    ...options,
    config,
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
