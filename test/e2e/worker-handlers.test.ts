// WORKER_HANDLERS: the real worker CLI (a process, built dist/) loads the example handler module
// (worker/examples/text-handlers.js) and serves its task types through a real dispatcher.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDispatcher, type DispatcherHandle } from '@smart-routing/dispatcher';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'worker/dist/cli.js');

function spawnWorker(
  env: Record<string, string>,
  args: string[] = [],
): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', TRITON_URL: 'none', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return { child, stderr: () => stderr };
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}

describe('WORKER_HANDLERS in the worker CLI', () => {
  let dispatcher: DispatcherHandle;
  let worker: ChildProcess | undefined;
  let stderr: () => string = () => '';

  const runTask = async (body: Record<string, unknown>) => {
    const res = await fetch(`${dispatcher.url}/run-task`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  beforeAll(async () => {
    dispatcher = await startDispatcher({ port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) });
    ({ child: worker, stderr } = spawnWorker({ DISPATCHER_URL: dispatcher.url, WORKER_ID: 'plugin-1' }, [
      '--handlers',
      './worker/examples/text-handlers.js',
    ]));
    // In the picture once the dispatcher lists it (its Hello was welcomed).
    for (;;) {
      const workers = (await (await fetch(`${dispatcher.url}/workers`)).json()) as { id: string }[];
      if (workers.some((w) => w.id === 'plugin-1')) break;
      if (worker.exitCode !== null) throw new Error(`the worker exited: ${stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 30_000);

  afterAll(async () => {
    await stop(worker);
    await dispatcher?.close();
  });

  it("announces the module's task types beside the built-in ones", async () => {
    const [w] = (await (await fetch(`${dispatcher.url}/workers`)).json()) as { task_types: string[] }[];
    expect(w!.task_types).toEqual(expect.arrayContaining(['echo', 'word_count', 'reverse_text']));
    expect(stderr()).toContain('"event":"worker_handlers_loaded"');
  });

  it('runs a plugin task and returns its result', async () => {
    const answer = await runTask({
      task_id: 'h1',
      task_type: 'word_count',
      label: 'any',
      parameters_json: JSON.stringify({ text: 'the quick brown fox' }),
    });
    expect(answer).toMatchObject({
      status: 200,
      body: {
        status: 'completed',
        worker_id: 'plugin-1',
        result: { words: 4, characters: 19, task_id: 'h1' },
      },
    });
    const reversed = await runTask({
      task_id: 'h2',
      task_type: 'reverse_text',
      label: 'any',
      parameters_json: JSON.stringify({ text: 'héllo' }),
    });
    expect(reversed.body.result).toEqual({ text: 'olléh' });
  });

  it("passes the handler's TaskError to the producer as that error", async () => {
    const answer = await runTask({
      task_id: 'h3',
      task_type: 'word_count',
      label: 'any',
      parameters_json: JSON.stringify({ text: 42 }),
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toEqual({
      code: 'bad_parameters',
      message: expect.stringContaining('word_count: text: expected a string'),
    });
  });

  it('exits 1 naming the module when a handler module is broken', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'handlers-'));
    try {
      await writeFile(
        join(dir, 'bad.mjs'),
        'export const handlers = [{ taskType: "x", labelFree: true }];\n',
      );
      const { child, stderr: err } = spawnWorker({
        DISPATCHER_URL: dispatcher.url,
        WORKER_ID: 'plugin-bad',
        WORKER_HANDLERS: join(dir, 'bad.mjs'),
      });
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(1);
      expect(err()).toContain(`WORKER_HANDLERS: ${join(dir, 'bad.mjs')}[0]: parse must be a function`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
