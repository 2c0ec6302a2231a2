import { durationText } from '../src/config/duration.js';
import type { RecordedAction } from '../src/fleet/runs/actions.js';
import type { NotedOutcome, ReasonCount } from '../src/fleet/runs/outcomes.js';
import { MAX_NOTE } from '../src/fleet/runs/actions.js';
import { actionsFor } from '../src/fleet/runs/control.js';
import { movingRate, type ProgressSample } from '../src/fleet/runs/progress.js';
import type { RunView } from '../src/fleet/runs/store.js';
import { describeScope } from '../src/fleet/scope.js';
import { firingText, type ScheduleFiring } from '../src/fleet/schedules.js';
import { count, escape } from './html.js';

/** How often the page's script fetches the runs again, in seconds. */
const LIVE_EVERY_S = 5;

/** A scheduler as the runs page lists it. */
export interface ScheduleRow {
  name: string;
  family: string;
  when: string;
  next: Date | null;
  lastFiring: ScheduleFiring | undefined;
}

/**
 * Jobs per second between consecutive samples, as a small inline chart: no
 * script, no build step, nothing fetched.
 */
export function throughputChart(samples: ProgressSample[], width = 100, height = 24): string {
  const points = samples.slice(1).map((sample, i) => ({
    at: sample.at,
    rate: Math.max(0, sample.done - samples[i]!.done) / Math.max(0.001, (sample.at - samples[i]!.at) / 1000),
  }));
  if (points.length < 2) return '';
  const first = points[0]!.at;
  const span = Math.max(1, points[points.length - 1]!.at - first);
  const top = Math.max(1, ...points.map((p) => p.rate));
  const path = points.map((p) => `${((width * (p.at - first)) / span).toFixed(1)},${(height - 1 - ((height - 2) * p.rate) / top).toFixed(1)}`).join(' ');
  return `<svg class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="jobs per second, peak ${Math.round(top)}/s"><title>jobs per second over time, peak ${Math.round(top)}/s</title><polyline fill="none" stroke="#36c" stroke-width="1.5" points="${path}"/></svg>`;
}

/** The actions the run's state allows, as buttons of one form whose note goes into the run's history. */
function controls(run: RunView): string {
  const actions = actionsFor(run.status);
  if (actions.length === 0) return '';
  const buttons = actions.map((action) => `<button class="${action}" type="submit" formaction="runs/${escape(run.id)}/${action}">${action}</button>`);
  return `<form method="post"><input name="note" class="note" maxlength="${MAX_NOTE}" placeholder="note" aria-label="why (for the run's history)">${buttons.join('')}</form>`;
}

/** A retry of the run's jobs that ended with this reason: the server answers with the count to confirm first. */
function retryReason(run: RunView, reason: ReasonCount): string {
  return `<form method="post" action="runs/${escape(run.id)}/retry-matching" class="retry-reason"><input type="hidden" name="outcome" value="${reason.outcome}"><input type="hidden" name="reason" value="${escape(reason.reason)}"><button type="submit">retry these…</button></form>`;
}

/** A moment as "3 min ago" (or "in 3 min"), with the exact UTC time on hover. */
function momentText(at: Date, now: number): string {
  const exact = at
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
  const span = durationText(Math.abs(now - at.getTime()), 1);
  return `<time datetime="${at.toISOString()}" title="${exact}">${at.getTime() > now ? `in ${span}` : `${span} ago`}</time>`;
}

export interface RunsPageOptions {
  /** Where bull-board is mounted. */
  boardPath: string;
  /** Shows pause, resume and cancel (the server refuses them to the read-only account anyway). */
  canControl: boolean;
  /** Why a family's workers hold back, by family. */
  throttled?: Record<string, string>;
  /** Progress samples of the runs still going, by run id. */
  progress?: Map<string, ProgressSample[]>;
  schedules?: ScheduleRow[];
  /** What operators did to each run, oldest first, by run id. */
  actions?: Map<string, RecordedAction[]>;
  /** Why jobs of a run failed or were skipped, the most common reason first, by run id. */
  reasons?: Map<string, ReasonCount[]>;
  /** A search of failed and skipped jobs by row or reason (the page's search box), with what it found. */
  search?: { text: string; found: NotedOutcome[] };
  /** The time the page is drawn at. Default now. */
  now?: number;
}

