import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { spawnWorker, type TysResult } from '../support/processes.js';
import type { PrivateRedis } from '../support/redis-server.js';
import { withClient } from '../support/server.js';

type Worker = ReturnType<typeof spawnWorker>;

/**
 * Worker processes of the scenario: killed and restarted at will, their
 * output kept (it is searched for secrets and counted for retries).
 */
export class WorkerPool {
  private readonly workers: Worker[] = [];
  readonly exits: TysResult[] = [];
  /** SIGTERM exits that were not clean (status other than 0, or too slow). */
  readonly unclean: string[] = [];
  /** Workers that exited without being told to. */
  readonly crashes: string[] = [];
  private stopping = false;

  private spawned = 0;

  /** `logDir`: where each worker's whole output is written when it exits. */
  constructor(
    private readonly size: number,
    private readonly env: NodeJS.ProcessEnv,
    private readonly logDir?: string,
  ) {}

  start(): void {
    while (this.workers.length < this.size) this.spawn();
  }

  private spawn(): void {
    const worker = spawnWorker(this.env);
    this.workers.push(worker);
    const n = (this.spawned += 1);
    void worker.exited.then((result) => {
      this.exits.push(result);
      if (this.logDir) writeFileSync(path.join(this.logDir, `worker-${n}.log`), result.stdout + result.stderr);
      if (this.workers.includes(worker)) {
        // Nobody stopped it: it crashed. Reported, and replaced so the scenario goes on.
        const last = (result.stdout + result.stderr).trim().split('\n').slice(-6).join(' | ');
        this.crashes.push(`worker exited ${result.code ?? result.signal} on its own; it last said: ${last.slice(0, 600)}`);
        this.workers.splice(this.workers.indexOf(worker), 1);
        if (!this.stopping) this.spawn();
      }
    });
  }

  /** A worker that has started taking jobs: faults are meant for workers under load, not for ones still booting. */
  private take(random: () => number): Worker | undefined {
    const ready = this.workers.filter((w) => w.output().includes('"msg":"workers started"'));
    if (ready.length === 0) return undefined;
    const worker = ready[Math.floor(random() * ready.length)]!;
    this.workers.splice(this.workers.indexOf(worker), 1);
    return worker;
  }

  /** SIGKILL to one worker, and a new one in its place. */
  async kill(random: () => number): Promise<boolean> {
    const worker = this.take(random);
    if (!worker) return false;
    worker.kill('SIGKILL');
    await worker.exited;
    this.spawn();
    return true;
  }

  /** SIGTERM to one worker under load, and a new one in its place; returns how long it took to exit. */
  async terminate(random: () => number, deadlineMs: number): Promise<number | null> {
    const worker = this.take(random);
    if (!worker) return null;
    const took = await this.stopGracefully(worker, deadlineMs);
    this.spawn();
    return took;
  }

  /** SIGTERM to every worker, restarting none. */
  async stopAll(deadlineMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers.splice(0).map((worker) => this.stopGracefully(worker, deadlineMs)));
  }

  /** A worker must let its active jobs finish and exit 0 within the deadline, or it is killed and reported. */
  private async stopGracefully(worker: Worker, deadlineMs: number): Promise<number> {
    const started = Date.now();
    worker.kill('SIGTERM');
    const timer = setTimeout(() => worker.kill('SIGKILL'), deadlineMs);
    const result = await worker.exited;
    clearTimeout(timer);
    const took = Date.now() - started;
    // Node ends a process that has not loaded yet on SIGTERM, before any handler
    // exists: it holds no job, so that is as clean as an exit 0.
    const neverStarted = result.signal === 'SIGTERM' && !(result.stdout + result.stderr).includes('"msg":"workers started"');
    if (result.code !== 0 && !neverStarted) {
      // Its own log (stdout) says which shutdown step it was waiting for; stderr has what its libraries printed.
      const tail = (text: string, lines: number) => text.trim().split('\n').slice(-lines).join(' | ').slice(0, 800);
      this.unclean.push(
        `worker exited ${result.code ?? result.signal} ${took} ms after SIGTERM; its log ended: ${tail(result.stdout, 2)}; its stderr ended: ${tail(result.stderr, 2)}`,
      );
    }
    return took;
  }

  /** Everything every worker process printed so far. */
  output(): string {
    const live = this.workers.map((w) => w.output());
    return [...this.exits.map((e) => e.stdout + e.stderr), ...live].join('\n');
  }
}

