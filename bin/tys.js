#!/usr/bin/env node
import { pathToFileURL } from 'node:url';
import { compiledModule } from './compiled.js';
import { heapLimitFlags, relaunch } from './heap-limit.js';

const flags = heapLimitFlags(process.argv.slice(2), process.execArgv, process.env.NODE_OPTIONS);
if (flags) process.exit(await relaunch(flags));

// The build in dist/ when it is current (npm install and npm test make it);
// otherwise the TypeScript sources through tsx, so that an edit is never
// run stale.
const compiled = compiledModule('src/cli/main.ts');
let main;
if (compiled) ({ main } = await import(pathToFileURL(compiled).href));
else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
const status = await main(process.argv.slice(2));
process.exit(status);
