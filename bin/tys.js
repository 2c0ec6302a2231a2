#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx: no build step to forget.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const status = await main(process.argv.slice(2));
process.exit(status);
