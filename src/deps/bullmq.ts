import { createRequire } from 'node:module';
import type * as BullMQ from 'bullmq';

/**
 * BullMQ's classes, loaded with require(). Imported as ESM, a CommonJS
 * package is first lexed for its export names, every re-export followed:
 * BullMQ's 170 files and ioredis' cost each `tys` command and worker some
 * 400 ms of CPU at start (bullmq, ioredis and pg: 600-790 ms of CPU
 * imported, 340-510 ms required, on a 2-core machine). Types come from
 * `import type { ... } from 'bullmq'`, which loads nothing.
 */
export const bullmq = createRequire(import.meta.url)('bullmq') as typeof BullMQ;
