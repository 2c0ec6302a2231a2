import type { Logger } from 'pino';
import type { PrismaClient } from '../src/db/prisma.js';
import type { AuditFinding, JobFamily } from '../src/fleet/family.js';

export interface AuditWatchOptions {
  /** How often, in ms, the families' audits run again (TYS_AUDIT_REFRESH_MS). Default 60,000. */
  intervalMs?: number;
}

/**
 * Runs the audit of every family that has one (for constraints: violations
 * of each phase 4 CHECK constraint) on an interval and keeps the last
 * answer, so that a scrape every few seconds reads a cache instead of
 * counting a large table each time. A family whose audit fails (a database
 * still on the MVP schema has no tax lots to audit) keeps no figures and is
 * logged once per failure streak.
 */
export class AuditWatch {
  private readonly latest = new Map<string, { findings: AuditFinding[]; at: number }>();
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
    this.timer = setInterval(tick, this.options.intervalMs ?? 60_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** The last findings of each audited family, and when they were read (epoch ms). */
  snapshot(): { family: string; findings: AuditFinding[]; at: number }[] {
    return [...this.latest].map(([family, value]) => ({ family, ...value }));
  }

  private async refresh(): Promise<void> {
    for (const family of this.families) {
      if (!family.audit) continue;
      try {
        this.latest.set(family.name, { findings: await family.audit(this.prisma), at: Date.now() });
        this.failing.delete(family.name);
      } catch (error) {
        this.latest.delete(family.name);
        if (!this.failing.has(family.name)) this.log.warn({ family: family.name, err: (error as Error).message }, 'audit for the metrics failed');
        this.failing.add(family.name);
      }
    }
  }
}
