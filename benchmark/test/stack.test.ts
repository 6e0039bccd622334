import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateDemoModels } from '@smart-routing/model-repo';
import { StackStartError, startStack, type StackOptions } from '../src/stack.js';
import { summariseLogFile } from '../src/summary.js';

/** Options for a stack of one echo worker without a model server, its logs under `repo`, plus `extra`. */
const echoStack = (repo: string, extra: Partial<StackOptions> = {}): StackOptions => ({
  modelRepository: repo,
  dispatcherChecksRepository: false,
  workers: 1,
  tritonUrl: 'none',
  logDir: join(repo, 'logs'),
  ...extra,
});

describe('startStack', () => {
  let dir: string;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts collector, dispatcher and workers as processes, ships worker logs, and stops them all', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sr-stack-'));
    const stack = await startStack(echoStack(dir, { workers: 2, output: 'files' }));
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

  // Regression: the throughput benchmark runs its stack at LOG_LEVEL=warn, where no service logs
  // its listening event; the stack waited for those events and never became ready.
  it('becomes ready at log level warn, from its HTTP probes', async () => {
    const repo = await mkdtemp(join(tmpdir(), 'sr-stack-warn-'));
    try {
      const stack = await startStack(echoStack(repo, { logLevel: 'warn', readyTimeoutMs: 30_000 }));
      try {
        const res = await fetch(`${stack.dispatcherUrl}/workers`);
        expect(((await res.json()) as { id: string }[]).map((w) => w.id)).toEqual(['worker-1']);
      } finally {
        await stack.close();
      }
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  }, 60_000);

  // Regression (issue 11, item 8): a second stack on taken ports printed "ready", its probes
  // answered by the first stack's services while its own had died.
  it('fails, with the reason from its log, when its ports are taken by another stack', async () => {
    const repo = await mkdtemp(join(tmpdir(), 'sr-stack-ports-'));
    const first = await startStack(echoStack(repo));
    try {
      const collectorPort = Number(new URL(first.collectorUrl).port);
      const dispatcherPort = Number(new URL(first.dispatcherUrl).port);
      const second = startStack(echoStack(repo, { collectorPort, dispatcherPort }));
      const err = (await second.catch((e: unknown) => e)) as StackStartError;
      expect(err).toBeInstanceOf(StackStartError);
      expect(err.service).toBe('log-collector');
      expect(err.message).toMatch(/EADDRINUSE/);
      // The first stack is untouched.
      expect((await fetch(`${first.dispatcherUrl}/health`)).status).toBe(200);
    } finally {
      await first.close();
      await rm(repo, { recursive: true, force: true });
    }
  }, 60_000);

  // Regression (issue 11, item 8): a worker that died at start showed only after the 60 s timeout.
  it('fails as soon as a worker exits during start-up, with its reason', async () => {
    const repo = await mkdtemp(join(tmpdir(), 'sr-stack-worker-'));
    try {
      const err = (await startStack(
        echoStack(repo, {
          workers: 2,
          workerEnv: { WORKER_MAX_LABELS: 'lots' },
          // Longer than the test's own timeout: only an early failure passes.
          readyTimeoutMs: 120_000,
        }),
      ).catch((e: unknown) => e)) as StackStartError;
      expect(err).toBeInstanceOf(StackStartError);
      expect(err.service).toMatch(/^worker-[12]$/);
      expect(err.message).toMatch(/exited with code 2/);
      expect(err.message).toMatch(/WORKER_MAX_LABELS/);
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  }, 30_000);

  // Regression (issue 11, item 8): env vars leaked from the launcher into every child, so a stray
  // PORT moved the dispatcher and broke the model servers; the readiness probe sent no API key.
  it('passes each child only its own env, and becomes ready with API_KEYS set', async () => {
    const repo = await mkdtemp(join(tmpdir(), 'sr-stack-env-'));
    const saved = process.env.PORT;
    process.env.PORT = 'abc';
    try {
      const stack = await startStack(echoStack(repo, { apiKeys: ['key-1'] }));
      try {
        const env = await readFile(`/proc/${stack.pids.dispatcher}/environ`, 'utf8');
        const names = env
          .split('\0')
          .filter(Boolean)
          .map((kv) => kv.slice(0, kv.indexOf('=')));
        expect(names).toContain('API_KEYS');
        expect(names).toContain('WORKER_TOKEN');
        expect(env).not.toContain('PORT=abc');
        // Nothing of the test runner's own environment (vitest sets VITEST in its workers).
        expect(names.filter((n) => n.startsWith('VITEST'))).toEqual([]);
        const task = (key?: string) =>
          fetch(`${stack.dispatcherUrl}/run-task`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              ...(key ? { authorization: `Bearer ${key}` } : {}),
            },
            body: JSON.stringify({
              task_id: `k-${key}`,
              task_type: 'echo',
              label: 'echo',
              parameters_json: '{}',
            }),
          });
        expect((await task()).status).toBe(401);
        expect((await task('key-1')).status).toBe(200);
      } finally {
        await stack.close();
      }
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
      await rm(repo, { recursive: true, force: true });
    }
  }, 60_000);

  // The live benchmark's --memory-budget-mb: the budget reaches each worker (WORKER_MEMORY_BUDGET_BYTES,
  // then Hello.memory_budget_bytes) and binds before the label count does.
  it('passes memoryBudgetBytes to every worker, where it limits the labels by footprint', async () => {
    const repo = await mkdtemp(join(tmpdir(), 'sr-stack-memory-'));
    const MIB = 1024 * 1024;
    await generateDemoModels({ dir: repo, count: 2, sizeMb: 2, sizesMb: [2, 2] });
    const stack = await startStack({
      modelRepository: repo,
      workers: 1,
      labelCapacity: 4, // room for both by count; 3 MiB holds one 2 MiB model
      memoryBudgetBytes: 3 * MIB,
      logDir: join(repo, 'logs'),
    });
    try {
      const env = await readFile(`/proc/${stack.pids.workers[0]}/environ`, 'utf8');
      expect(env.split('\0')).toContain(`WORKER_MEMORY_BUDGET_BYTES=${3 * MIB}`);
      for (const label of ['label-1', 'label-2']) {
        const res = await fetch(`${stack.dispatcherUrl}/run-task`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            task_id: `m-${label}`,
            task_type: 'embed_texts',
            label,
            parameters_json: JSON.stringify({ texts: ['hello'] }),
          }),
        });
        expect(res.status, await res.clone().text()).toBe(200);
      }
      const workers = (await (await fetch(`${stack.dispatcherUrl}/workers`)).json()) as {
        labels: string[];
      }[];
      expect(workers[0]!.labels).toEqual(['label-2']);
    } finally {
      await stack.close();
      await rm(repo, { recursive: true, force: true });
    }
  }, 90_000);

  it('reports a service that exits after start-up through `failed`', async () => {
    const repo = await mkdtemp(join(tmpdir(), 'sr-stack-failed-'));
    const stack = await startStack(echoStack(repo));
    try {
      process.kill(stack.pids.workers[0]!, 'SIGKILL');
      const failure = await stack.failed;
      expect(failure.service).toBe('worker-1');
      expect(failure.signal).toBe('SIGKILL');
      expect(failure.lastLines.length).toBeGreaterThan(0);
    } finally {
      await stack.close();
      await rm(repo, { recursive: true, force: true });
    }
  }, 60_000);
});
