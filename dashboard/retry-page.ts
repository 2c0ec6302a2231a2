import type { ReasonCount, RetryPreview } from '../src/fleet/runs/outcomes.js';
import { describeScope, type RetryScope } from '../src/fleet/scope.js';
import { count, escape } from './html.js';

/**
 * What a retry by a filter would take up, for the operator to confirm: the
 * count, by reason, and a few rows. The confirming form carries the count
 * it showed; should the count have changed by then, the server asks again.
 */
export function retryConfirmPage(scope: RetryScope, preview: RetryPreview, counts: ReasonCount[]): string {
  const what = escape(describeScope(scope));
  const earlier =
    preview.alreadyRetried > 0
      ? `<p class="muted">${count(preview.alreadyRetried)} matching job(s) were taken up already, by ${preview.retriedBy.map(escape).join(', ')}: left out.</p>`
      : '';
  let body: string;
  if (preview.jobs === 0) body = `<p id="nothing">Nothing to retry: no job is left of ${what}.</p>${earlier}`;
  else {
    const rows = counts.map((c) => `<tr><td class="num">${count(c.jobs)}</td><td>${escape(c.outcome)}</td><td>${escape(c.reason)}</td></tr>`).join('\n');
    const more = preview.jobs > preview.sample.length ? ` and ${count(preview.jobs - preview.sample.length)} more` : '';
    body = `<p>Retry <strong id="count">${count(preview.jobs)}</strong> job(s): ${what}, as a new run.</p>
<table><thead><tr><th class="num">jobs</th><th>outcome</th><th>reason</th></tr></thead><tbody>
${rows}
</tbody></table>
<p>Rows: ${preview.sample.map((key) => `<code>${escape(key)}</code>`).join(', ')}${more}</p>${earlier}
<form method="post" id="confirm">
<input type="hidden" name="outcome" value="${escape(scope.outcome ?? '')}"><input type="hidden" name="reason" value="${escape(scope.reason ?? '')}">
<input type="hidden" name="confirm" value="${preview.jobs}">
<label>Note <input name="note" maxlength="500" placeholder="why, for the run's history"></label>
<button type="submit">retry ${count(preview.jobs)} job(s)</button></form>`;
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tys: retry jobs of ${escape(scope.runId)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: system-ui, sans-serif; margin: 1rem 1.25rem; color: #222; } table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .3rem .45rem; border-bottom: 1px solid #ddd; text-align: left; } .num { text-align: right; } .muted { color: #666; }
form { margin-top: 1rem; } label { margin-right: .5rem; }
</style></head>
<body><h1>Retry jobs of ${escape(scope.runId)}</h1>
${body}
<p><a href="../../runs">back to the runs</a></p>
</body></html>`;
}
