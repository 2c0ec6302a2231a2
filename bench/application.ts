import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TrafficLog, type Phases, type TimeRange, type TrafficRecord, type WindowStats } from './traffic.js';

/**
 * The simulated application's traffic in a process of its own, as the real
 * application runs apart from whoever migrates its database. In the
 * rehearsal's process it would share an event loop with the rehearsal's own
 * work: a step's report (sorting tens of thousands of latencies) or the
 * start of a `tys` command held up every request in flight by a few hundred
 * ms, which the next step's p99 then showed as the fleet's doing.
 */
export interface ApplicationOptions {
  databaseUrl: string;
  /** Requests per second. */
  rate: number;
  /** Connections of its pool, all opened before it starts. */
  connections: number;
  /** Its sessions' application_name. */
  applicationName: string;
  /** CPUs (a `taskset` list) it may run on. Default: any. */
  cpus?: string;
}

export type ApplicationSetup = Omit<ApplicationOptions, 'cpus'>;

/** Orders from the parent. */
export type ApplicationOrder = { type: 'setUp'; setup: ApplicationSetup } | { type: 'start' } | { type: 'flush' } | { type: 'stop' };

/** Reports from the application process. */
export type ApplicationReport =
  | { type: 'ready'; phases: Phases }
  | { type: 'record'; record: TrafficRecord }
  | { type: 'stopped'; investmentIds: string[] }
  | { type: 'failed'; message: string };

const MAIN = fileURLToPath(new URL('./application-main.ts', import.meta.url));

/** How long settled() waits for requests still in flight before it says which moment it could not reach. */
const SETTLE_TIMEOUT_MS = 60_000;

/** The shortest time, in ms, between two early requests for the application's records. */
const FLUSH_EVERY_MS = 50;

export class ApplicationProcess {
  private readonly log = new TrafficLog();
  private ready = false;
  private investmentIds: string[] | null = null;
  private failure: Error | null = null;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (report: ApplicationReport) => {
      if (report.type === 'ready') this.ready = true;
      else if (report.type === 'record') this.log.add(report.record);
      else if (report.type === 'stopped') this.investmentIds = report.investmentIds;
      else if (report.type === 'failed') this.failure = new Error(`the simulated application failed: ${report.message}`);
      this.wake();
    });
    // 'close', not 'exit': it comes once the IPC channel has delivered every message the process sent.
    child.on('close', (code, signal) => {
      this.failure ??= this.investmentIds ? null : new Error(`the simulated application ended (${signal ?? `exit status ${code}`}) before it was stopped`);
      this.wake();
    });
  }

  /** Starts the process and its set-up (its users, its pool's connections); resolves once it is ready to send requests. */
  static async start(options: ApplicationOptions): Promise<ApplicationProcess> {
    const command = [process.execPath, '--import', 'tsx', MAIN];
    const [file, ...args] = options.cpus ? ['taskset', '-c', options.cpus, ...command] : command;
    const child = spawn(file!, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    const app = new ApplicationProcess(child);
    const { cpus: _cpus, ...setup } = options;
    child.send({ type: 'setUp', setup } satisfies ApplicationOrder);
    try {
      await app.until(() => app.ready);
    } catch (error) {
      app.kill();
      throw error;
    }
    return app;
  }

  /** Sends requests from now on. */
  begin(): void {
    this.order({ type: 'start' });
  }

  /** Resolves once every request due before `at` (epoch ms) has answered and been recorded here. */
  async settled(at: number): Promise<void> {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    let flushedAt = 0;
    await this.until(
      () => this.log.settledAt >= at,
      FLUSH_EVERY_MS,
      () => {
        if (Date.now() > deadline)
          throw new Error(`the simulated application still had requests due before ${new Date(at).toISOString()} in flight after ${SETTLE_TIMEOUT_MS} ms`);
        // Asked for early once the moment has passed, no more often than FLUSH_EVERY_MS: the application's CPU is what is measured.
        if (Date.now() >= at && Date.now() - flushedAt >= FLUSH_EVERY_MS) {
          this.order({ type: 'flush' });
          flushedAt = Date.now();
        }
      },
    );
  }

  /** The figures of the requests due within `ranges` (call settled() first for figures that are final). */
  window(label: string, ranges: readonly TimeRange[]): WindowStats {
    return this.log.window(label, ranges);
  }

  /** The latencies of the requests due within `range` (see TrafficLog.latencies). */
  latencies(range: TimeRange): number[] {
    return this.log.latencies(range);
  }

  /** Stops sending, waits for the requests in flight, and resolves to the investments the application made. */
  async stop(): Promise<string[]> {
    if (!this.investmentIds) this.order({ type: 'stop' });
    await this.until(() => this.investmentIds !== null);
    return this.investmentIds!;
  }

  /** Ends the process, stopped or not (for cleanups). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
  }

  private order(order: ApplicationOrder): void {
    if (this.failure) throw this.failure;
    if (this.child.connected) this.child.send(order);
  }

  /**
   * Resolves once `done()` holds, looking again at each report from the
   * process and at least every `everyMs` (after `each`, if given); rejects
   * with the process's failure as soon as there is one.
   */
  private async until(done: () => boolean, everyMs = 1_000, each?: () => void): Promise<void> {
    while (!done()) {
      if (this.failure) throw this.failure;
      each?.();
      await this.next(everyMs);
    }
  }

  /** Resolves at the next report from the process, or after `ms`. */
  private next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