function runRow(run: RunView, options: RunsPageOptions, now: number): string {
  const queueLink = (status?: string) => `${escape(options.boardPath)}/queue/${encodeURIComponent(run.family)}${status ? `?status=${status}` : ''}`;
  const done = run.completed + run.skipped + run.failed;
  const elapsedMs = Math.max(0, (run.finishedAt?.getTime() ?? now) - run.startedAt.getTime());
  const samples = run.finishedAt ? [] : (options.progress?.get(run.id) ?? []);
  // A running run's rate is its last minute's, so that a stall or a pause shows; an ended run's is its average.
  const moving = run.finishedAt ? null : movingRate(samples, { at: now, done });
  const rate = moving ?? (elapsedMs > 0 ? (1_000 * done) / elapsedMs : 0);
  const throttle = !run.finishedAt && options.throttled?.[run.family];
  let progress: string;
  if (run.enqueued && run.total === 0) progress = '<span class="muted">nothing to do</span>';
  else {
    // A run still being enqueued has a total that grows: nothing to be 100% of yet.
    const percent = run.total === 0 ? 0 : Math.floor((100 * done) / run.total);
    progress = `<progress max="100" value="${percent}"></progress> ${percent}% <span class="muted">${count(done)}/${count(run.total)}${run.enqueued ? '' : '+'}</span>`;
  }
  if (throttle) progress += `<div class="throttle">throttled: ${escape(throttle)}</div>`;
  let time = '';
  if (run.finishedAt) time = `took ${durationText(elapsedMs)}`;
  else if (run.enqueued && rate > 0) {
    const seconds = Math.ceil((run.total - done) / rate);
    time = `<span class="eta" data-seconds="${seconds}" title="time left at the current rate">${durationText(seconds * 1_000)} left</span>`;
  }
  const details: [name: string, value: string, cls?: string][] = [
    ['scope', escape(describeScope(run.scope))],
    ['origin', escape(run.origin ?? '')],
    ['total', `${count(run.total)}${run.enqueued ? '' : '+'}`],
    ['completed', count(run.completed)],
    ['skipped', count(run.skipped)],
    ['started', momentText(run.startedAt, now)],
    ['finished', run.finishedAt ? momentText(run.finishedAt, now) : ''],
    ['duration', durationText(elapsedMs)],
    // Why jobs failed or were skipped, the most common reasons first; then what operators did.
    ...(options.reasons?.get(run.id) ?? []).map((reason): [string, string, string] => [
      `${count(reason.jobs)} ${reason.outcome}`,
      `${escape(reason.reason)}${options.canControl ? retryReason(run, reason) : ''}`,
      'reason',
    ]),
    ...(options.actions?.get(run.id) ?? []).map((action): [string, string, string] => [
      escape(action.action),
      `${momentText(action.at, now)} by ${escape(action.operator)}: ${escape(action.result)}${action.note ? ` (${escape(action.note)})` : ''}`,
      `action ${escape(action.action)}`,
    ]),
  ];
  const detailList = details.map(([name, value, cls]) => `<dt>${name}</dt><dd class="${cls ?? name}">${value}</dd>`).join('');
  const failedLink = run.failed > 0 ? ` <a href="${queueLink('failed')}">reasons</a>` : '';
  return `<tr class="run" id="${escape(run.id)}" data-run="${escape(run.id)}">
  <td class="run-id"><code title="${escape(run.id)}">${escape(run.id.slice(-6))}</code><button type="button" class="copy" data-copy="${escape(run.id)}" title="copy the run id">copy</button></td>
  <td><a href="${queueLink()}">${escape(run.family)}</a></td><td class="status status-${escape(run.status.toLowerCase())}">${escape(run.status)}</td>
  <td class="progress">${progress}</td>
  <td class="num rate wide" title="${moving === null ? 'average since the start' : 'over the last minute'}"><span class="rate-value">${rate < 10 ? rate.toFixed(1) : Math.round(rate)}/s</span>${throughputChart(samples)}</td>
  <td class="num time">${time}</td>
  <td class="num failed-count${run.failed > 0 ? ' failed' : ''}" data-label="failed">${count(run.failed)}${failedLink}</td>
  <td class="started wide">${momentText(run.startedAt, now)}</td>
  <td class="wide"><details><summary>more</summary><dl>${detailList}</dl></details></td>${options.canControl ? `<td class="controls">${controls(run)}</td>` : ''}</tr>`;
}

/**
 * What the runs page shows and `/runs/live` serves alone, for the page's
 * script to bring up to date in place.
 */
export function runsContent(runs: RunView[], options: RunsPageOptions): string {
  const now = options.now ?? Date.now();
  const columns = 9 + (options.canControl ? 1 : 0);
  const rows = runs.map((run) => runRow(run, options, now)).join('\n');
  return `<table id="runs"><thead><tr><th>run</th><th>family</th><th>status</th><th>progress</th><th class="num wide">rate</th><th class="num">ETA / took</th><th class="num">failed</th><th class="wide">started</th><th class="wide"></th>${
    options.canControl ? '<th></th>' : ''
  }</tr></thead>
<tbody>
${rows || `<tr id="no-runs"><td colspan="${columns}">no runs yet</td></tr>`}
</tbody></table>
${schedulesTable(options.schedules ?? [], now)}`;
}

