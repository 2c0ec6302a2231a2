#!/usr/bin/env node
// Compiles the fleet's TypeScript into dist/ (npm install, npm test, the
// image build), so that `tys` and the workers start without compiling.
// Without TypeScript (a production install), it says so and leaves the CLI
// to run the sources through tsx, as it does whenever they are newer.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) {
  console.log('compile: TypeScript is not installed; tys will run the sources through tsx');
  process.exit(0);
}
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
process.exit(result.status ?? 1);
