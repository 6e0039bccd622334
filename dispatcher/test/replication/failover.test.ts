// Several dispatcher replicas on one real redis-server (Debian's, started on a free port by
// test/support), with a real worker (@smart-routing/worker) linked to every replica.
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { startWorker, type TaskHandler } from '@smart-routing/worker';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisMissing, startRedisServer, type RedisServerHandle } from '../support/redis-server.js';
import { Gate, ReplicaSet, replicaOf, runTask, sendTask, taskStatus, until } from './replicas.js';

let server: RedisServerHandle;
let set: ReplicaSet | undefined;
let prefixes = 0;

beforeAll(async () => {
  if (!redisMissing) server = await startRedisServer();
});
afterEach(async () => {
  await set?.close();
  set = undefined;
});
afterAll(async () => {
  await server?.stop();
});

/** A fresh replica set on its own key prefix (tests do not see each other's lease or tasks). */
function fresh(): ReplicaSet {
  set = new ReplicaSet(server.url, `ha${++prefixes}:`);
  return set;
}

/**
 * A TCP relay to `port` that can stop passing what the worker writes (`swallow`): bytes written to
 * a process that dies before it reads them. Resolves its URL and the switch.
 */
async function relay(port: number): Promise<{ url: string; swallow: () => void; close: () => void }> {
  let swallowing = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    for (const sock of [client, upstream]) {
      sockets.add(sock);
      sock.on('error', () => undefined);
      sock.on('close', () => {
        sockets.delete(sock);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk) => {
      if (!swallowing) upstream.write(chunk);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    swallow: () => {
      swallowing = true;
    },
    close: () => {
      server.close();
      for (const sock of sockets) sock.destroy();
    },
  };
}

/** /workers without the fields that legitimately differ between replicas in a moment (none expected). */
async function picture(url: string): Promise<unknown> {
  const list = (await (await fetch(`${url}/workers`)).json()) as Record<string, unknown>[];
  return list.map((w) => ({ ...w })).sort((x, y) => String(x.id).localeCompare(String(y.id)));
}

describe.skipIf(redisMissing !== undefined)('replicated dispatchers (real redis-server, real worker)', () => {
  it("one leads, the other is a warm standby whose picture of the fleet equals the leader's", async () => {
    const s = fresh();
    // No failover wanted here: a lease no busy machine loses by itself.
    const a = await s.replica('a', {}, 30_000);
    await until(async () => (await replicaOf(a.url)).role === 'leader', 'a to lead');
    const b = await s.replica('b', {}, 30_000);
    const gate = new Gate();
    await s.worker('w1', [a.url, b.url], gate, 3);
    await s.worker('w2', [a.url, b.url], gate, 2);
    await until(() => a.router.workerCount === 2 && b.router.workerCount === 2, 'both workers on both');
    expect(await replicaOf(b.url)).toMatchObject({ id: 'b', role: 'standby', leader_id: 'a', epoch: 1 });
    expect(await replicaOf(a.url)).toMatchObject({ id: 'a', role: 'leader', leader_id: 'a', epoch: 1 });
    expect(await picture(b.url)).toEqual(await picture(a.url));
    const workers = await fetch(`${b.url}/workers`);
    expect(workers.headers.get('replica-role')).toBe('standby');
    expect(workers.headers.get('replica-leader-id')).toBe('a');
    // KServe v2 is forwarded to the leader (v2-standby.test.ts): no worker here serves it, and the
    // standby answers what the leader does, in Triton's error shape.
    const v2 = async (url: string) => {
      const res = await fetch(`${url}/v2/models/m/infer`, { method: 'POST', body: '{"inputs":[]}' });
      return { status: res.status, body: (await res.json()) as unknown };
    };
    const onStandby = await v2(b.url);
    expect(onStandby).toEqual(await v2(a.url));
    expect(onStandby.body).toEqual({ error: expect.stringContaining('kserve_infer') });
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).toMatch(/dispatcher_replica_role\{role="standby"\} 1/);
    expect(metrics).toMatch(/dispatcher_lease_epoch 1/);
  });

  it("a task posted to the standby completes, sync and async, run once by the leader's worker", async () => {
    const s = fresh();
    const a = await s.replica('a');
    await until(async () => (await replicaOf(a.url)).role === 'leader', 'a to lead');
    const b = await s.replica('b');
    const gate = new Gate();
    await s.worker('w1', [a.url, b.url], gate);
    await until(() => a.router.workerCount === 1 && b.router.workerCount === 1, 'the worker on both');

    const sync = await runTask(b.url, 'sync-1');
    expect(sync.status).toBe(200);
    expect(await sync.json()).toMatchObject({
      task_id: 'sync-1',
      status: 'completed',
      worker_id: 'w1',
      result: { ran: 'sync-1' },
    });

    const accepted = await sendTask(b.url, 'async-1');
    expect(accepted.status).toBe(202);
    await until(
      async () => (await taskStatus(b.url, 'async-1'))?.status === 'completed',
      'async-1 to complete',
    );
    expect(await taskStatus(a.url, 'async-1')).toMatchObject({
      status: 'completed',
      worker_id: 'w1',
      result: { ran: 'async-1' },
    });
    expect(gate.runs.get('sync-1')).toBe(1);
    expect(gate.runs.get('async-1')).toBe(1);

    // A retry of the same task_id on the other replica gets the stored outcome, not a second run.
    const again = await runTask(a.url, 'sync-1');
    expect(await again.json()).toMatchObject({
      task_id: 'sync-1',
      status: 'completed',
      result: { ran: 'sync-1' },
    });
    expect(gate.runs.get('sync-1')).toBe(1);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).toMatch(/dispatcher_forwarded_tasks_total 2/);
  });

  it("the leader goes away: the standby leads with a higher token and accepts the running tasks' results without re-running them", async () => {
    const s = fresh();
    const a = await s.replica('a');
    await until(async () => (await replicaOf(a.url)).role === 'leader', 'a to lead');
    const b = await s.replica('b');
    const gate = new Gate();
    await s.worker('w1', [a.url, b.url], gate);
    await until(() => a.router.workerCount === 1 && b.router.workerCount === 1, 'the worker on both');

    // An async task, and a sync one whose producer waits on the standby, both running on w1.
    expect((await sendTask(a.url, 'held-async', { hold: true })).status).toBe(202);
    const syncAnswer = runTask(b.url, 'held-sync', { hold: true });
    await until(() => gate.isHeld('held-async') && gate.isHeld('held-sync'), 'both tasks to run');

    await a.close(); // the leader is gone (its links close; the lease is handed over)
    await until(async () => (await replicaOf(b.url)).role === 'leader', 'b to lead');
    expect((await replicaOf(b.url)).epoch).toBeGreaterThan(1);
    // The new leader took the running tasks' slots on w1.
    await until(() => b.router.worker('w1')?.inFlight.size === 2, 'b to adopt both tasks');

    gate.release('held-async');
    gate.release('held-sync');
    const answer = await syncAnswer;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ task_id: 'held-sync', status: 'completed', worker_id: 'w1' });
    await until(
      async () => (await taskStatus(b.url, 'held-async'))?.status === 'completed',
      'held-async to complete',
    );
    expect(gate.runs.get('held-async')).toBe(1);
    expect(gate.runs.get('held-sync')).toBe(1);
    await until(() => b.router.worker('w1')?.inFlight.size === 0, 'both slots freed on b', 5000);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).toMatch(/dispatcher_failovers_total 1/);
  });

  it('regression (failover chaos, reRun): a result the dying leader never read reaches the new leader, and the adopted task runs once', async () => {
    const s = fresh();
    const a = await s.replica('a');
    await until(async () => (await replicaOf(a.url)).role === 'leader', 'a to lead');
    const b = await s.replica('b');
    const toA = await relay(a.port);
    const gate = new Gate();
    const lines: string[] = [];
    const w = await startWorker({
      dispatcherUrls: [toA.url, b.url],
      workerId: 'w1',
      tritonUrl: 'none',
      taskHandlers: [gate.handler as TaskHandler],
      logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
      reconnectInitialMs: 50,
      reconnectMaxMs: 200,
    });
    s.workers.push(w);
    try {
      await until(() => a.router.workerCount === 1 && b.router.workerCount === 1, 'the worker on both');
      expect((await sendTask(a.url, 'unread', { hold: true })).status).toBe(202);
      await until(() => gate.isHeld('unread'), 'unread to run');
      await until(async () => (await taskStatus(b.url, 'unread'))?.status === 'running', 'stored running');
      // a stops reading (as a SIGKILLed or stopped process); the worker writes its result all the same.
      toA.swallow();
      gate.release('unread');
      await until(
        () => lines.some((l) => l.includes('"task_completed"') && l.includes('"unread"')),
        'the worker to send the result',
      );
      await a.close();
      await until(async () => (await replicaOf(b.url)).role === 'leader', 'b to lead');
      // Without the result sent again, b re-queues the adopted task (no heartbeat lists it) and
      // runs it a second time: that run is held, so the status never ends.
      await until(
        async () =>
          (await taskStatus(b.url, 'unread'))?.status === 'completed' || (gate.runs.get('unread') ?? 0) > 1,
        'unread to complete or run again',
      );
      expect(gate.runs.get('unread')).toBe(1);
      expect(await taskStatus(b.url, 'unread')).toMatchObject({ status: 'completed', worker_id: 'w1' });
    } finally {
      toA.close();
    }
  });

  it('a sync producer that goes away ends its stored task, so no later leader re-runs it', async () => {
    const s = fresh();
    const a = await s.replica('a');
    await until(async () => (await replicaOf(a.url)).role === 'leader', 'a to lead');
    const gate = new Gate();
    await s.worker('w1', [a.url], gate);
    await until(() => a.router.workerCount === 1, 'the worker on a');
    const gone = new AbortController();
    const pending = runTask(a.url, 'left', { hold: true }, gone.signal).catch(() => undefined);
    await until(() => gate.isHeld('left'), 'left to run');
    gone.abort();
    await pending;
    await until(
      async () => (await taskStatus(a.url, 'left'))?.status === 'cancelled',
      'left to end cancelled',
    );
    gate.release('left');
  });

  it('a queued task of a dead leader is routed by the new leader', async () => {
    const s = fresh();
    const a = await s.replica('a');
    await until(async () => (await replicaOf(a.url)).role === 'leader', 'a to lead');
    const b = await s.replica('b');
    // No worker yet: the async task waits in the store.
    expect((await sendTask(a.url, 'waiting', {})).status).toBe(202);
    await a.close();
    await until(async () => (await replicaOf(b.url)).role === 'leader', 'b to lead');
    const gate = new Gate();
    await s.worker('w1', [b.url], gate);
    await until(
      async () => (await taskStatus(b.url, 'waiting'))?.status === 'completed',
      'waiting to complete',
    );
    expect(gate.runs.get('waiting')).toBe(1);
  });

  it('a leader that learns from a worker of a newer leader (stale_leader) steps down and the task runs once, by the new leader', async () => {
    const s = fresh();
    const redis = new Redis(server.url);
    try {
      // A long lease: a's local guard would hold for a minute, so only the worker's answer stops it.
      const a = await s.replica('a', {}, 60_000);
      await until(async () => (await replicaOf(a.url)).role === 'leader', 'a to lead');
      const b = await s.replica('b');
      const gate = new Gate();
      await s.worker('w1', [a.url, b.url], gate);
      await until(() => a.router.workerCount === 1 && b.router.workerCount === 1, 'the worker on both');
      // Split brain on purpose: the lease key vanishes, b takes it (token 2) and tells the worker.
      await redis.del(`ha${prefixes}:leader`);
      await until(async () => (await replicaOf(b.url)).role === 'leader', 'b to lead');
      // a still believes it leads (its next renew is 20 s away); its RunTask carries token 1.
      expect(a.replica().role).toBe('leader');
      const answer = await runTask(a.url, 'split', {});
      expect(answer.status).toBe(200);
      expect(await answer.json()).toMatchObject({ task_id: 'split', status: 'completed', worker_id: 'w1' });
      expect(gate.runs.get('split')).toBe(1);
      expect((await replicaOf(a.url)).role).toBe('standby');
    } finally {
      redis.disconnect();
    }
  });
});
