import { createRequire } from 'node:module';
import type * as IORedis from 'ioredis';

/** ioredis' classes, loaded with require() for the reason src/deps/bullmq.ts gives. */
export const ioredis = createRequire(import.meta.url)('ioredis') as typeof IORedis;
