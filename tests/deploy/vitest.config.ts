import { defineConfig } from 'vitest/config';

// The deployment test alone (npm run test:deploy): one file, its steps in order, on a Docker engine.
export default defineConfig({
  test: {
    include: ['tests/deploy/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 1_200_000,
  },
});
