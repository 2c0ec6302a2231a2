// Plain JavaScript on purpose: the launcher decides before it loads tsx,
// which alone would add some 30 MB to a process that only waits.

/**
 * Rows per source page of `tys enqueue` when --page-size is not given: the
 * launcher sizes the heap by it before anything loads, and the producer
 * reads its default from here (the build compiles this file beside it).
 */
export const DEFAULT_PAGE_SIZE = 1_000;

/**
 * Heap cap, in MB, of `tys enqueue` reading pages of `pageSize` rows. The
 * producer streams, so what it holds at once is about one page (a few KB
 * per row in flight) over a fixed 96 MB that covers the loaded modules with
 * room to spare.
 * @param {number} pageSize
 * @returns {number}
 */
export function enqueueHeapLimitMb(pageSize) {
  return 96 + 8 * Math.ceil(pageSize / 1_000);
}

/**
 * The node flags `tys` must run again with, or null to go on as it is.
 *
 * Left alone, V8 lets the enqueue's heap fill with garbage before it
 * collects, half again the memory it needs at the same speed (figures:
 * docs/journal). Node cannot lower its heap limit once running, hence a new
 * process. A limit the user set (node flags or NODE_OPTIONS) is kept.
 * @param {string[]} argv the command line after `tys`
 * @param {string[]} execArgv
 * @param {string} [nodeOptions]
 * @returns {string[] | null}
 */
export function heapLimitFlags(argv, execArgv, nodeOptions = '') {
  if (argv[0] !== 'enqueue') return null;
  const given = [...execArgv, ...nodeOptions.split(/\s+/)];
  if (given.some((flag) => /^--max[-_]old[-_]space[-_]size/.test(flag))) return null;
  return [`--max-old-space-size=${enqueueHeapLimitMb(pageSizeOf(argv))}`];
}

/**
 * The --page-size of the command line; a bad value is the command's to refuse, with its own message.
 * @param {string[]} argv
 */
function pageSizeOf(argv) {
  const at = argv.findIndex((arg) => arg === '--page-size' || arg.startsWith('--page-size='));
  const raw = at < 0 ? undefined : argv[at]?.includes('=') ? argv[at]?.split('=')[1] : argv[at + 1];
  const value = Number(raw);
  return Number.isInteger(value) && value > 0 ? value : DEFAULT_PAGE_SIZE;
}
