#!/usr/bin/env node
import { existsSync, readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { pathToFileURL } from 'node:url';
import { compiledModule } from './compiled.js';
import { heapLimitFlags, relaunch } from './heap-limit.js';

/** @typedef {{ main: (argv: string[]) => Promise<number> }} Cli */

// TYS_NICE before anything else: a short command's start (modules, and the
// relaunch below) is most of its CPU. A malformed value is left to the
// configuration, which refuses it with exit status 2. Every thread, since
// Linux keeps a niceness per thread and Node's helper threads are already
// running (src/process-priority.ts says more).
const nice = Number(process.env.TYS_NICE);
if (Number.isInteger(nice) && nice <= 19) {
  const threads = existsSync('/proc/self/task') ? readdirSync('/proc/self/task').map(Number) : [0];
  for (const thread of threads) {
    try {
      if (nice > getPriority(thread)) setPriority(thread, nice);
    } catch {
      // The thread ended between the listing and here.
    }
  }
}

const flags = heapLimitFlags(process.argv.slice(2), process.execArgv, process.env.NODE_OPTIONS);
if (flags) process.exit(await relaunch(flags));

// The build in dist/ when it is current (npm install and npm test make it);
// otherwise the TypeScript sources through tsx, so that an edit is never
// run stale.
const compiled = compiledModule('src/cli/main.ts');
/** @type {Cli} */
let cli;
if (compiled) cli = /** @type {Cli} */ (await import(pathToFileURL(compiled).href));
else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = /** @type {Cli} */ (await import(new URL('../src/cli/main.ts', import.meta.url).href));
}
process.exit(await cli.main(process.argv.slice(2)));
