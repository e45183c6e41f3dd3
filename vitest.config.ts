import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 180_000,
    // Integration tests start real servers; two cores run at most two files at once.
    maxWorkers: 2,
    pool: 'forks',
  },
});
