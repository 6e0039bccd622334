import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startStack } from '../src/stack.js';
import { summariseLogFile } from '../src/summary.js';

describe('startStack', () => {
  let dir: string;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts collector, dispatcher and workers as processes, ships worker logs, and stops them all', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sr-stack-'));
    const stack = await startStack({
      modelRepository: dir,
      dispatcherChecksRepository: false,
      workers: 2,
      tritonUrl: 'none',
      logDir: join(dir, 'logs'),
      output: 'files',
    });
    try {
      for (const i of [1, 2, 3]) {
        const res = await fetch(`${stack.dispatcherUrl}/run-task`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            task_id: `s${i}`,
            task_type: 'echo',
            label: 'echo',
            parameters_json: `{"i":${i}}`,
          }),
        });
        expect(res.status).toBe(200);
        expect(((await res.json()) as { result: unknown }).result).toEqual({ echo: { i } });
      }
    } finally {
      await stack.close();
    }
    await stack.close(); // safe twice
    for (const pid of [stack.pids.dispatcher, stack.pids.collector, ...stack.pids.workers]) {
      expect(() => process.kill(pid, 0)).toThrow();
    }
    // The collector flushed on stop: every worker's task_completed is in the run's file.
    const summary = await summariseLogFile(stack.logFile);
    expect(summary.tasksCompleted).toBe(3);
    expect(existsSync(join(dir, 'logs', stack.runId, 'dispatcher.log'))).toBe(true);
    expect(await readFile(join(dir, 'logs', stack.runId, 'worker-1.log'), 'utf8')).toContain(
      '"service":"worker"',
    );
  }, 60_000);
});
