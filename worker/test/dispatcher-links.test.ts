import type { Welcome } from '@smart-routing/proto';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ResolvedAddress } from '../src/connection.js';
import { DispatcherLinks, type HostResolver } from '../src/dispatcher-links.js';
import { echoHandler } from '../src/handlers/echo.js';
import { ModelCache } from '../src/handlers/model-cache.js';
import type { TaskHandler } from '../src/handlers/types.js';
import { LabelManager } from '../src/label-manager.js';
import { TaskRunner } from '../src/task-runner.js';
import { startWorker } from '../src/worker.js';
import { FakeDispatcher, memoryLogger, type Received } from './helpers/fake-dispatcher.js';

/**
 * Several dispatcher replicas (issue 13, PROTOCOL.md "Several replicas"): two fake replicas as
 * real `ws` servers on port 0, one worker linked to both.
 */

const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const LEADER_1: Partial<Welcome> = { role: 'leader', replicaId: 'a', fencingToken: 1 };
const STANDBY: Partial<Welcome> = { role: 'standby', replicaId: 'b', fencingToken: 0 };

async function replica(welcome: Partial<Welcome>, options: { host?: string; port?: number } = {}) {
  const d = await FakeDispatcher.start({ heartbeatIntervalMs: 25, welcome, ...options });
  cleanups.push(() => d.close());
  return d;
}

/** A label-free task type whose runs wait until the test releases them; it records every call. */
function holdHandler() {
  const calls: string[] = [];
  const gates = new Map<string, () => void>();
  const handler: TaskHandler = {
    taskType: 'hold',
    labelFree: true,
    parse: (p) => p,
    run: (_p, ctx) => {
      calls.push(ctx.taskId);
      return new Promise((resolve) => gates.set(ctx.taskId, () => resolve({ held: ctx.taskId })));
    },
  };
  const release = (taskId: string): void => {
    const g = gates.get(taskId);
    if (!g) throw new Error(`task ${taskId} is not running`);
    g();
  };
  return { handler, calls, release };
}

/** A worker's links to `replicas` (or to `urls` through `resolve`), with a `hold` task type. */
function links(
  urls: string[],
  options: {
    resolve?: HostResolver;
    pendingResultsMax?: number;
    pendingResultsBytes?: number;
    recentResultsMax?: number;
    slots?: number;
    resolveMs?: number;
  } = {},
) {
  const hold = holdHandler();
  const { logger, records } = memoryLogger();
  const labels = new LabelManager({ capacity: 2, logger: silent });
  const runner = new TaskRunner({
    workerId: 'w-ha',
    slots: options.slots ?? 4,
    labels,
    handlers: new Map([
      ['hold', hold.handler],
      ['echo', echoHandler],
    ]),
    models: new ModelCache({ client: undefined, modelRepository: '/nonexistent' }),
    client: undefined,
    logger,
  });
  const set = new DispatcherLinks({
    dispatcherUrls: urls,
    workerId: 'w-ha',
    runner,
    labels,
    logger,
    reconnectInitialMs: 20,
    reconnectMaxMs: 100,
    resolveMs: options.resolveMs ?? 0,
    ...(options.resolve ? { resolve: options.resolve } : {}),
    ...(options.pendingResultsMax !== undefined ? { pendingResultsMax: options.pendingResultsMax } : {}),
    ...(options.pendingResultsBytes !== undefined
      ? { pendingResultsBytes: options.pendingResultsBytes }
      : {}),
    ...(options.recentResultsMax !== undefined ? { recentResultsMax: options.recentResultsMax } : {}),
  });
  cleanups.push(() => set.close());
  set.start();
  return { set, records, runner, ...hold };
}

let seq = 0;
function runTask(d: FakeDispatcher, fencingToken: number, taskType = 'hold'): string {
  const taskId = `ha${++seq}`;
  d.send({
    runTask: { taskId, taskType, label: '', parametersJson: '{}', evictLabel: '', attempt: 1, fencingToken },
  });
  return taskId;
}

const welcomed = (d: FakeDispatcher, from = 0) => d.waitFor((m) => m.body === 'hello', from);
/** Waits until the worker has had the Welcome: its first heartbeat comes after it. */
const heartbeat = (d: FakeDispatcher, from = d.received.length) =>
  d.waitFor((m) => m.body === 'heartbeat', from) as Promise<Extract<Received, { body: 'heartbeat' }>>;

