#!/usr/bin/env node
import { pathToFileURL } from 'node:url';
import { compiledModule } from './compiled.js';
import { heapLimitFlags } from './heap-limit.js';
import { niceFromEnv, niceSession, niceThreads } from './priority.js';
import { dieWithLauncher, relaunch } from './relaunch.js';

/** @typedef {{ main: (argv: string[]) => Promise<number> }} Cli */

dieWithLauncher();

// TYS_NICE before anything else: a short command's start (modules, and the
// relaunch below) is most of its CPU.
const nice = niceFromEnv(process.env.TYS_NICE);
if (nice !== null) niceThreads(nice);
const newSession = nice !== null && niceSession(nice);

const flags = heapLimitFlags(process.argv.slice(2), process.execArgv, process.env.NODE_OPTIONS);
if (flags || newSession) process.exit(await relaunch({ flags: flags ?? [], newSession }));

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
