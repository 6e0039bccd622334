// Fencing with a paused leader: the leader is the real CLI (dist/cli.js) in a child process, so it
// can be SIGSTOPped past its lease and SIGCONTed; the standby runs in this process; one real worker
// (@smart-routing/worker) links to both; one real redis-server (Debian's, on a free port).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisMissing, startRedisServer, type RedisServerHandle } from '../support/redis-server.js';
import {
  Gate,
  ReplicaSet,
  replicaOf,
  runTask,
  sendTask,
  taskStatus,
  TEST_LEASE_MS,
  until,
} from './replicas.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const PREFIX = 'fence:';

let server: RedisServerHandle;
let child: ChildProcess | undefined;
let set: ReplicaSet | undefined;

beforeAll(async () => {
  if (!redisMissing) server = await startRedisServer();
});
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  await set?.close();
  await server?.stop();
});

/** Starts the CLI as replica `a`; resolves its URL from the `dispatcher_listening` line. */
async function startCliReplica(): Promise<string> {
  const proc = spawn(process.execPath, [CLI], {
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      PORT: '0',
      HOST: '127.0.0.1',
      GRPC_PORT: 'off',
      HEARTBEAT_INTERVAL_MS: '100',
      REDIS_URL: server.url,
      LEASE_TTL_MS: String(TEST_LEASE_MS),
      REPLICA_ID: 'a',
      TASK_STORE_KEY_PREFIX: PREFIX,
      TASK_STORE: '',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child = proc;
  return new Promise((resolve, reject) => {
    let buffer = '';
    proc.stderr!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          const parsed = JSON.parse(line) as { event?: string; url?: string };
          if (parsed.event === 'dispatcher_listening' && parsed.url) resolve(parsed.url);
        } catch {
          // not a log line
        }
      }
    });
    proc.once('exit', (code) => reject(new Error(`the CLI replica exited (${code}) before listening`)));
  });
}

describe.skipIf(redisMissing !== undefined)('fencing: a paused old leader (SIGSTOP past the lease)', () => {
  it('cannot get a task run when it wakes: the standby leads, adopts its running task, and every task runs once', async () => {
    const aUrl = await startCliReplica();
    await until(async () => (await replicaOf(aUrl)).role === 'leader', 'the CLI replica to lead');
    set = new ReplicaSet(server.url, PREFIX);
    const b = await set.replica('b');
    const gate = new Gate();
    await set.worker('w1', [aUrl, b.url], gate);
    await until(() => b.router.workerCount === 1, 'the worker on b');
    await until(
      async () => ((await (await fetch(`${aUrl}/workers`)).json()) as unknown[]).length === 1,
      'the worker on a',
    );

    // a routes a task (token 1) that is still running when a freezes.
    expect((await sendTask(aUrl, 'before-pause', { hold: true })).status).toBe(202);
    await until(() => gate.isHeld('before-pause'), 'before-pause to run');

    child!.kill('SIGSTOP');
    await until(async () => (await replicaOf(b.url)).role === 'leader', 'b to lead');
    expect((await replicaOf(b.url)).epoch).toBe(2);
    await until(() => b.router.worker('w1')?.inFlight.size === 1, 'b to adopt before-pause');

    // A producer reaches the frozen a; a wakes with the request waiting and its lease long gone.
    const answer = runTask(aUrl, 'after-wake', {});
    child!.kill('SIGCONT');
    const res = await answer;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ task_id: 'after-wake', status: 'completed', worker_id: 'w1' });
    await until(async () => (await replicaOf(aUrl)).leader_id === 'b', 'a to see b lead');
    expect(await replicaOf(aUrl)).toMatchObject({ role: 'standby', leader_id: 'b', epoch: 2 });

    // The task a sent before it froze finishes once; its result (sent to a, which sent it) is kept.
    gate.release('before-pause');
    await until(
      async () => (await taskStatus(b.url, 'before-pause'))?.status === 'completed',
      'before-pause to complete',
    );
    await until(() => b.router.worker('w1')?.inFlight.size === 0, "b to free before-pause's slot");
    expect(gate.runs.get('before-pause')).toBe(1);
    expect(gate.runs.get('after-wake')).toBe(1);
  });
});
