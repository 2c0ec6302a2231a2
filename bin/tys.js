#!/usr/bin/env node
import { heapLimitFlags, relaunch } from './heap-limit.js';

const flags = heapLimitFlags(process.argv.slice(2), process.execArgv, process.env.NODE_OPTIONS);
if (flags) process.exit(await relaunch(flags));

// The CLI runs the TypeScript sources through tsx: no build step to forget.
const { register } = await import('tsx/esm/api');
register();
const { main } = await import('../src/cli/main.ts');
const status = await main(process.argv.slice(2));
process.exit(status);
