// The Python worker SDK (sdk/python/) with several dispatcher replicas (PROTOCOL.md "Several
// replicas"): a real python3 process linked to two replicas played by real `ws` servers speaking
// the protocol (worker/test/helpers/fake-dispatcher.ts), so roles and fencing tokens are ours to set.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeDispatcher } from '../../worker/test/helpers/fake-dispatcher.js';

const SDK_DIR = fileURLToPath(new URL('../../sdk/python/', import.meta.url));
// Debian's python3 carries python3-protobuf and python3-websockets (installed by .ci/run).
const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import google.protobuf, websockets'], { encoding: 'utf8' });
const missing = probe.status === 0 ? undefined : `${PYTHON} lacks python3-protobuf or python3-websockets`;
if (missing) console.warn(`python SDK replicas test skipped: ${missing}`);

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start() {
  const a = await FakeDispatcher.start({
    heartbeatIntervalMs: 50,
    welcome: { role: 'leader', replicaId: 'a', fencingToken: 1 },
  });
  cleanups.push(() => a.close());
  const b = await FakeDispatcher.start({
    heartbeatIntervalMs: 50,
    welcome: { role: 'standby', replicaId: 'b', fencingToken: 0 },
  });
  cleanups.push(() => b.close());
  let stderr = '';
  const child: ChildProcess = spawn(PYTHON, ['-B', 'example_worker.py', `${a.url},${b.url}`, 'py-ha'], {
    cwd: SDK_DIR,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
  const hello = (d: FakeDispatcher) =>
    d
      .waitFor((m) => m.body === 'hello', 0, 20_000)
      .catch((err: Error) => {
        throw new Error(`${err.message}; python stderr: ${stderr}`);
      });
  await Promise.all([hello(a), hello(b)]);
  // The first heartbeat on each link follows its Welcome.
  await Promise.all([a, b].map((d) => d.waitFor((m) => m.body === 'heartbeat', 0, 20_000)));
  return { a, b };
}

let seq = 0;
function runTask(d: FakeDispatcher, fencingToken: number, taskType = 'py_echo', label = ''): string {
  const taskId = `py${++seq}`;
  d.send({
    runTask: {
      taskId,
      taskType,
      label,
      parametersJson: JSON.stringify({ text: taskId }),
      evictLabel: '',
      attempt: 1,
      fencingToken,
    },
  });
  return taskId;
}

describe.skipIf(missing !== undefined)('Python worker SDK with two dispatcher replicas', () => {
  it('says Hello on both links and sends label events to both', async () => {
    const { a, b } = await start();
    for (const d of [a, b]) {
      const h = d.bodies('hello')[0]!;
      expect(h.hello.workerId).toBe('py-ha');
    }
    const t = runTask(a, 1, 'py_upper', 'm1');
    expect(JSON.parse((await a.result(t)).resultJson!)).toEqual({ label: 'm1', text: t.toUpperCase() });
    // The load it made is reported to the standby as well.
    const ev = await b.waitFor((m) => m.body === 'labelEvent' && m.labelEvent.label === 'm1');
    expect(ev.body === 'labelEvent' && ev.labelEvent.kind).toBe('loaded');
    expect(b.bodies('taskResult')).toEqual([]);
  }, 30_000);

  it('answers a task from the old leader stale_leader once a newer one announced itself', async () => {
    const { a, b } = await start();
    b.send({ leadership: { fencingToken: 2, replicaId: 'b' } });
    // A task of b's with token 2 runs: so b's Leadership was read before a's next frame.
    const fresh = runTask(b, 2);
    expect((await b.result(fresh)).error).toBeUndefined();
    const stale = await a.result(runTask(a, 1));
    expect(stale.error?.code).toBe('stale_leader');
    // A label order with the old token is ignored: no label event for it on either link.
    a.send({ labelOrder: { action: 'load', label: 'ignored', fencingToken: 1 } });
    b.send({ labelOrder: { action: 'load', label: 'obeyed', fencingToken: 2 } });
    const ev = await b.waitFor((m) => m.body === 'labelEvent' && m.labelEvent.label === 'obeyed');
    expect(ev.body === 'labelEvent' && ev.labelEvent.loadedLabels).toEqual(['obeyed']);
  }, 30_000);
});
