import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { FleetConfig } from '../src/config/env.js';
import { requireDatabase } from '../src/db/sql.js';
import { PROJECT_ROOT } from '../src/project-root.js';
import { openFleet } from '../src/fleet/context.js';
import type { JobFamily } from '../src/fleet/family.js';
import { FleetMetrics } from '../src/fleet/metrics.js';
import { controlRun, RunControlError, type RunAction } from '../src/fleet/runs/control.js';
import { RUN_ID_PATTERN, type RunView } from '../src/fleet/runs/store.js';
import { MAX_NOTE } from '../src/fleet/runs/actions.js';
import { retryFilter } from '../src/fleet/runs/outcomes.js';
import { describeScope, type RetryScope } from '../src/fleet/scope.js';
import type { JobData } from '../src/fleet/family.js';
import { AUXILIARY_QUEUES, SCHEDULES_QUEUE } from '../src/fleet/queues.js';
import { RunProgress } from '../src/fleet/runs/progress.js';
import { lastFirings } from '../src/fleet/schedules.js';
import { FleetQueue } from '../src/fleet/tolerant-job.js';
import { throttleReasons } from '../src/fleet/db-health.js';
import { basicAuth, readOnlyGuard, type Account } from './auth.js';
import { AuditWatch } from './audit-watch.js';
import { createMetricsRegistry } from './metrics.js';
import { loopbackHostOnly, sameOriginWrites } from './origin.js';
import { retryConfirmPage } from './retry-page.js';
import { MAX_SEARCH, runsContent, runsPage, type RunsPageOptions, type ScheduleRow } from './runs-page.js';
import { MIN_METRICS_TOKEN_LENGTH } from './settings.js';

export interface DashboardOptions {
  config: FleetConfig;
  /** Who may sign in; empty only with `insecure`. */
  accounts: Account[];
  /** Bearer token that opens /metrics alone. */
  metricsToken?: string;
  /** No authentication at all: only for a dashboard bound to 127.0.0.1. */
  insecure?: boolean;
  /** The address operators open, when a proxy serves the dashboard (DASHBOARD_PUBLIC_URL). */
  publicUrl?: URL;
  /**
   * Which proxies' X-Forwarded-For to believe (DASHBOARD_TRUST_PROXY), as
   * express's `trust proxy` takes it: a hop count, or addresses and
   * subnets. Default: none; the client is the socket's address.
   */
  trustProxy?: number | string;
  /** The job families whose queues, runs and checks it shows (the entry point hands in the registry). */
  families: readonly JobFamily[];
  /** How often, in ms, the families' audits behind the integrity metrics run again. Default 300,000. */
  auditRefreshMs?: number;
  log: Logger;
}

export interface Dashboard {
  app: express.Express;
  close(): Promise<void>;
}

const BOARD_PATH = '/board';
/** The runs page's one script, read once: the page's own, served from here (the policy allows no inline script). */
const RUNS_LIVE_SCRIPT = readFileSync(path.join(PROJECT_ROOT, 'dashboard', 'public', 'runs-live.js'), 'utf8');
const RUN_ACTIONS: RunAction[] = ['pause', 'resume', 'cancel', 'retry'];

/** A reason a retry names is at most this long (the longest a job's reason is kept, with room for its marks). */
const MAX_RETRY_REASON = 1_000;

/** A field of a posted form, trimmed and cut at `max` characters; empty when absent or not text. */
function formText(req: Request, name: string, max: number): string {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value.trim().slice(0, max) : '';
}

function securityHeaders(https: boolean) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    // No inline script runs anywhere (bull-board's only inline block is JSON data).
    res.setHeader(
      'Content-Security-Policy',
      "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    );
    if (https) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
    next();
  };
}

/** What an operator's session sees is never kept by a browser or a proxy cache. */
function noStore(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Cache-Control', 'no-store');
  next();
}