describe('DispatcherLinks with two replicas', () => {
  it('sends Hello, label events and heartbeats (with running_task_ids) on both links', async () => {
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    const { release } = links([a.url, b.url]);
    const [ha, hb] = await Promise.all([welcomed(a), welcomed(b)]);
    expect(ha.body === 'hello' && ha.hello.workerId).toBe('w-ha');
    expect(hb.body === 'hello' && hb.hello.workerId).toBe('w-ha');
    await Promise.all([heartbeat(a), heartbeat(b)]);

    a.send({ labelOrder: { action: 'load', label: 'm1', fencingToken: 1 } });
    for (const d of [a, b]) {
      const ev = await d.waitFor((m) => m.body === 'labelEvent' && m.labelEvent.label === 'm1');
      expect(ev.body === 'labelEvent' && ev.labelEvent).toMatchObject({
        kind: 'loaded',
        loadedLabels: ['m1'],
      });
    }

    const t = runTask(a, 1);
    for (const d of [a, b]) {
      const beat = await d.waitFor((m) => m.body === 'heartbeat' && m.heartbeat.runningTaskIds.includes(t));
      expect(beat.body === 'heartbeat' && beat.heartbeat).toMatchObject({ inFlight: 1, runningTaskIds: [t] });
    }
    release(t);
    expect((await a.result(t)).resultJson).toBe(JSON.stringify({ held: t }));
    // The result went to the sender only.
    expect(b.bodies('taskResult')).toEqual([]);
  });

  it('answers a RunTask with an old token stale_leader without running it, and ignores old orders', async () => {
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    const { set, calls, records, release } = links([a.url, b.url]);
    await Promise.all([heartbeat(a), heartbeat(b)]);
    const running = runTask(a, 1);
    await expect.poll(() => calls).toEqual([running]);

    // b takes over with a newer token; a (a paused old leader waking up) keeps giving orders.
    b.send({ leadership: { fencingToken: 2, replicaId: 'b' } });
    await expect.poll(() => set.newestToken).toBe(2);
    const stale = runTask(a, 1);
    const refused = await a.result(stale);
    expect(refused.error).toEqual({
      code: 'stale_leader',
      message: 'fencing token 1 is older than the newest this worker has seen',
    });
    expect(calls).toEqual([running]); // the handler was not called for it

    a.send({ labelOrder: { action: 'load', label: 'old-order', fencingToken: 1 } });
    a.send({ cancelTask: { taskId: running, fencingToken: 1 } });
    await expect
      .poll(() => records.filter((r) => r.event === 'stale_leader_order').map((r) => r.order))
      .toEqual(['run_task', 'label_order', 'cancel_task']);
    // The new leader's orders are obeyed, and the old one's load never happened.
    b.send({ labelOrder: { action: 'load', label: 'new-order', fencingToken: 2 } });
    const ev = await b.waitFor((m) => m.body === 'labelEvent' && m.labelEvent.label === 'new-order');
    expect(ev.body === 'labelEvent' && ev.labelEvent.loadedLabels).toEqual(['new-order']);
    // The stale cancel did not cancel: the task still runs and ends normally.
    release(running);
    expect((await a.result(running)).resultJson).toBe(JSON.stringify({ held: running }));
    // Stale tokens are refused on any link; equal and newer ones pass.
    const ok = runTask(b, 2, 'echo');
    expect((await b.result(ok)).error).toBeUndefined();
  });

  it('rate-limits the stale-order warning', async () => {
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    const { set, records } = links([a.url, b.url]);
    await Promise.all([heartbeat(a), heartbeat(b)]);
    b.send({ leadership: { fencingToken: 5, replicaId: 'b' } });
    await expect.poll(() => set.newestToken).toBe(5);
    const ids = [1, 2, 3, 4, 5].map(() => runTask(a, 1, 'echo'));
    for (const id of ids) expect((await a.result(id)).error?.code).toBe('stale_leader');
    expect(records.filter((r) => r.event === 'stale_leader_order')).toHaveLength(1);
  });

  it('sends the result to the new leader when the sender is gone mid-task', async () => {
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    const { release, calls, records } = links([a.url, b.url]);
    await Promise.all([heartbeat(a), heartbeat(b)]);
    const t = runTask(a, 1);
    await expect.poll(() => calls).toEqual([t]);
    b.send({ leadership: { fencingToken: 2, replicaId: 'b' } });
    await expect
      .poll(() => records.some((r) => r.event === 'dispatcher_leader' && r.fencing_token === 2))
      .toBe(true);
    await a.close(); // the sender dies
    await expect.poll(() => records.some((r) => r.event === 'dispatcher_disconnected')).toBe(true);
    release(t);
    const result = await b.result(t);
    expect(result.resultJson).toBe(JSON.stringify({ held: t }));
    expect(records.find((r) => r.event === 'result_rerouted')).toMatchObject({ task_id: t });
  });

  it('keeps results while no link can take them and flushes them on Leadership', async () => {
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    const { set, release, calls, records } = links([a.url, b.url], { pendingResultsMax: 1 });
    await Promise.all([heartbeat(a), heartbeat(b)]);
    const t1 = runTask(a, 1);
    const t2 = runTask(a, 1);
    await expect.poll(() => calls).toEqual([t1, t2]);
    await a.close(); // the sender, which was the leader, dies: no link may take the results
    await expect.poll(() => records.some((r) => r.event === 'dispatcher_disconnected')).toBe(true);
    release(t1);
    release(t2);
    await expect.poll(() => set.pendingResults).toBe(1); // bounded: t1, the oldest, was dropped
    expect(b.bodies('taskResult')).toEqual([]);
    const from = b.received.length;
    b.send({ leadership: { fencingToken: 2, replicaId: 'b' } });
    const result = await b.result(t2, from);
    expect(result.resultJson).toBe(JSON.stringify({ held: t2 }));
    expect(set.pendingResults).toBe(0);
    expect(b.bodies('taskResult').map((m) => m.taskResult.taskId)).toEqual([t2]);
  });

  it('bounds the kept results by bytes too (PENDING_RESULTS_BYTES): the oldest go first', async () => {
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    // Each `{"held":"haN"}` result counts its JSON plus 256: two fit in 600 bytes, three do not.
    const { set, release, calls, records } = links([a.url, b.url], { pendingResultsBytes: 600 });
    await Promise.all([heartbeat(a), heartbeat(b)]);
    const ids = [runTask(a, 1), runTask(a, 1), runTask(a, 1)];
    await expect.poll(() => calls).toEqual(ids);
    await a.close();
    await expect.poll(() => records.some((r) => r.event === 'dispatcher_disconnected')).toBe(true);
    for (const id of ids) release(id);
    await expect.poll(() => records.filter((r) => r.event === 'result_pending').length).toBe(3);
    expect(set.pendingResults).toBe(2);
    expect(records.find((r) => r.event === 'pending_result_dropped')).toMatchObject({
      task_id: ids[0],
      max_bytes: 600,
    });
    const from = b.received.length;
    b.send({ leadership: { fencingToken: 2, replicaId: 'b' } });
    await b.result(ids[2]!, from);
    expect(b.bodies('taskResult').map((m) => m.taskResult.taskId)).toEqual([ids[1], ids[2]]);
    expect(set.pendingResults).toBe(0);
  });

  it('regression: a leader that comes back as a standby gets no rerouted results; the next leader does', async () => {
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    const { set, release, calls } = links([a.url, b.url]);
    await Promise.all([heartbeat(a), heartbeat(b)]);
    const t = runTask(a, 1);
    await expect.poll(() => calls).toEqual([t]);
    a.welcome = { role: 'standby', replicaId: 'a', fencingToken: 0 }; // it lost its lease
    a.dropWorker();
    // Welcomed again (as a standby): its heartbeats on the new connection follow that Welcome.
    await a.waitFor((m) => m.body === 'heartbeat' && m.connection === 2);
    release(t);
    await expect.poll(() => set.pendingResults).toBe(1);
    b.send({ leadership: { fencingToken: 2, replicaId: 'b' } });
    expect((await b.result(t)).resultJson).toBe(JSON.stringify({ held: t }));
    expect(a.bodies('taskResult')).toEqual([]);
  });

  it('regression (failover chaos, reRun): sends a result it gave a dying leader to the next leader again', async () => {
    // The chaos run's re-runs: a result written on the leader's socket just before its SIGKILL was
    // lost with it; the new leader adopted the task as running, no heartbeat listed it, so it was
    // queued and run again.
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    const { release, calls, records } = links([a.url, b.url]);
    await Promise.all([heartbeat(a), heartbeat(b)]);
    const t = runTask(a, 1);
    await expect.poll(() => calls).toEqual([t]);
    release(t);
    expect((await a.result(t)).resultJson).toBe(JSON.stringify({ held: t }));
    await a.close(); // it dies before acting on the result
    expect(b.bodies('taskResult')).toEqual([]);
    const from = b.received.length;
    b.send({ leadership: { fencingToken: 2, replicaId: 'b' } });
    expect((await b.result(t, from)).resultJson).toBe(JSON.stringify({ held: t }));
    expect(records.find((r) => r.event === 'recent_results_resent')).toMatchObject({ count: 1 });
  });

  it('regression (Redis outage): sends a result again to the replica it went to when that replica leads anew', async () => {
    // The leader stopped leading (its lease ran out while Redis was away) and dropped the result
    // it could not store; re-elected with a newer token, it adopted the task as running again.
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    const { release, calls } = links([a.url, b.url]);
    await Promise.all([heartbeat(a), heartbeat(b)]);
    const t = runTask(a, 1);
    await expect.poll(() => calls).toEqual([t]);
    release(t);
    await a.result(t);
    const from = a.received.length;
    a.send({ leadership: { fencingToken: 2, replicaId: 'a' } });
    expect((await a.result(t, from)).resultJson).toBe(JSON.stringify({ held: t }));
    // The same token announced again sends nothing more.
    a.send({ leadership: { fencingToken: 2, replicaId: 'a' } });
    const own = runTask(a, 2, 'echo');
    await a.result(own);
    expect(a.bodies('taskResult').filter((m) => m.taskResult.taskId === t)).toHaveLength(2);
    expect(b.bodies('taskResult')).toEqual([]);
  });

  it('sends again only recent results of other links, newest first kept, never a stale_leader refusal', async () => {
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    const { set, release, calls } = links([a.url, b.url], { recentResultsMax: 2 });
    await Promise.all([heartbeat(a), heartbeat(b)]);
    const ids = [runTask(a, 1), runTask(a, 1), runTask(a, 1)];
    await expect.poll(() => calls).toEqual(ids);
    for (const id of ids) {
      release(id);
      await a.result(id);
    }
    // b leads (token 2); a, still up, sends an order with its old token: refused stale_leader.
    b.send({ leadership: { fencingToken: 2, replicaId: 'b' } });
    await expect.poll(() => set.newestToken).toBe(2);
    const stale = runTask(a, 1);
    expect((await a.result(stale)).error?.code).toBe('stale_leader');
    const own = runTask(b, 2);
    await expect.poll(() => calls).toContain(own);
    release(own);
    await b.result(own);
    // Bounded to the newest 2 of a's three results, each sent to b once.
    expect(b.bodies('taskResult').map((m) => m.taskResult.taskId)).toEqual([ids[1], ids[2], own]);
    // A third replica takes over: b's own result and the two resent go to it, never the refusal.
    const from = a.received.length;
    a.send({ leadership: { fencingToken: 3, replicaId: 'a' } });
    await a.result(ids[2]!, from);
    await expect
      .poll(() =>
        a
          .bodies('taskResult')
          .map((m) => m.taskResult.taskId)
          .slice(-2),
      )
      .toEqual([ids[2], own]);
    expect(a.bodies('taskResult').filter((m) => m.taskResult.taskId === stale)).toHaveLength(1);
    expect(a.bodies('taskResult').filter((m) => m.taskResult.taskId === ids[1])).toHaveLength(1);
  });

  it('drops a result whose link is gone with a standalone dispatcher (as one link always did)', async () => {
    const a = await replica({});
    const { set, release, calls, records } = links([a.url]);
    await heartbeat(a);
    const t = runTask(a, 0);
    await expect.poll(() => calls).toEqual([t]);
    await a.close();
    await expect.poll(() => set.connected).toBe(false);
    release(t);
    await expect
      .poll(() => records.find((r) => r.event === 'task_completed' && r.task_id === t))
      .toMatchObject({ ok: true, result_dropped: true });
    expect(records.some((r) => r.event === 'result_pending')).toBe(false);
    expect(set.pendingResults).toBe(0);
  });

  it('drains one link on its Drain; the other link still runs tasks', async () => {
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    links([a.url, b.url]);
    await Promise.all([heartbeat(a), heartbeat(b)]);
    a.send({ drain: { reason: 'replica a stopping' } });
    await a.waitFor((m) => m.body === 'heartbeat' && m.heartbeat.state === 'draining');
    expect((await a.result(runTask(a, 1, 'echo'))).error?.code).toBe('draining');
    b.send({ leadership: { fencingToken: 2, replicaId: 'b' } });
    const ok = await b.result(runTask(b, 2, 'echo'));
    expect(ok.error).toBeUndefined();
    expect(b.bodies('heartbeat').every((m) => m.heartbeat.state === 'ready')).toBe(true);
  });

  it('drain() (SIGTERM) drains every link', async () => {
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    const { set } = links([a.url, b.url]);
    await Promise.all([heartbeat(a), heartbeat(b)]);
    await set.drain();
    for (const d of [a, b])
      await d.waitFor((m) => m.body === 'heartbeat' && m.heartbeat.state === 'draining');
  });
});

