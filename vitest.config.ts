import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // End-to-end tests start real processes; keep files isolated but not all at once on 2 cores.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default', './test/reporters/summary-line.ts'],
  },
});
