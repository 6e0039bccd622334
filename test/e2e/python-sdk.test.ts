// The Python worker SDK (sdk/python/) against a live dispatcher: a real python3 process, real
// WebSocket and protobuf frames, nothing of ours in TypeScript on the worker side.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startDispatcher, type DispatcherHandle } from '@smart-routing/dispatcher';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SDK_DIR = fileURLToPath(new URL('../../sdk/python/', import.meta.url));
// Debian's python3 carries python3-protobuf and python3-websockets (installed by .ci/run).
const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import google.protobuf, websockets'], { encoding: 'utf8' });
const missing = probe.status === 0 ? undefined : `${PYTHON} lacks python3-protobuf or python3-websockets`;
if (missing) console.warn(`python SDK test skipped: ${missing}`);

let dispatcher: DispatcherHandle;
let child: ChildProcess;
let stderr = '';

interface Answer {
  task_id?: string;
  status?: string;
  worker_id?: string;
  label_miss?: boolean;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
}

async function runTask(body: Record<string, unknown>): Promise<{ status: number; body: Answer }> {
  const res = await fetch(`${dispatcher.url}/run-task`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

describe.skipIf(missing !== undefined)('Python worker SDK', () => {
  beforeAll(async () => {
    dispatcher = await startDispatcher({ port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) });
    child = spawn(PYTHON, ['example_worker.py', dispatcher.url, 'py-1'], {
      cwd: SDK_DIR,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    // The worker is in the picture once the dispatcher lists it (its Hello was welcomed).
    for (;;) {
      const workers = (await (await fetch(`${dispatcher.url}/workers`)).json()) as { id: string }[];
      if (workers.some((w) => w.id === 'py-1')) break;
      if (child.exitCode !== null) throw new Error(`the Python worker exited: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 30_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await dispatcher?.close();
  });

  it('announces its task types, label-free ones apart', async () => {
    const [w] = (await (await fetch(`${dispatcher.url}/workers`)).json()) as { task_types: string[] }[];
    expect([...w!.task_types].sort()).toEqual(['py_echo', 'py_fail', 'py_upper']);
  });

  it('runs a label-bound handler: a miss that loads, then a hit on the same worker', async () => {
    const params = JSON.stringify({ text: 'hi' });
    const first = await runTask({
      task_id: 'p1',
      task_type: 'py_upper',
      label: 'm1',
      parameters_json: params,
    });
    expect(first).toMatchObject({
      status: 200,
      body: { status: 'completed', worker_id: 'py-1', label_miss: true, result: { label: 'm1', text: 'HI' } },
    });
    const second = await runTask({
      task_id: 'p2',
      task_type: 'py_upper',
      label: 'm1',
      parameters_json: params,
    });
    expect(second.body).toMatchObject({ label_miss: false, result: { text: 'HI' } });
    const labels = (await (await fetch(`${dispatcher.url}/labels`)).json()) as Record<string, string[]>;
    expect(labels.m1).toEqual(['py-1']);
  });

  it('runs a label-free handler without loading anything', async () => {
    const r = await runTask({ task_id: 'p3', task_type: 'py_echo', label: 'x', parameters_json: '{"n":7}' });
    expect(r).toMatchObject({ status: 200, body: { label_miss: false, result: { n: 7 } } });
    const labels = (await (await fetch(`${dispatcher.url}/labels`)).json()) as Record<string, string[]>;
    expect(labels.x).toBeUndefined();
  });

  it('maps a failed validation to bad_parameters and a raising handler to a worker error', async () => {
    const bad = await runTask({
      task_id: 'p4',
      task_type: 'py_upper',
      label: 'm1',
      parameters_json: '{"text":1}',
    });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'bad_parameters' } } });
    const boom = await runTask({ task_id: 'p5', task_type: 'py_fail', label: 'x', parameters_json: '{}' });
    expect(boom.status).toBe(502);
    expect(boom.body.error?.code).toBe('worker_error');
  });

  it('drains on SIGTERM and leaves the fleet', async () => {
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    for (;;) {
      const workers = (await (await fetch(`${dispatcher.url}/workers`)).json()) as unknown[];
      if (workers.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 20_000);
});
