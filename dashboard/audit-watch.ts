import type { Logger } from 'pino';
import type { PrismaClient } from '../src/db/prisma.js';
import type { AuditFinding, JobFamily, VerifyContext } from '../src/fleet/family.js';

export interface AuditWatchOptions {
  /** How often, in ms, the families' audits and verifications run again (TYS_AUDIT_REFRESH_MS). Default 300,000: they read whole tables. */
  intervalMs?: number;
  /** What verifications read beyond the database. Default none (stricter checks). */
  verifyContext?: VerifyContext;
}

/**
 * Runs the audit of every family that has one (for constraints: violations
 * of each phase 4 CHECK constraint) and its verification (what tys verify
 * reports) on an interval and keeps the last answers, so that a scrape every few seconds reads a cache instead of
 * counting a large table each time. A family whose audit fails (a database
 * still on the MVP schema has no tax lots to audit) keeps no figures and is
 * logged once per failure streak.
 */
export class AuditWatch {
  private readonly latest = new Map<string, { findings: AuditFinding[]; at: number }>();
  private readonly verified = new Map<string, { problems: number; at: number }>();
  private readonly failing = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly families: readonly JobFamily[],
    private readonly log: Logger,
    private readonly options: AuditWatchOptions = {},
  ) {}

  start(): void {
    const tick = () => {
      this.running = this.running.then(() => this.refresh());
    };
    tick();
    this.timer = setInterval(tick, this.options.intervalMs ?? 300_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** The last verification of each family that has one: rows wrong, and when it ran (epoch ms). */
  verifications(): { family: string; problems: number; at: number }[] {
    return [...this.verified].map(([family, value]) => ({ family, ...value }));
  }

  /** The last findings of each audited family, and when they were read (epoch ms). */
  snapshot(): { family: string; findings: AuditFinding[]; at: number }[] {
    return [...this.latest].map(([family, value]) => ({ family, ...value }));
  }

  private async refresh(): Promise<void> {
    for (const family of this.families) {
      await this.keep(
        `audit ${family.name}`,
        family.audit &&
          (async () => {
            this.latest.set(family.name, { findings: await family.audit!(this.prisma), at: Date.now() });
          }),
        () => this.latest.delete(family.name),
      );
      await this.keep(
        `verify ${family.name}`,
        family.verify &&
          (async () => {
            const report = await family.verify!(this.prisma, this.options.verifyContext);
            this.verified.set(family.name, { problems: report.problemCount, at: Date.now() });
          }),
        () => this.verified.delete(family.name),
      );
    }
  }

  /** Runs one check; on failure forgets its last answer (stale figures would mislead) and logs once per failure streak. */
  private async keep(what: string, check: (() => Promise<void>) | undefined, forget: () => void): Promise<void> {
    if (!check) return;
    try {
      await check();
      this.failing.delete(what);
    } catch (error) {
      forget();
      if (!this.failing.has(what)) this.log.warn({ check: what, err: (error as Error).message }, 'check for the metrics failed');
      this.failing.add(what);
    }
  }
}
