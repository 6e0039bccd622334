import { defineConfig } from 'vitest/config';

// `npm run test:chaos`: the chaos test alone, longer, writing its counts for the README.
export default defineConfig({
  test: {
    include: ['test/chaos/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    env: {
      CHAOS_SECONDS: process.env.CHAOS_SECONDS ?? '60',
      CHAOS_OUT: process.env.CHAOS_OUT ?? 'benchmark/results/chaos.json',
      ASYNC_CHAOS_OUT: process.env.ASYNC_CHAOS_OUT ?? 'benchmark/results/async-chaos.json',
      CHAOS_FAILOVER_OUT: process.env.CHAOS_FAILOVER_OUT ?? 'benchmark/results/failover-chaos.json',
    },
  },
});
