import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // Probes the test PostgreSQL once (test/helpers/pg.ts).
    globalSetup: ['test/helpers/pg-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores on CI: keep forks few so spawned binaries and servers are not starved.
    pool: 'forks',
    maxWorkers: 2,
  },
});