function board(queues: Map<string, Queue>, readOnlyMode: boolean): express.Router {
  const adapter = new ExpressAdapter();
  adapter.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: [...queues.values()].map((queue) => new BullMQAdapter(queue, { readOnlyMode, allowRetries: !readOnlyMode })),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: readOnlyMode ? 'tys (read-only)' : 'tys', miscLinks: [{ text: 'Runs', url: '/runs' }] } },
  });
  const router = adapter.getRouter() as express.Express;
  router.disable('x-powered-by');
  return router;
}

export async function createDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { config, log, families } = options;
  if (!options.insecure && options.accounts.length === 0) throw new Error('the dashboard needs at least one account');
  if (options.metricsToken !== undefined && options.metricsToken.length < MIN_METRICS_TOKEN_LENGTH) {
    throw new Error(`METRICS_TOKEN must be at least ${MIN_METRICS_TOKEN_LENGTH} characters`);
  }
  // Requests fail fast while Redis is away (no offline queue), but a
  // long-running dashboard keeps reconnecting until it is back.
  const fleet = await openFleet(config, { role: 'server', poolSize: 5 });
  try {
    await requireDatabase(fleet.prisma, config.databaseUrl);
  } catch (error) {
    await fleet.close();
    throw error;
  }
  const { redis, prisma, runs, layout } = fleet;
  redis.on('error', (error: Error) => log.warn({ err: error.message }, 'redis connection error'));
  const queues = new Map<string, Queue>();
  // Each shard of a sharded family is a queue of its own on the board (lots.0, lots.1...).
  const familyQueues = new Map(
    families.map((f) => [
      f.name,
      layout.shards(f.name).map((shard) => new FleetQueue<JobData>(shard.queueName, { connection: redis, prefix: shard.prefix, skipMetasUpdate: true })),
    ]),
  );
  for (const queue of [...familyQueues.values()].flat()) queues.set(queue.name, queue);
  for (const name of AUXILIARY_QUEUES) queues.set(name, new FleetQueue(name, { connection: redis, prefix: layout.shared, skipMetasUpdate: true }));
  const runProgress = new RunProgress(redis, layout.shared);
  const scheduleRows = async (queue: Queue): Promise<ScheduleRow[]> => {
    const [schedulers, fired] = await Promise.all([queue.getJobSchedulers(0, -1, true), lastFirings(redis, layout.shared)]);
    return schedulers.map((s) => ({
      name: s.key,
      family: (s.template?.data as { family?: string } | undefined)?.family ?? '?',
      when: s.pattern ? `cron ${s.pattern}` : `every ${Number(s.every) / 1000} s`,
      next: s.next ? new Date(s.next) : null,
      lastFiring: fired[s.key],
    }));
  };
  const audits = new AuditWatch(prisma, families, log, { intervalMs: options.auditRefreshMs, verifyContext: { redis, prefix: layout.shared } });
  audits.start();
  const metrics = createMetricsRegistry({
    queues: new Map<string, Queue[]>([...familyQueues, ...AUXILIARY_QUEUES.map((name): [string, Queue[]] => [name, [queues.get(name)!]])]),
    families: families.map((f) => f.name),
    prisma,
    metrics: new FleetMetrics(redis, layout.shared),
    audits,
    redis,
    prefix: layout.shared,
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', options.trustProxy ?? false);
  if (options.insecure) app.use(loopbackHostOnly(log));
  app.use(securityHeaders(options.publicUrl?.protocol === 'https:'));
  // Before authentication: its refusals (401, 429) are no more for a cache to keep than the pages are.
  app.use(noStore);

  // Unauthenticated on purpose (load balancers, orchestrators); says what is down, nothing more.
  app.get('/healthz', async (_req, res) => {
    const check = async (probe: () => Promise<unknown>) => {
      try {
        await Promise.race([probe(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2_000))]);
        return 'up';
      } catch {
        return 'down';
      }
    };
    const [redisState, postgresState] = await Promise.all([check(() => redis.ping()), check(() => prisma.$queryRaw`SELECT 1`)]);
    const ok = redisState === 'up' && postgresState === 'up';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', redis: redisState, postgres: postgresState });
  });

  if (options.insecure) app.use((req, _res, next) => ((req.role = 'admin'), next()));
  else app.use(basicAuth({ accounts: options.accounts, metricsToken: options.metricsToken, log }));
  app.use(sameOriginWrites({ publicUrl: options.publicUrl, log }));

  app.get('/metrics', async (_req, res, next) => {
    try {
      res.type('text/plain; version=0.0.4').send(await metrics.render());
    } catch (error) {
      next(error);
    }
  });
  app.get('/', (_req, res) => res.redirect(BOARD_PATH));
  app.get('/api/runs', async (_req, res, next) => {
    try {
      res.json(await runs.list({ limit: 50 }));
    } catch (error) {
      next(error);
    }
  });
  /** Reasons the runs page shows of each run, the most common first. */
  const REASONS_SHOWN = 5;
  /** Jobs a search of the runs page lists at most. */
  const SEARCH_LIMIT = 50;
  const runsView = async (req: Request): Promise<[RunView[], RunsPageOptions]> => {
    const throttled = await throttleReasons(redis, layout.shared, [...familyQueues.keys()]);
    const list = await runs.list({ limit: 50 });
    const running = list.filter((run) => !run.finishedAt);
    const progress = new Map(await Promise.all(running.map(async (run) => [run.id, await runProgress.read(run.id)] as const)));
    const schedules = await scheduleRows(queues.get(SCHEDULES_QUEUE)!);
    const actions = await runs.actions.ofRuns(list.map((run) => run.id));
    const reasons = await runs.outcomes.topReasonsOfRuns(
      list.filter((run) => run.failed + run.skipped > 0).map((run) => run.id),
      REASONS_SHOWN,
    );
    const text = typeof req.query.q === 'string' ? req.query.q.trim().slice(0, MAX_SEARCH) : '';
    const search = text ? { text, found: await runs.outcomes.find({ keyOrReason: text }, SEARCH_LIMIT) } : undefined;
    return [list, { boardPath: BOARD_PATH, canControl: req.role === 'admin', throttled, progress, schedules, actions, reasons, search }];
  };
  app.get('/runs', async (req, res, next) => {
    try {
      res.type('html').send(runsPage(...(await runsView(req))));
    } catch (error) {
      next(error);
    }
  });
  // What the page's script fetches to bring the page up to date in place.
  app.get('/runs/live', async (req, res, next) => {
    try {
      res.type('html').send(runsContent(...(await runsView(req))));
    } catch (error) {
      next(error);
    }
  });
  app.get('/runs/live.js', (_req, res) => res.type('text/javascript').send(RUNS_LIVE_SCRIPT));
  // The runs page's forms: plain posts of a few short fields, answered with a page.
  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });
  const operatorOf = (req: Request) => ({ operator: `dashboard ${req.user ?? '(no login)'}`, note: formText(req, 'note', MAX_NOTE) || undefined });
  /** The run a form names, with its family; null (answered 404) when there is none. */
  const runOf = async (req: Request, res: Response) => {
    const { runId } = req.params as { runId: string };
    const run = RUN_ID_PATTERN.test(runId) ? await runs.get(runId).catch(() => null) : null;
    const family = run && families.find((f) => f.name === run.family);
    if (!run || !family) {
      res.status(404).json({ error: 'no such run' });
      return null;
    }
    return { run, family };
  };
  /** Retries running in the background (a large one adds its jobs for a while after the page has answered). */
  const adding = new Set<Promise<unknown>>();

  app.post('/runs/:runId/retry-matching', readOnlyGuard, form, async (req, res, next) => {
    try {
      const found = await runOf(req, res);
      if (!found) return;
      const outcome = formText(req, 'outcome', 10);
      const reason = formText(req, 'reason', MAX_RETRY_REASON);
      if ((outcome !== '' && outcome !== 'failed' && outcome !== 'skipped') || (!outcome && !reason)) {
        res.status(400).json({ error: 'a retry takes an outcome (failed or skipped) and a reason' });
        return;
      }
      const scope: RetryScope = { kind: 'retry', runId: found.run.id, ...(outcome ? { outcome } : {}), ...(reason ? { reason } : {}) };
      const preview = await runs.outcomes.previewRetry(scope);
      // What the operator confirmed is what is done: a count that changed meanwhile is shown again.
      if (preview.jobs === 0 || formText(req, 'confirm', 12) !== String(preview.jobs)) {
        const counts = await runs.outcomes.countByReason({ ...retryFilter(scope), notRetried: true });
        res.type('html').send(retryConfirmPage(scope, preview, counts));
        return;
      }
      const by = operatorOf(req);
      const newRunId = await new Promise<string>((resolve, reject) => {
        const retry = fleet
          .enqueue(found.family, scope, { origin: `${by.operator}: retry of ${describeScope(scope)}`, onRun: resolve })
          .then((result) => log.info({ runId: result.runId, of: scope.runId, jobs: result.added }, 'retry from the dashboard added'))
          .catch((error: Error) => {
            log.error({ err: error, of: scope.runId }, 'retry from the dashboard failed');
            reject(error);
          })
          .finally(() => adding.delete(retry));
        adding.add(retry);
      });
      await runs.actions.record(scope.runId, 'retry', by, `${preview.jobs} job(s) taken up by ${newRunId}`);
      res.redirect(303, `/runs#${newRunId}`);
    } catch (error) {
      next(error);
    }
  });
  app.post('/runs/:runId/:action', readOnlyGuard, form, async (req, res, next) => {
    const { action } = req.params as { action: string };
    if (!RUN_ACTIONS.includes(action as RunAction)) {
      res.status(404).json({ error: 'no such action' });
      return;
    }
    try {
      const found = await runOf(req, res);
      if (!found) return;
      const runId = found.run.id;
      const status = await controlRun({ prisma, runs, family: found.family.name, queues: familyQueues.get(found.family.name)! }, runId, action as RunAction, {
        settleTimeoutMs: 5_000,
        by: operatorOf(req),
      });
      log.info({ runId, action, status }, 'run control from the dashboard');
      res.redirect(303, '/runs');
    } catch (error) {
      if (error instanceof RunControlError) res.status(409).json({ error: error.message });
      else next(error);
    }
  });

  const adminBoard = board(queues, false);
  const readOnlyBoard = board(queues, true);
  app.use(BOARD_PATH, readOnlyGuard, (req, res, next) => (req.role === 'admin' ? adminBoard : readOnlyBoard)(req, res, next));

  // Errors are logged here and answered without detail: no stack trace leaves the server.
  app.use((error: Error & { status?: number }, req: Request, res: Response, _next: NextFunction) => {
    // The client's own fault (a URL that does not decode, a body that does not parse): one line, no stack.
    if (error.status !== undefined && error.status >= 400 && error.status < 500) {
      log.warn({ path: req.path.slice(0, 200), status: error.status, reason: error.message.slice(0, 200) }, 'bad request');
      if (!res.headersSent) res.status(error.status).json({ error: 'bad request' });
      return;
    }
    log.error({ err: error, path: req.path }, 'dashboard request failed');
    if (!res.headersSent) res.status(500).json({ error: 'internal error' });
  });

  return {
    app,
    async close() {
      await audits.stop();
      await Promise.allSettled(adding);
      await Promise.all([...queues.values()].map((queue) => queue.close()));
      await fleet.close();
    },
  };
}

export function listen(app: express.Express, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => resolve(server));
    server.on('error', reject);
  });
}
