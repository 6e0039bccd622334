/**
 * End to end, as a user runs it: the real dispatcher, real workers over WebSocket + protobuf, each
 * with its embedded model server running real ONNX inference on generated models.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDispatcher, type DispatcherHandle } from '@smart-routing/dispatcher';
import { generateDemoModels } from '@smart-routing/model-repo';
import { startWorker, type WorkerHandle } from '@smart-routing/worker';
import { promSum } from '@smart-routing/benchmark';

const silent = pino({ level: 'silent' });
let dir: string;
let models: string;
let dispatcher: DispatcherHandle;
const workers: WorkerHandle[] = [];

interface TaskReply {
  task_id: string;
  worker_id: string;
  label_miss: boolean;
  attempts: number;
  result: { embeddings: number[][]; dimensions: number };
}

async function runTask(
  taskId: string,
  label: string,
  texts: string[] = ['hello world'],
): Promise<{ status: number; body: TaskReply & { error?: { code: string; message: string } } }> {
  const res = await fetch(`${dispatcher.url}/run-task`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      task_id: taskId,
      task_type: 'embed_texts',
      label,
      parameters_json: JSON.stringify({ texts }),
    }),
  });
  return {
    status: res.status,
    body: (await res.json()) as TaskReply & { error?: { code: string; message: string } },
  };
}

// Generous: a worker process starting its model server takes many seconds when both cores are busy.
async function until(check: () => Promise<boolean>, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(50);
  }
}

const labels = async (): Promise<Record<string, string[]>> =>
  (await (await fetch(`${dispatcher.url}/labels`)).json()) as Record<string, string[]>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sr-e2e-'));
  models = join(dir, 'models');
  await generateDemoModels({ dir: models, count: 3, sizeMb: 4 });
  dispatcher = await startDispatcher({
    port: 0,
    host: '127.0.0.1',
    policy: 'affinity',
    modelRepository: models,
    logger: silent,
  });
  for (const id of ['e2e-a', 'e2e-b']) {
    workers.push(
      await startWorker({
        dispatcherUrl: dispatcher.url,
        workerId: id,
        maxLabels: 1,
        slots: 1,
        modelRepository: models,
        logger: silent,
      }),
    );
  }
  await until(
    async () => ((await (await fetch(`${dispatcher.url}/workers`)).json()) as unknown[]).length === 2,
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await dispatcher?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('dispatcher + workers + embedded model servers', () => {
  it('returns unit-norm embeddings, then serves the repeat from the holder without a load', async () => {
    const first = await runTask('e2e-1', 'label-1');
    expect(first.status).toBe(200);
    expect(first.body.label_miss).toBe(true);
    const [vec] = first.body.result.embeddings;
    expect(vec).toHaveLength(first.body.result.dimensions);
    expect(Math.hypot(...vec!)).toBeCloseTo(1, 5);

    expect((await labels())['label-1']).toEqual([first.body.worker_id]);

    const again = await runTask('e2e-2', 'label-1');
    expect(again.status).toBe(200);
    expect(again.body.worker_id).toBe(first.body.worker_id);
    expect(again.body.label_miss).toBe(false);
    expect(again.body.result.embeddings[0]).toEqual(vec);

    const metrics = await (await fetch(`${dispatcher.url}/metrics`)).text();
    expect(promSum(metrics, 'smart_routing_label_hits_total')).toBeGreaterThanOrEqual(1);
    expect(promSum(metrics, 'smart_routing_label_misses_total')).toBeGreaterThanOrEqual(1);
  });

  it("loads a second label on the other, idle worker and evicts on the dispatcher's order", async () => {
    const holder = (await labels())['label-1']![0];
    const second = await runTask('e2e-3', 'label-2');
    expect(second.status).toBe(200);
    expect(second.body.worker_id).not.toBe(holder);
    // Both workers are full (one label each): label-3 evicts the label that costs least to lose
    // (by request rate x measured load time), on the worker the dispatcher named.
    const third = await runTask('e2e-4', 'label-3');
    expect(third.status).toBe(200);
    await until(async () => {
      const now = await labels();
      return (
        (now['label-3'] ?? []).length === 1 &&
        (now['label-1'] ?? []).length + (now['label-2'] ?? []).length === 1
      );
    });
    const gone = ((await labels())['label-1'] ?? []).length === 0 ? 'label-1' : 'label-2';
    expect(third.body.worker_id).toBe(gone === 'label-1' ? holder : second.body.worker_id);
  });

  it('answers 404 for a label the repository lacks and 400 for a bad body, and keeps serving', async () => {
    const missing = await runTask('e2e-5', 'no-such-model');
    expect(missing.status).toBe(404);
    expect(missing.body.error?.code).toBe('label_not_found');
    const bad = await fetch(`${dispatcher.url}/run-task`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"task_id": 5',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBeTruthy();
    expect((await runTask('e2e-6', 'label-2')).status).toBe(200);
  });
});

describe('a worker process killed mid-task', () => {
  it('does not lose the task: it completes on another worker', async () => {
    // A worker process with a slow-loading model, killed while it loads the task's label.
    const slowModels = join(dir, 'slow');
    await generateDemoModels({ dir: slowModels, count: 1, sizeMb: 160 });
    const local = await startDispatcher({ port: 0, host: '127.0.0.1', logger: silent, maxAttempts: 3 });
    const cli = join(dirname(fileURLToPath(import.meta.resolve('@smart-routing/worker'))), 'cli.js');
    const victim: ChildProcess = spawn(process.execPath, [cli], {
      env: {
        ...process.env,
        DISPATCHER_URL: local.url,
        WORKER_ID: 'victim',
        MODEL_REPOSITORY: slowModels,
        LOG_LEVEL: 'silent',
      },
      stdio: 'ignore',
    });
    let rescuer: WorkerHandle | undefined;
    try {
      await until(
        async () => ((await (await fetch(`${local.url}/workers`)).json()) as unknown[]).length === 1,
      );
      const pending = fetch(`${local.url}/run-task`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          task_id: 'kill-1',
          task_type: 'embed_texts',
          label: 'label-1',
          parameters_json: '{"texts":["survive"]}',
        }),
      });
      // Wait until the victim holds the task (it is loading the label), then kill it.
      await until(async () => {
        const list = (await (await fetch(`${local.url}/workers`)).json()) as {
          id: string;
          in_flight: number;
        }[];
        return list.some((w) => w.id === 'victim' && w.in_flight === 1);
      });
      victim.kill('SIGKILL');
      await once(victim, 'exit');
      rescuer = await startWorker({
        dispatcherUrl: local.url,
        workerId: 'rescuer',
        modelRepository: slowModels,
        logger: silent,
      });
      const res = await pending;
      const body = (await res.json()) as TaskReply;
      expect(res.status).toBe(200);
      expect(body.worker_id).toBe('rescuer');
      expect(body.attempts).toBe(2);
      expect(body.result.embeddings).toHaveLength(1);
    } finally {
      victim.kill('SIGKILL');
      await rescuer?.close();
      await local.close();
    }
  }, 120_000);
});
