// The dashboard process, for process managers and containers (the image's
// dashboard service): node dist/dashboard/index.js. `tys dashboard` runs the
// same server with flags over these settings; see `tys dashboard --help`.
import { loadConfig } from '../src/config/env.js';
import { families } from '../src/families/index.js';
import { runMain } from '../src/process-exit.js';
import { serveDashboard } from './serve.js';
import { dashboardSettings } from './settings.js';

await runMain(async () => {
  await serveDashboard(loadConfig(), families, dashboardSettings(), { announce: (line) => process.stdout.write(`${line}\n`) });
  return 0;
});
