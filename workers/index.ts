// The worker process, for process managers and containers (the image's
// worker service): node dist/workers/index.js. `tys worker` runs the same
// process with flags over these settings; see `tys worker --help`.
import { loadConfig } from '../src/config/env.js';
import { families } from '../src/families/index.js';
import { runMain } from '../src/process-exit.js';
import { runWorkerProcess } from './process.js';
import { workerSettings } from './settings.js';

await runMain(async () => {
  const config = loadConfig();
  await runWorkerProcess(config, { ...workerSettings(), knownFamilies: families });
  return 0;
});
