import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeDispatcher } from './helpers/fake-dispatcher.js';

/** The built CLI (the root `npm test` builds before running vitest). */
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function run(
  env: Record<string, string>,
  args: string[] = [],
): { child: ChildProcess; exit: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, exit, stderr: () => stderr };
}

describe('smart-routing-worker CLI', () => {
  it('connects with env settings, and on SIGTERM drains, closes 1000 and exits 0', async () => {
    const dispatcher = await FakeDispatcher.start({ heartbeatIntervalMs: 5000 });
    cleanups.push(() => dispatcher.close());
    const { child, exit, stderr } = run(
      { DISPATCHER_URL: dispatcher.url, TRITON_URL: 'none', WORKER_ID: 'cli-1' },
      ['--slots', '3'],
    );
    const hello = await dispatcher.waitFor((m) => m.body === 'hello', 0, 20_000);
    expect(hello.body === 'hello' && hello.hello).toMatchObject({
      workerId: 'cli-1',
      taskSlots: 3,
      labelCapacity: 2,
      taskTypes: ['echo'],
    });
    dispatcher.send({
      runTask: {
        taskId: 'c1',
        taskType: 'echo',
        label: 'l',
        parametersJson: '1',
        evictLabel: '',
        attempt: 1,
      },
    });
    expect((await dispatcher.result('c1')).resultJson).toBe('{"echo":1}');
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    const draining = dispatcher.bodies('heartbeat').filter((h) => h.heartbeat.state === 'draining');
    expect(draining.length).toBeGreaterThanOrEqual(1);
    await expect.poll(() => dispatcher.closeCodes).toEqual([1000]);
    const logs = stderr()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.find((l) => l.event === 'task_completed')).toMatchObject({
      service: 'worker',
      worker_id: 'cli-1',
      task_id: 'c1',
      ok: true,
    });
  });

  it('links to every replica in DISPATCHER_URLS (--dispatcher-urls overrides it) and drains both on SIGTERM', async () => {
    const a = await FakeDispatcher.start({ heartbeatIntervalMs: 5000 });
    cleanups.push(() => a.close());
    const b = await FakeDispatcher.start({ heartbeatIntervalMs: 5000 });
    cleanups.push(() => b.close());
    const unused = await FakeDispatcher.start({ heartbeatIntervalMs: 5000 });
    cleanups.push(() => unused.close());
    const { child, exit } = run({ DISPATCHER_URLS: unused.url, TRITON_URL: 'none', WORKER_ID: 'cli-ha' }, [
      '--dispatcher-urls',
      `${a.url},${b.url}`,
    ]);
    for (const d of [a, b]) {
      const hello = await d.waitFor((m) => m.body === 'hello', 0, 20_000);
      expect(hello.body === 'hello' && hello.hello.workerId).toBe('cli-ha');
    }
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    for (const d of [a, b]) await expect.poll(() => d.closeCodes).toEqual([1000]);
    expect(unused.upgrades).toEqual([]);
  });

  it('exits 2 with a message naming the bad variable', async () => {
    const { exit, stderr } = run({ WORKER_SLOTS: 'many', TRITON_URL: 'none' });
    expect(await exit).toBe(2);
    expect(stderr()).toMatch(/WORKER_SLOTS must be an integer/);
  });
});
