import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['*/test/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', '**/*.chaos.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: real processes and ONNX sessions contend, so keep files from piling up.
    fileParallelism: true,
    maxWorkers: 2,
    // Tests that load onnxruntime-node in-process: no telemetry files (/tmp/mat-debug-*, ~/.cache/Microsoft).
    env: { ORT_DISABLE_TELEMETRY: '1' },
    // expect.poll waits for a condition; its 1 s default is too tight when another process holds a core.
    expect: { poll: { timeout: 20_000, interval: 20 } },
  },
});
