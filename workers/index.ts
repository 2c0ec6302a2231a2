// Worker process entry point for process managers and containers:
//   node --import tsx workers/index.ts
// Families from TYS_FAMILIES (comma-separated, default all), concurrency from
// TYS_CONCURRENCY (default each family's own).
import { main } from '../src/cli/main.js';

const args = ['worker'];
if (process.env.TYS_FAMILIES) args.push('--families', process.env.TYS_FAMILIES);
if (process.env.TYS_CONCURRENCY) args.push('--concurrency', process.env.TYS_CONCURRENCY);
process.exit(await main(args));
