import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Needs a Docker engine and minutes of image builds: npm run test:deploy.
    exclude: [...configDefaults.exclude, 'tests/deploy/**'],
    globalSetup: ['tests/support/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Each file has its own database and queue prefix, so files run in parallel.
    fileParallelism: true,
    // Files run in a new order each time: none may lean on another having run first.
    sequence: { shuffle: { files: true, tests: false } },
  },
});
