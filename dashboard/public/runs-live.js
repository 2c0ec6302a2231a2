// The runs page's script: brings the page up to date in place every few
// seconds, from the same server-drawn HTML the page was made of (/runs/live),
// instead of reloading the document. Only the cells that changed are
// replaced, so a scroll position, a selection in an unchanged cell and an
// open "details" stay as the operator left them.

const live = /** @type {HTMLElement} */ (document.getElementById('live'));
const updated = /** @type {HTMLElement} */ (document.getElementById('updated'));
const everyMs = Number(live.dataset.everyMs) || 5_000;
let lastSuccess = Date.now();

/**
 * Makes `cell` show what `next` shows, keeping an open "details" open.
 * @param {HTMLTableCellElement} cell
 * @param {HTMLTableCellElement} next
 */
function patchCell(cell, next) {
  if (cell.className !== next.className) cell.className = next.className;
  if (cell.title !== next.title) cell.title = next.title;
  if (cell.innerHTML === next.innerHTML) return;
  const wasOpen = cell.querySelector('details')?.open;
  cell.innerHTML = next.innerHTML;
  const details = cell.querySelector('details');
  if (details && wasOpen) details.open = true;
}

/**
 * Makes the rows of `body` those of `next`, in its order, matched by id.
 * @param {HTMLTableSectionElement} body
 * @param {HTMLTableSectionElement} next
 */
function patchRows(body, next) {
  const current = new Map([...body.rows].map((row) => [row.id, row]));
  /** @type {Element | null} */
  let place = body.firstElementChild;
  for (const nextRow of [...next.rows]) {
    let row = current.get(nextRow.id);
    if (row && row.cells.length === nextRow.cells.length) {
      current.delete(nextRow.id);
      [...row.cells].forEach((cell, i) => patchCell(cell, /** @type {HTMLTableCellElement} */ (nextRow.cells[i])));
    } else row = /** @type {HTMLTableRowElement} */ (document.importNode(nextRow, true));
    if (row !== place) body.insertBefore(row, place);
    place = row.nextElementSibling;
  }
  for (const row of current.values()) row.remove();
}

/** @param {Document} next */
function patch(next) {
  const nextLive = next.body;
  const tables = [...nextLive.querySelectorAll('table[id]')];
  const sameShape =
    tables.length === live.querySelectorAll('table[id]').length && tables.every((table) => document.getElementById(table.id)?.tagName === 'TABLE');
  if (!sameShape) {
    live.innerHTML = nextLive.innerHTML;
    return;
  }
  for (const table of /** @type {HTMLTableElement[]} */ (tables)) {
    const mine = /** @type {HTMLTableElement} */ (document.getElementById(table.id));
    if (mine.tHead && table.tHead && mine.tHead.innerHTML !== table.tHead.innerHTML) mine.tHead.innerHTML = table.tHead.innerHTML;
    patchRows(/** @type {HTMLTableSectionElement} */ (mine.tBodies[0]), /** @type {HTMLTableSectionElement} */ (table.tBodies[0]));
  }
}

async function refresh() {
  try {
    const response = await fetch('runs/live', { cache: 'no-store', credentials: 'same-origin' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    patch(new DOMParser().parseFromString(await response.text(), 'text/html'));
    lastSuccess = Date.now();
    updated.textContent = `updated ${new Date(lastSuccess).toLocaleTimeString()}`;
  } catch (error) {
    const seconds = Math.round((Date.now() - lastSuccess) / 1_000);
    updated.textContent = `not updated for ${seconds} s (${error instanceof Error ? error.message : String(error)})`;
  } finally {
    setTimeout(() => void refresh(), everyMs);
  }
}

// A run id's copy button: the full id, as the commands take it.
live.addEventListener('click', (event) => {
  const button = event.target instanceof HTMLElement ? event.target.closest('button.copy') : null;
  if (!(button instanceof HTMLButtonElement) || !button.dataset.copy) return;
  void navigator.clipboard.writeText(button.dataset.copy).then(
    () => (button.textContent = 'copied'),
    () => (button.textContent = 'copy failed'),
  );
});

setTimeout(() => void refresh(), everyMs);
