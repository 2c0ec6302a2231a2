import { createRequire } from 'node:module';
import type * as BullMQ from 'bullmq';

/**
 * BullMQ's classes, loaded with require(). Imported as ESM, a CommonJS
 * package is first lexed for its export names, every re-export followed:
 * BullMQ's 170 files and ioredis' cost each `tys` command and worker about
 * twice the start-up CPU that require() does (figures: docs/journal). Types come from
 * `import type { ... } from 'bullmq'`, which loads nothing.
 */
export const bullmq = createRequire(import.meta.url)('bullmq') as typeof BullMQ;
