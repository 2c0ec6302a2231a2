import type { RunAction } from '../src/fleet/run-control.js';
import type { RunView } from '../src/fleet/runs.js';

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function scopeText(scope: RunView['scope']): string {
  switch (scope.kind) {
    case 'all':
      return 'all';
    case 'investments':
      return `${scope.ids.length} investment(s)`;
    default:
      return `${scope.kind} ${scope.id}`;
  }
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
export function runsPage(runs: RunView[], options: { boardPath: string; canControl: boolean; throttled?: Record<string, string> }): string {
  const { boardPath, canControl } = options;
  const throttled = options.throttled ?? {};
  const now = Date.now();
  const rows = runs
    .map((run) => {
      const done = run.completed + run.skipped + run.failed;
      const percent = run.total === 0 ? 100 : Math.floor((100 * done) / run.total);
      const elapsedS = Math.max(0, ((run.finishedAt?.getTime() ?? now) - run.startedAt.getTime()) / 1000);
      const rate = elapsedS > 0 ? done / elapsedS : 0;
      const eta = !run.finishedAt && run.enqueued && rate > 0 ? `${Math.ceil((run.total - done) / rate)} s` : '';
      const failedLink = run.failed > 0 ? ` <a href="${escape(boardPath)}/queue/${encodeURIComponent(run.family)}?status=failed">jobs</a>` : '';
      return `<tr class="run" data-run="${escape(run.id)}">
  <td><code>${escape(run.id)}</code></td><td>${escape(run.family)}</td><td>${escape(scopeText(run.scope))}</td><td class="origin">${escape(run.origin ?? '')}</td>
  <td>${escape(run.startedAt.toISOString())}</td><td class="status status-${escape(run.status.toLowerCase())}">${escape(run.status)}</td>
  <td><progress max="100" value="${percent}"></progress> ${percent}%${
    !run.finishedAt && throttled[run.family] ? `<div class="throttle">throttled: ${escape(throttled[run.family]!)}</div>` : ''
  }</td>
  <td class="num">${run.total}</td><td class="num">${run.completed}</td><td class="num">${run.skipped}</td><td class="num failed">${run.failed}${failedLink}</td>
  <td class="num">${Math.round(elapsedS)} s</td><td class="num rate">${Math.round(rate)}/s</td><td class="num eta">${eta}</td>
  <td>${run.finishedAt ? escape(run.finishedAt.toISOString()) : ''}</td>${canControl ? `<td class="controls">${controls(run)}</td>` : ''}</tr>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tys runs</title>
<meta http-equiv="refresh" content="5">
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; width: 100%; } th, td { padding: .4rem .6rem; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; } td.controls form { display: inline; margin-right: .3rem; } .throttle { color: #a60; font-size: .85em; } .failed { color: #b00; } .status-completed { color: #070; } .status-failed, .status-interrupted { color: #b00; }
</style></head>
<body><h1>Runs</h1><p><a href="${escape(boardPath)}">Queues and jobs</a> · refreshes every 5 s · <a href="api/runs">JSON</a></p>
<table><thead><tr><th>run</th><th>family</th><th>scope</th><th>origin</th><th>started</th><th>status</th><th>progress</th>
<th>total</th><th>completed</th><th>skipped</th><th>failed</th><th>duration</th><th>rate</th><th>ETA</th><th>finished</th>${canControl ? '<th></th>' : ''}</tr></thead>
<tbody>
${rows || '<tr><td colspan="15">no runs yet</td></tr>'}
</tbody></table></body></html>`;
}
