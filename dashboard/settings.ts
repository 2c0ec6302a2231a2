import { ConfigError, integer, readSettings, textSetting, verbatim, url, type SettingsShape } from '../src/config/settings.js';
import type { Account } from './auth.js';

/** A bearer token shorter than this could be guessed. */
export const MIN_METRICS_TOKEN_LENGTH = 24;
const MIN_PASSWORD_LENGTH = 8;

const DASHBOARD_SETTINGS = {
  PORT: integer(0, 65_535),
  DASHBOARD_HOST: verbatim(),
  DASHBOARD_USER: verbatim(),
  DASHBOARD_PASSWORD: verbatim(),
  DASHBOARD_READONLY_USER: verbatim(),
  DASHBOARD_READONLY_PASSWORD: verbatim(),
  METRICS_TOKEN: verbatim(MIN_METRICS_TOKEN_LENGTH),
  DASHBOARD_PUBLIC_URL: url(['https:', 'http:']),
  DASHBOARD_TRUST_PROXY: textSetting('must be a hop count or addresses and subnets (10.0.0.1, 10.0.0.0/8)', (text) =>
    /^\d+$/.test(text) ? Number(text) : /^[0-9a-fA-F.:/,\s]+$/.test(text) ? text : undefined,
  ),
  TYS_AUDIT_REFRESH_MS: integer(1_000, 24 * 3_600_000),
} satisfies SettingsShape;

export interface DashboardSettings {
  /** PORT. Default 3000. */
  port: number;
  /** DASHBOARD_HOST: the address to bind. Default 0.0.0.0. */
  host: string;
  /** DASHBOARD_USER and DASHBOARD_PASSWORD (admin), DASHBOARD_READONLY_USER and DASHBOARD_READONLY_PASSWORD (read-only). */
  accounts: Account[];
  /** METRICS_TOKEN: a bearer token that opens /metrics alone. */
  metricsToken?: string;
  /** DASHBOARD_PUBLIC_URL: the address operators open, behind a proxy. */
  publicUrl?: URL;
  /** DASHBOARD_TRUST_PROXY: which proxies' X-Forwarded-For names the client. */
  trustProxy?: number | string;
  /** TYS_AUDIT_REFRESH_MS: how often the audits behind the integrity metrics run. Default 300,000. */
  auditRefreshMs?: number;
}

/** The dashboard's settings, checked at start: a wrong one is an error then, not a quiet hole later. */
export function dashboardSettings(env: NodeJS.ProcessEnv = process.env): DashboardSettings {
  const s = readSettings(DASHBOARD_SETTINGS, env);
  const accounts: Account[] = [];
  const pair = (
    userVar: 'DASHBOARD_USER' | 'DASHBOARD_READONLY_USER',
    passwordVar: 'DASHBOARD_PASSWORD' | 'DASHBOARD_READONLY_PASSWORD',
    role: Account['role'],
  ) => {
    const user = s[userVar];
    const password = s[passwordVar];
    if (!user && !password) return;
    if (!user || !password) throw new ConfigError(`${userVar} and ${passwordVar} must be set together`);
    if (password.length < MIN_PASSWORD_LENGTH) throw new ConfigError(`${passwordVar} must be at least ${MIN_PASSWORD_LENGTH} characters`);
    accounts.push({ user, password, role });
  };
  pair('DASHBOARD_USER', 'DASHBOARD_PASSWORD', 'admin');
  pair('DASHBOARD_READONLY_USER', 'DASHBOARD_READONLY_PASSWORD', 'readonly');
  return {
    port: s.PORT ?? 3000,
    host: s.DASHBOARD_HOST ?? '0.0.0.0',
    accounts,
    metricsToken: s.METRICS_TOKEN,
    publicUrl: s.DASHBOARD_PUBLIC_URL === undefined ? undefined : new URL(s.DASHBOARD_PUBLIC_URL),
    trustProxy: s.DASHBOARD_TRUST_PROXY,
    auditRefreshMs: s.TYS_AUDIT_REFRESH_MS,
  };
}