describe('DispatcherLinks with a DNS name of several addresses', () => {
  /** Two replicas on 127.0.0.1 and 127.0.0.2, on the same free port. */
  async function twoAddresses() {
    for (let tries = 0; tries < 5; tries++) {
      const a = await replica(LEADER_1, { host: '127.0.0.1' });
      try {
        const b = await replica(STANDBY, { host: '127.0.0.2', port: a.port });
        return { a, b, port: a.port };
      } catch {
        await a.close(); // that port was taken on 127.0.0.2: try another
      }
    }
    throw new Error('no port free on both 127.0.0.1 and 127.0.0.2');
  }

  it('opens one link per address, and re-resolution adds and removes links', async () => {
    const { a, b, port } = await twoAddresses();
    const both: ResolvedAddress[] = [
      { address: '127.0.0.1', family: 4 },
      { address: '127.0.0.2', family: 4 },
      { address: '::1', family: 6 }, // a dual-stack answer: IPv4 is used, each replica once
    ];
    let answer = both;
    const asked: string[] = [];
    const resolve: HostResolver = async (host) => {
      asked.push(host);
      return answer;
    };
    const { set } = links([`ws://replicas.test:${port}`], { resolve });
    const [ha, hb] = await Promise.all([welcomed(a), welcomed(b)]);
    expect(ha.body === 'hello' && hb.body === 'hello').toBe(true);
    // Host header stays the name; the socket went to each address.
    expect(a.upgrades[0]!.host).toBe(`replicas.test:${port}`);
    expect(b.upgrades[0]!.host).toBe(`replicas.test:${port}`);
    expect(set.links.sort()).toEqual([
      `ws://replicas.test:${port}/worker-listen@127.0.0.1`,
      `ws://replicas.test:${port}/worker-listen@127.0.0.2`,
    ]);

    answer = [{ address: '127.0.0.1', family: 4 }]; // replica b's pod went away
    await set.refresh();
    await expect.poll(() => b.closeCodes).toEqual([1000]);
    expect(set.links).toEqual([`ws://replicas.test:${port}/worker-listen@127.0.0.1`]);

    answer = both; // it is back (or a new one came)
    await set.refresh();
    await expect.poll(() => b.bodies('hello').length).toBe(2);
    expect(set.links).toHaveLength(2);

    // A reconnect resolves the name again.
    const before = asked.length;
    a.dropWorker();
    await expect.poll(() => asked.length).toBeGreaterThan(before);
    expect(asked.every((h) => h === 'replicas.test')).toBe(true);
  });

  it('resolves again every resolveMs on its own', async () => {
    const { a, b, port } = await twoAddresses();
    let answer: ResolvedAddress[] = [{ address: '127.0.0.1', family: 4 }];
    const { set } = links([`ws://replicas.test:${port}`], { resolve: async () => answer, resolveMs: 20 });
    await welcomed(a);
    answer = [...answer, { address: '127.0.0.2', family: 4 }]; // a second replica appears
    await welcomed(b);
    expect(set.links).toHaveLength(2);
  });

  it('keeps its links when the name stops resolving, and starts with one link when it never did', async () => {
    const a = await replica({});
    let fail = false;
    const resolve: HostResolver = async () => {
      if (fail) throw new Error('ENOTFOUND');
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const { set, records } = links([`http://dispatcher.test:${a.port}`], { resolve });
    await welcomed(a);
    fail = true;
    await set.refresh();
    expect(set.links).toEqual([`ws://dispatcher.test:${a.port}/worker-listen@127.0.0.1`]);
    expect(records.some((r) => r.event === 'dispatcher_resolve_failed')).toBe(true);
    expect(a.connected).toBe(true);

    const never = links([`http://nowhere.test:1`], { resolve: () => Promise.reject(new Error('ENOTFOUND')) });
    await expect.poll(() => never.set.links).toEqual(['ws://nowhere.test:1/worker-listen']);
  });
});

describe('startWorker with dispatcherUrls', () => {
  it('links to every replica with the same Worker-Id', async () => {
    const a = await replica(LEADER_1);
    const b = await replica(STANDBY);
    const worker = await startWorker({
      dispatcherUrls: [a.url, b.url],
      workerId: 'w-urls',
      tritonUrl: 'none',
      logger: silent,
    });
    cleanups.push(() => worker.close());
    await Promise.all([welcomed(a), welcomed(b)]);
    expect(a.upgrades[0]!['worker-id']).toBe('w-urls');
    expect(b.upgrades[0]!['worker-id']).toBe('w-urls');
    const t = runTask(a, 1, 'echo');
    expect((await a.result(t)).error).toBeUndefined();
  });

  it('needs at least one URL', async () => {
    await expect(startWorker({ tritonUrl: 'none', logger: silent })).rejects.toThrow(
      'startWorker: dispatcherUrl is required',
    );
  });
});
