import type { RunAction } from '../src/fleet/run-control.js';
import { movingRate, type ProgressSample } from '../src/fleet/run-progress.js';
import type { RunView } from '../src/fleet/runs.js';
import { firingText, type ScheduleFiring } from '../src/fleet/schedules.js';

/** A scheduler as the runs page lists it. */
export interface ScheduleRow {
  name: string;
  family: string;
  when: string;
  next: Date | null;
  lastFiring: ScheduleFiring | undefined;
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function scopeText(scope: RunView['scope']): string {
  switch (scope.kind) {
    case 'all':
    case 'changed':
      return scope.kind;
    case 'investments':
      return `${scope.ids.length} investment(s)`;
    default:
      return `${scope.kind} ${scope.id}`;
  }
}

/**
 * Jobs per second between consecutive samples, as a small inline chart: no
 * script, no build step, nothing fetched.
 */
export function throughputChart(samples: ProgressSample[], width = 160, height = 32): string {
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

/** The actions a run in this state takes. */
function actionsFor(run: RunView): RunAction[] {
  if (run.status === 'FAILED') return ['retry'];
  if (run.finishedAt) return [];
  if (run.status === 'PAUSED' || run.status === 'PAUSING') return ['resume', 'cancel'];
  if (run.status === 'CANCELLING') return ['cancel'];
  return ['pause', 'cancel'];
}

function controls(run: RunView): string {
  return actionsFor(run)
    .map((action) => `<form method="post" action="runs/${escape(run.id)}/${action}"><button class="${action}" type="submit">${action}</button></form>`)
    .join('');
}

/**
 * The runs as a whole: what an operator wants to see of a migration, beside
 * the per-job view of bull-board. `canControl` shows pause, resume and
 * cancel (the server refuses them to the read-only account anyway).
 */
export function runsPage(
  runs: RunView[],
  options: {
    boardPath: string;
    canControl: boolean;
    throttled?: Record<string, string>;
    /** Progress samples of the runs still going, by run id. */
    progress?: Map<string, ProgressSample[]>;
    schedules?: ScheduleRow[];
  },
): string {
  const { boardPath, canControl } = options;
  const throttled = options.throttled ?? {};
  const now = Date.now();
  const queueLink = (family: string, status?: string) => `${escape(boardPath)}/queue/${encodeURIComponent(family)}${status ? `?status=${status}` : ''}`;
  const rows = runs
    .map((run) => {
      const done = run.completed + run.skipped + run.failed;
      // A run still being enqueued has a total that grows: nothing to be 100% of yet.
      const percent = run.total === 0 ? (run.enqueued ? 100 : 0) : Math.floor((100 * done) / run.total);
      const elapsedS = Math.max(0, ((run.finishedAt?.getTime() ?? now) - run.startedAt.getTime()) / 1000);
      const samples = run.finishedAt ? [] : (options.progress?.get(run.id) ?? []);
      // A running run's rate is its last minute's, so that a stall or a pause shows; an ended run's is its average.
      const moving = run.finishedAt ? null : movingRate(samples, { at: now, done });
      const rate = moving ?? (elapsedS > 0 ? done / elapsedS : 0);
      const eta = !run.finishedAt && run.enqueued && rate > 0 ? `${Math.ceil((run.total - done) / rate)} s` : '';
      const failedLink = run.failed > 0 ? ` <a href="${queueLink(run.family, 'failed')}">reasons</a>` : '';
      return `<tr class="run" data-run="${escape(run.id)}">
  <td><code>${escape(run.id)}</code></td><td><a href="${queueLink(run.family)}">${escape(run.family)}</a></td><td>${escape(scopeText(run.scope))}</td><td class="origin">${escape(run.origin ?? '')}</td>
  <td>${escape(run.startedAt.toISOString())}</td><td class="status status-${escape(run.status.toLowerCase())}">${escape(run.status)}</td>
  <td><progress max="100" value="${percent}"></progress> ${percent}%${
    !run.finishedAt && throttled[run.family] ? `<div class="throttle">throttled: ${escape(throttled[run.family]!)}</div>` : ''
  }</td>
  <td class="num">${run.total}${run.enqueued ? '' : '+'}</td><td class="num">${run.completed}</td><td class="num">${run.skipped}</td><td class="num failed">${run.failed}${failedLink}</td>
  <td class="num">${Math.round(elapsedS)} s</td><td class="num rate" title="${moving === null ? 'average since the start' : 'over the last minute'}"><span class="rate-value">${rate < 10 ? rate.toFixed(1) : Math.round(rate)}/s</span>${throughputChart(samples)}</td><td class="num eta">${eta}</td>
  <td>${run.finishedAt ? escape(run.finishedAt.toISOString()) : ''}</td>${canControl ? `<td class="controls">${controls(run)}</td>` : ''}</tr>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tys runs</title>
<meta http-equiv="refresh" content="5">
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; width: 100%; } th, td { padding: .4rem .6rem; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; } svg.chart { display: block; margin-left: auto; } td.controls form { display: inline; margin-right: .3rem; } .throttle { color: #a60; font-size: .85em; } .failed { color: #b00; } .status-completed { color: #070; } .status-failed, .status-interrupted { color: #b00; }
</style></head>
<body><h1>Runs</h1><p><a href="${escape(boardPath)}">Queues and jobs</a> · refreshes every 5 s · <a href="api/runs">JSON</a></p>
<table><thead><tr><th>run</th><th>family</th><th>scope</th><th>origin</th><th>started</th><th>status</th><th>progress</th>
<th>total</th><th>completed</th><th>skipped</th><th>failed</th><th>duration</th><th>rate</th><th>ETA</th><th>finished</th>${canControl ? '<th></th>' : ''}</tr></thead>
<tbody>
${rows || '<tr><td colspan="15">no runs yet</td></tr>'}
</tbody></table>
${schedulesTable(options.schedules ?? [])}</body></html>`;
}

/** The installed schedulers and what each last firing did: a firing that found nothing keeps no run. */
function schedulesTable(schedules: ScheduleRow[]): string {
  if (schedules.length === 0) return '';
  const rows = schedules
    .map(
      (s) => `<tr class="schedule" data-schedule="${escape(s.name)}"><td>${escape(s.name)}</td><td>${escape(s.family)}</td><td>${escape(s.when)}</td>
  <td>${s.next ? escape(s.next.toISOString()) : ''}</td><td class="last-firing">${escape(firingText(s.lastFiring))}</td></tr>`,
    )
    .join('\n');
  return `<h2>Schedules</h2>
<table><thead><tr><th>scheduler</th><th>family</th><th>when</th><th>next</th><th>last firing</th></tr></thead>
<tbody>
${rows}
</tbody></table>`;
}
