import type { PrismaClient } from '../db/prisma.js';
import type { RunStore } from './runs.js';

export interface RunGuardOptions {
  /** How long, in ms, a run found open is taken as open without asking again. Default 5,000. */
  openTtlMs?: number;
  /** How long, in ms, a missing or ended run is remembered as such. Default 60,000. */
  closedTtlMs?: number;
}

interface Known {
  family: string | null;
  ended: boolean;
  until: number;
}

/**
 * Checks that a job belongs to the run it names: the run exists, is of the
 * job's family and has not ended. Job data can be written into Redis by
 * anyone; a job that claims a run it does not belong to must neither change
 * rows under that run's id (its changes could not be reverted by it) nor
 * change the run's counts. The answers are cached briefly: a worker sees
 * thousands of jobs of the same run.
 */
export class RunGuard {
  private readonly known = new Map<string, Known>();
  private readonly openTtlMs: number;
  private readonly closedTtlMs: number;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly runs: RunStore,
    options: RunGuardOptions = {},
  ) {
    this.openTtlMs = options.openTtlMs ?? 5_000;
    this.closedTtlMs = options.closedTtlMs ?? 60_000;
  }

  /** Null when the job may run; otherwise why it is refused. */
  async refusal(runId: string, family: string, jobId: string): Promise<string | null> {
    const run = await this.lookup(runId);
    if (run.family === null) return `run ${runId} does not exist: the job was not added by the fleet; nothing was changed`;
    if (run.family !== family) return `run ${runId} is a ${run.family} run, not ${family}: nothing was changed`;
    // A job whose outcome its run already holds may run once more (a crash
    // between counting it and finishing it): its handler finds nothing to do.
    if (run.ended && !(await this.runs.hasOutcome(runId, jobId))) return `run ${runId} has ended: nothing was changed`;
    return null;
  }

  private async lookup(runId: string): Promise<Known> {
    const now = Date.now();
    const cached = this.known.get(runId);
    if (cached && cached.until > now) return cached;
    const row = await this.prisma.fleetRun.findUnique({ where: { id: runId }, select: { family: true, finishedAt: true, status: true } });
    const ended = row !== null && row.finishedAt !== null && row.status !== 'INTERRUPTED';
    const known = { family: row?.family ?? null, ended, until: now + (row && !ended ? this.openTtlMs : this.closedTtlMs) };
    if (this.known.size > 10_000) this.known.clear();
    this.known.set(runId, known);
    return known;
  }
}
