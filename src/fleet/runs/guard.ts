import type { PrismaClient } from '../../db/prisma.js';
import type { FleetRunStatus } from '../../generated/prisma/enums.js';
import type { JobData } from '../family.js';
import { sealMatches } from '../job-seal.js';
import { CANCELLED_STATUSES, PAUSED_STATUSES } from './lifecycle.js';
import type { RunStore } from './store.js';

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
  /** What its producer sealed its jobs with; null for a run made before jobs were sealed. */
  jobKey: string | null;
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
 * job's family, its producer added the job (the job's seal, see
 * job-seal.ts; or the job was added by a run it follows and handed over to
 * it) and has not ended; and whether the run is paused or being cancelled
 * by an operator. Job data can be written into Redis by
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

  async verdict(job: JobData, family: string, jobId: string): Promise<RunVerdict> {
    const { runId } = job;
    const run = await this.lookup(runId);
    const refusal = (why: string) => `run ${runId} ${why}: nothing was changed`;
    const refuse = (why: string): RunVerdict => ({ kind: 'refuse', reason: refusal(why) });
    if (run.family === null) return refuse('does not exist: the job was not added by the fleet');
    if (run.family !== family) return refuse(`is a ${run.family} run, not ${family}`);
    const unproven = await this.unproven(job, run, family, jobId);
    if (unproven) return refuse(unproven);
    if (run.status && PAUSED_STATUSES.includes(run.status)) return PARK;
    if (run.status && CANCELLED_STATUSES.includes(run.status)) return { kind: 'drop', reason: `run ${runId} was cancelled` };
    // A job whose outcome its run already holds may run once more (a crash
    // between counting it and finishing it): its handler finds nothing to do.
    if (run.ended && !(await this.runs.hasOutcome(family, runId, jobId))) return { kind: 'ended', reason: refusal(`has ended (${run.status})`) };
    return { kind: 'run', paceMs: run.paceMs };
  }

  /**
   * Why the job cannot be shown to come from its run's producer, or null
   * when it can: its seal is that of the run that added it (the run it
   * names, or `by` once handed over to a run that follows it). Jobs of runs
   * made before jobs were sealed carry none and are taken as they were.
   */
  private async unproven(job: JobData, run: Known, family: string, jobId: string): Promise<string | null> {
    const adder = job.by ?? job.runId;
    const added = adder === job.runId ? run : await this.lookup(adder);
    if (added.family !== family) return `did not add this job: its claimed adder ${adder} is no ${family} run`;
    // A run made before seals has none to match, and its jobs carry none.
    const sealed = added.jobKey === null ? job.seal === undefined : sealMatches(added.jobKey, jobId, job.seal);
    if (!sealed) return `did not add this job: its seal is not run ${adder}'s`;
    if (adder !== job.runId && !(await this.runs.follows(family, job.runId, jobId))) return `does not follow this job of run ${adder}`;
    return null;
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
    const row = await this.prisma.fleetRun.findUnique({ where: { id: runId }, select: { family: true, finishedAt: true, status: true, jobKey: true } });
    const ended = row !== null && row.finishedAt !== null && row.status !== 'INTERRUPTED';
    const paceMs = row && !ended ? await this.runs.paceOf(row.family, runId) : null;
    const now = Date.now();
    const known = {
      family: row?.family ?? null,
      jobKey: row?.jobKey ?? null,
      status: row?.status ?? null,
      ended,
      paceMs,
      until: now + (row && !ended ? this.openTtlMs : this.closedTtlMs),
    };
    if (this.known.size > 10_000) this.known.clear();
    this.known.set(runId, known);
    return known;
  }
}