export type FaultKind = 'worker-sigkill' | 'worker-sigterm' | 'postgres-terminate' | 'postgres-outage' | 'redis-restart';

export interface FaultInjectorOptions {
  pool: WorkerPool;
  redis: PrivateRedis;
  /** Connection string of the server's maintenance database, to act on the scenario's own database. */
  adminUrl: string;
  database: string;
  random: () => number;
  /** Pause between two faults, in ms, drawn from [min, max]. */
  everyMs: [number, number];
  outageMs: number;
  log: (line: string) => void;
}

/**
 * Injects faults one after another while runs are in flight. Faults are
 * drawn from a shuffled bag so that every kind happens in every pass, in a
 * random order. Redis restarts are asked for on purpose (redisRestart()),
 * as they interrupt whole runs.
 */
export class FaultInjector {
  readonly counts: Record<FaultKind, number> = {
    'worker-sigkill': 0,
    'worker-sigterm': 0,
    'postgres-terminate': 0,
    'postgres-outage': 0,
    'redis-restart': 0,
  };
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private serial: Promise<void> = Promise.resolve();

  constructor(private readonly options: FaultInjectorOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let bag: FaultKind[] = [];
    while (this.running) {
      const [min, max] = this.options.everyMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, min + this.options.random() * (max - min));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (!this.running) break;
      if (bag.length === 0) bag = this.shuffled(['worker-sigkill', 'worker-sigkill', 'worker-sigterm', 'postgres-terminate', 'postgres-outage']);
      const kind = bag.pop()!;
      await this.inject(kind).catch((error) => this.options.log(`fault ${kind} not injected: ${(error as Error).message}`));
    }
  }

  private shuffled(kinds: FaultKind[]): FaultKind[] {
    for (let i = kinds.length - 1; i > 0; i -= 1) {
      const j = Math.floor(this.options.random() * (i + 1));
      [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
    }
    return kinds;
  }

  /** Faults happen one at a time, whoever asks: each is then a fault of its own kind, not a mix of two. */
  inject(kind: FaultKind): Promise<void> {
    const done = this.serial.then(() => this.perform(kind));
    this.serial = done.catch(() => undefined);
    return done;
  }

  private async perform(kind: FaultKind): Promise<void> {
    const { pool, random, log } = this.options;
    switch (kind) {
      case 'worker-sigkill':
        if (!(await pool.kill(random))) return;
        log('fault: SIGKILL to a worker, a new one started');
        break;
      case 'worker-sigterm': {
        const took = await pool.terminate(random, 120_000);
        if (took === null) return;
        log(`fault: SIGTERM to a worker under load, exited in ${took} ms`);
        break;
      }
      case 'postgres-terminate': {
        const n = await withClient((client) => this.terminateBackends(client), this.options.adminUrl);
        log(`fault: ${n} Postgres connections of the database terminated`);
        break;
      }
      case 'postgres-outage':
        await withClient(async (client) => {
          await client.query(`ALTER DATABASE "${this.options.database}" WITH ALLOW_CONNECTIONS false`);
          try {
            const n = await this.terminateBackends(client);
            log(`fault: database unreachable for ${this.options.outageMs} ms (${n} connections cut)`);
            await new Promise((resolve) => setTimeout(resolve, this.options.outageMs));
          } finally {
            await client.query(`ALTER DATABASE "${this.options.database}" WITH ALLOW_CONNECTIONS true`);
          }
        }, this.options.adminUrl);
        break;
      case 'redis-restart':
        await this.options.redis.restart();
        log('fault: Redis restarted, every key lost');
        break;
    }
    this.counts[kind] += 1;
  }

  private async terminateBackends(client: pg.Client): Promise<number> {
    const result = await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [
      this.options.database,
    ]);
    return result.rowCount ?? 0;
  }
}