/**
 * The runs as a whole: what an operator wants to see of a migration, beside
 * the per-job view of bull-board. Its script brings it up to date every few
 * seconds without reloading it (a scroll position and a selection stay).
 */
export function runsPage(runs: RunView[], options: RunsPageOptions): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tys runs</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<noscript><meta http-equiv="refresh" content="${LIVE_EVERY_S}"></noscript>
<script src="runs/live.js" defer></script>
<style>
body { font-family: system-ui, sans-serif; margin: 1rem 1.25rem; color: #222; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; } th, td { padding: .3rem .45rem; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; white-space: nowrap; }
.num { text-align: right; } progress { width: 5rem; vertical-align: middle; } svg.chart { display: block; margin-left: auto; }
button.copy { font-size: .75em; margin-left: .3rem; } td.controls { white-space: normal; } td.controls button { margin: 0 .25rem .15rem 0; } input.note { width: 5rem; margin: 0 .25rem .15rem 0; }
form.retry-reason { display: inline; margin-left: .4rem; }
details dl { display: grid; grid-template-columns: auto auto; gap: .1rem .6rem; margin: .3rem 0 0; } details dd { margin: 0; }
td.reason, dd.reason { white-space: normal; } #search input { width: 22rem; max-width: 70vw; }
.throttle { color: #a60; font-size: .85em; white-space: normal; } .muted, #updated { color: #666; }
.failed { color: #b00; font-weight: 600; } .status-completed { color: #070; } .status-failed, .status-interrupted { color: #b00; }
/* A phone: each row a card of the cells that matter. */
@media (max-width: 800px) { body { margin: .5rem; } .wide, button.copy, thead { display: none; } table, tbody { display: block; }
  tr { display: flex; flex-wrap: wrap; gap: .2rem .7rem; padding: .45rem 0; border-bottom: 1px solid #ddd; } td { display: block; border: none; padding: 0; white-space: normal; }
  td[data-label]::before { content: attr(data-label) " "; color: #666; } }
</style></head>
<body><h1>Runs</h1><p><a href="${escape(options.boardPath)}">Queues and jobs</a> · <a href="api/runs">JSON</a> · <span id="updated">updated every ${LIVE_EVERY_S} s</span></p>
<form id="search" method="get" action="runs"><input name="q" type="search" maxlength="${MAX_SEARCH}" placeholder="a row's id, or words of a reason" value="${escape(options.search?.text ?? '')}"> <button type="submit">find failed or skipped jobs</button></form>
${options.search ? searchResults(options.search, options.now ?? Date.now()) : ''}
<main id="live" data-every-ms="${LIVE_EVERY_S * 1_000}">
${runsContent(runs, options)}
</main></body></html>`;
}

/** A search is at most this long: a row's id, or a few words of a reason. */
export const MAX_SEARCH = 200;

/** The failed and skipped jobs a search found, newest first, each with its run. */
function searchResults(search: { text: string; found: NotedOutcome[] }, now: number): string {
  if (search.found.length === 0) return `<p id="found" class="muted">no failed or skipped job of a row "${escape(search.text)}" or with it in its reason</p>`;
  const rows = search.found
    .map(
      (
        job,
      ) => `<tr class="found" data-key="${escape(job.key)}"><td><a href="#${escape(job.runId)}"><code title="${escape(job.runId)}">${escape(job.runId.slice(-6))}</code></a></td>
  <td>${escape(job.family)}</td><td><code>${escape(job.key)}</code></td><td>${escape(job.outcome)}</td><td class="reason">${escape(job.reason)}</td><td>${momentText(job.at, now)}</td></tr>`,
    )
    .join('\n');
  return `<table id="found"><thead><tr><th>run</th><th>family</th><th>row</th><th>outcome</th><th>reason</th><th>when</th></tr></thead>
<tbody>
${rows}
</tbody></table>`;
}

/** The installed schedulers and what each last firing did: a firing that found nothing keeps no run. */
function schedulesTable(schedules: ScheduleRow[], now: number): string {
  if (schedules.length === 0) return '';
  const rows = schedules
    .map(
      (
        s,
      ) => `<tr class="schedule" id="schedule-${escape(s.name)}" data-schedule="${escape(s.name)}"><td>${escape(s.name)}</td><td>${escape(s.family)}</td><td>${escape(s.when)}</td>
  <td>${s.next ? momentText(s.next, now) : ''}</td><td class="last-firing">${escape(firingText(s.lastFiring))}</td></tr>`,
    )
    .join('\n');
  return `<h2>Schedules</h2>
<table id="schedules"><thead><tr><th>scheduler</th><th>family</th><th>when</th><th>next</th><th>last firing</th></tr></thead>
<tbody>
${rows}
</tbody></table>`;
}
