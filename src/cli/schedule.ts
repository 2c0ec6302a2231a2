import path from 'node:path';
import { bullmq } from '../deps/bullmq.js';
import { PROJECT_ROOT } from '../project-root.js';
import { families } from '../families/index.js';
import { SCHEDULES_QUEUE } from '../fleet/queues.js';
import { applySchedules, lastFirings, loadSchedules, removeSchedule, ScheduleError, firingText, type Schedule } from '../fleet/schedules.js';
import { openFleet } from '../fleet/context.js';
import { utcSecondText } from '../config/duration.js';
import { defineCommand, UsageError } from './command.js';
import { cliOperator } from './operator.js';

/** Changes to schedulers that tys schedule list shows. */
const HISTORY_SHOWN = 10;

const DEFAULT_FILE = path.join(PROJECT_ROOT, 'config', 'schedules.json');

const help = `Usage: tys schedule (apply | list | remove NAME) [--file PATH] [--note TEXT] [--json]

Recurring enqueues, declared in one file and installed as BullMQ job
schedulers. Worker processes run the enqueues they produce.

  tys schedule apply         make Redis match the file: create, update, and
                             remove schedulers no longer declared; applying
                             twice changes nothing
  tys schedule list          the installed schedulers, their next run and
                             what their last firing did, then the latest
                             changes made to them, by whom and why
  tys schedule remove NAME   remove one scheduler

Each change (a scheduler created, updated or removed) is recorded with who
made it (user@host) and the note.

Options:
  --file PATH   schedule file (default config/schedules.json, or TYS_SCHEDULES)
  --note TEXT   with apply or remove: why, for the history
  --json        machine-readable output
  -h, --help    this help

File format: {"schedules": [{"name": "alerts-every-5-minutes", "family": "...",
  "every": "5m" | "pattern": "0 3 * * *", "scope": {"kind": "all"}}]}`;

export const scheduleCommand = defineCommand({
  name: 'schedule',
  summary: 'install, list or remove recurring enqueues',
  help,
  options: { file: { type: 'string' }, note: { type: 'string' }, json: { type: 'boolean' } },
  async run({ values, positionals, config, json }, io) {
    const [action, name, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`tys schedule: unexpected argument "${extra[0]}"`);
    if (action !== 'apply' && action !== 'list' && action !== 'remove') {
      throw new UsageError(`tys schedule: expected apply, list or remove, got "${action ?? ''}". See "tys schedule --help".`);
    }
    if (action === 'remove' && !name) throw new UsageError('tys schedule remove: name the scheduler to remove');
    if (action !== 'remove' && name) throw new UsageError(`tys schedule ${action}: unexpected argument "${name}"`);
    if (action === 'list' && values.note !== undefined) throw new UsageError('tys schedule list: --note goes with apply or remove');
    const by = { operator: cliOperator(), note: values.note };
    const file = values.file ?? process.env.TYS_SCHEDULES ?? DEFAULT_FILE;
    let schedules: Schedule[];
    try {
      schedules = action === 'apply' ? loadSchedules(file, families) : [];
    } catch (error) {
      if (error instanceof ScheduleError) throw new UsageError(`tys schedule: ${error.message}`);
      throw error;
    }
    const fleet = await openFleet(config);
    const redis = fleet.redis;
    const queue = new bullmq.Queue(SCHEDULES_QUEUE, { connection: redis, prefix: fleet.layout.shared });
    try {
      if (action === 'apply') {
        const report = await applySchedules(queue, redis, schedules);
        for (const [result, names] of Object.entries(report) as [string, string[]][]) {
          if (result !== 'unchanged') await fleet.runs.actions.recordSchedules(names, 'schedule apply', by, result);
        }
        if (values.json) json(report);
        else {
          for (const [what, names] of Object.entries(report) as [string, string[]][]) if (names.length) io.out(`${what}: ${names.join(', ')}`);
          const changes = report.created.length + report.updated.length + report.removed.length;
          io.out(changes === 0 ? 'schedules unchanged' : `${changes} scheduler(s) changed`);
        }
        return 0;
      }
      if (action === 'remove') {
        const removed = await removeSchedule(queue, redis, name!);
        if (!removed) throw new UsageError(`tys schedule remove: no scheduler named "${name}" (tys schedule list shows them)`);
        await fleet.runs.actions.recordSchedules([name!], 'schedule remove', by, 'removed');
        io.out(`removed ${name}`);
        return 0;
      }
      const list = await queue.getJobSchedulers(0, -1, true);
      const fired = await lastFirings(redis, fleet.layout.shared);
      const changes = await fleet.runs.actions.ofSchedules(HISTORY_SHOWN);
      if (values.json) json({ schedules: list.map((s) => ({ ...s, lastFiring: fired[s.key] ?? null })), changes });
      else if (list.length === 0) io.out('no schedulers installed (tys schedule apply)');
      else {
        for (const s of list) {
          const data = s.template?.data as { family?: string } | undefined;
          io.out(
            `${s.key.padEnd(28)} ${(data?.family ?? '?').padEnd(12)} ${s.pattern ? `cron ${s.pattern}` : `every ${Number(s.every) / 1000}s`}  next ${s.next ? new Date(s.next).toISOString() : '-'}  last ${firingText(fired[s.key])}`,
          );
        }
      }
      if (!values.json && changes.length > 0) {
        io.out('latest changes:');
        for (const c of changes) io.out(`  ${utcSecondText(c.at)}  ${c.schedule} ${c.result} by ${c.operator}${c.note ? ` (${c.note})` : ''}`);
      }
      return 0;
    } finally {
      await queue.close();
      await fleet.close();
    }
  },
});
