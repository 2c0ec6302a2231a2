import type { PrismaClient } from '../db/prisma.js';
import type { FleetRunStatus } from '../generated/prisma/enums.js';
import type { RunStore } from './runs.js';

export interface RunGuardOptions {
  /**
   * How long, in ms, an open run's state is taken as known without asking
   * again. Default 1,000: a pause or cancel reaches every worker within it.
   */
  openTtlMs?: number;
  /** How long, in ms, a missing or ended run is remembered as such. Default 60,000. */
  closedTtlMs?: number;
}

interface Known {
  family: string | null;
  status: FleetRunStatus | null;
  ended: boolean;
  /** Least ms between job starts, for a run started with a rate. */
  paceMs: number | null;
  until: number;
}

/**
 * What a worker does with a job: run it (at the run's pace, if it has one), park it while its run is paused,
 * drop it (its run is being cancelled: it ends without running or counting),
 * or refuse it with a reason.
 */
export type RunVerdict =
  | { kind: 'run'; paceMs: number | null }
  | { kind: 'park' }
  | { kind: 'drop'; reason: string }
  | { kind: 'refuse'; reason: string }
  // Its run has ended without it (a producer killed after adding it and before noting it in the run's total):
  // a run that follows the job takes it over, otherwise it is refused.
  | { kind: 'ended'; reason: string };

const PARK: RunVerdict = { kind: 'park' };

/**
 * Checks that a job belongs to the run it names: the run exists, is of the
 * job's family and has not ended; and whether the run is paused or being
 * cancelled by an operator. Job data can be written into Redis by
 * anyone; a job that claims a run it does not belong to must neither change
 * rows under that run's id (its changes could not be reverted by it) nor
 * change the run's counts. The answers are cached briefly: a worker sees
 * thousands of jobs of the same run.
 */
export class RunGuard {
  private readonly known = new Map<string, Known>();
  private readonly asking = new Map<string, Promise<Known>>();
  private readonly openTtlMs: number;
  private readonly closedTtlMs: number;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly runs: RunStore,
    options: RunGuardOptions = {},
  ) {
    this.openTtlMs = options.openTtlMs ?? 1_000;
    this.closedTtlMs = options.closedTtlMs ?? 60_000;
  }

  async verdict(runId: string, family: string, jobId: string): Promise<RunVerdict> {
    const run = await this.lookup(runId);
    const refusal = (why: string) => `run ${runId} ${why}: nothing was changed`;
    const refuse = (why: string): RunVerdict => ({ kind: 'refuse', reason: refusal(why) });
    if (run.family === null) return refuse('does not exist: the job was not added by the fleet');
    if (run.family !== family) return refuse(`is a ${run.family} run, not ${family}`);
    if (run.status === 'PAUSING' || run.status === 'PAUSED') return PARK;
    if (run.status === 'CANCELLING' || run.status === 'CANCELLED') return { kind: 'drop', reason: `run ${runId} was cancelled` };
    // A job whose outcome its run already holds may run once more (a crash
    // between counting it and finishing it): its handler finds nothing to do.
    if (run.ended && !(await this.runs.hasOutcome(family, runId, jobId))) return { kind: 'ended', reason: refusal(`has ended (${run.status})`) };
    return { kind: 'run', paceMs: run.paceMs };
  }

  /**
   * The run's state, cached; when the cache has expired, the jobs that ask
   * meanwhile (hundreds at once, at full concurrency) share one query.
   */
  private lookup(runId: string): Promise<Known> | Known {
    const cached = this.known.get(runId);
    if (cached && cached.until > Date.now()) return cached;
    let asking = this.asking.get(runId);
    if (!asking) {
      asking = this.ask(runId).finally(() => this.asking.delete(runId));
      this.asking.set(runId, asking);
    }
    return asking;
  }

  private async ask(runId: string): Promise<Known> {
    const row = await this.prisma.fleetRun.findUnique({ where: { id: runId }, select: { family: true, finishedAt: true, status: true } });
    const ended = row !== null && row.finishedAt !== null && row.status !== 'INTERRUPTED';
    const paceMs = row && !ended ? await this.runs.paceOf(row.family, runId) : null;
    const now = Date.now();
    const known = { family: row?.family ?? null, status: row?.status ?? null, ended, paceMs, until: now + (row && !ended ? this.openTtlMs : this.closedTtlMs) };
    if (this.known.size > 10_000) this.known.clear();
    this.known.set(runId, known);
    return known;
  }
}
