import { PROTOCOL_VERSION } from '@smart-routing/proto';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { WorkerConnection, workerListenUrl } from '../src/connection.js';
import { ModelCache } from '../src/handlers/model-cache.js';
import { echoHandler } from '../src/handlers/echo.js';
import { parseWith, type TaskHandler } from '../src/handlers/types.js';
import { LabelManager } from '../src/label-manager.js';
import { TaskRunner } from '../src/task-runner.js';
import { startWorker, type WorkerHandle } from '../src/worker.js';
import { FakeDispatcher, memoryLogger } from './helpers/fake-dispatcher.js';

const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  options: {
    maxLabels?: number;
    slots?: number;
    heartbeatIntervalMs?: number;
    token?: string;
    workerToken?: string;
  } = {},
) {
  const dispatcher = await FakeDispatcher.start({
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1000,
    token: options.token,
  });
  cleanups.push(() => dispatcher.close());
  const { logger, records } = memoryLogger();
  const worker: WorkerHandle = await startWorker({
    dispatcherUrl: dispatcher.url,
    workerId: 'w-test',
    maxLabels: options.maxLabels ?? 2,
    slots: options.slots ?? 1,
    tritonUrl: 'none',
    workerToken: options.workerToken ?? options.token,
    logger,
    reconnectInitialMs: 20,
    reconnectMaxMs: 100,
  });
  cleanups.push(() => worker.close());
  await dispatcher.waitFor((m) => m.body === 'hello');
  return { dispatcher, worker, records };
}

let taskSeq = 0;
function runTask(
  d: FakeDispatcher,
  fields: { label?: string; evictLabel?: string; taskType?: string; parametersJson?: string } = {},
) {
  const taskId = `t${++taskSeq}`;
  d.send({
    runTask: {
      taskId,
      taskType: fields.taskType ?? 'echo',
      label: fields.label ?? 'label-1',
      parametersJson: fields.parametersJson ?? JSON.stringify({ n: taskSeq }),
      evictLabel: fields.evictLabel ?? '',
      attempt: 1,
    },
  });
  return taskId;
}

describe('workerListenUrl', () => {
  it('turns http(s) bases into ws(s) /worker-listen URLs', () => {
    expect(workerListenUrl('http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/worker-listen');
    expect(workerListenUrl('https://d.example/base/')).toBe('wss://d.example/base/worker-listen');
    expect(workerListenUrl('ws://h:1/worker-listen')).toBe('ws://h:1/worker-listen');
    expect(() => workerListenUrl('ftp://h')).toThrow(/http\(s\) or ws\(s\)/);
  });
});

describe('startWorker (none mode) on a real socket', () => {
  it('sends Hello with its id, capacity, slots, task types and the Worker-Id header', async () => {
    const { dispatcher } = await setup({ maxLabels: 3, slots: 2, token: 's3cret' });
    const hello = (await dispatcher.waitFor((m) => m.body === 'hello')) as Extract<
      Awaited<ReturnType<typeof dispatcher.waitFor>>,
      { body: 'hello' }
    >;
    expect(hello.hello).toEqual({
      protocolVersion: PROTOCOL_VERSION,
      workerId: 'w-test',
      labelCapacity: 3,
      taskSlots: 2,
      loadedLabels: [],
      taskTypes: ['echo'],
      state: 'ready',
      // Without a model server every label is bookkeeping, so echo is routed with one.
      labelFreeTaskTypes: [],
      memoryBudgetBytes: 0,
    });
    expect(dispatcher.upgrades[0]!['worker-id']).toBe('w-test');
    expect(dispatcher.upgrades[0]!.authorization).toBe('Bearer s3cret');
  });

  it('serves custom task types from taskHandlers (label-bound ones only with a model server)', async () => {
    const dispatcher = await FakeDispatcher.start();
    cleanups.push(() => dispatcher.close());
    const upper: TaskHandler<{ s: string }> = {
      taskType: 'upper',
      labelFree: true,
      parse: (p) => parseWith(z.object({ s: z.string() }), p, 'upper'),
      run: async ({ s }) => ({ upper: s.toUpperCase() }),
    };
    const bound: TaskHandler = { ...echoHandler, taskType: 'bound', labelFree: false };
    const worker = await startWorker({
      dispatcherUrl: dispatcher.url,
      workerId: 'w-custom',
      tritonUrl: 'none',
      logger: silent,
      taskHandlers: [upper, bound],
    });
    cleanups.push(() => worker.close());
    const hello = await dispatcher.waitFor((m) => m.body === 'hello');
    expect(hello.body === 'hello' && hello.hello.taskTypes).toEqual(['echo', 'upper']);
    const ok = await dispatcher.result(
      runTask(dispatcher, { taskType: 'upper', parametersJson: '{"s":"hi"}' }),
    );
    expect(ok.resultJson).toBe('{"upper":"HI"}');
    const bad = await dispatcher.result(
      runTask(dispatcher, { taskType: 'upper', parametersJson: '{"s":1}' }),
    );
    expect(bad.error?.code).toBe('bad_parameters');
    await expect(
      startWorker({
        dispatcherUrl: dispatcher.url,
        tritonUrl: 'none',
        logger: silent,
        taskHandlers: [echoHandler],
      }),
    ).rejects.toThrow('startWorker: taskHandlers: duplicate handler for task type "echo"');
  });

  it('keeps retrying while the dispatcher refuses its token', async () => {
    const dispatcher = await FakeDispatcher.start({ token: 'right' });
    cleanups.push(() => dispatcher.close());
    const worker = await startWorker({
      dispatcherUrl: dispatcher.url,
      workerId: 'w-bad',
      tritonUrl: 'none',
      workerToken: 'wrong',
      logger: silent,
      reconnectInitialMs: 10,
      reconnectMaxMs: 20,
    });
    cleanups.push(() => worker.close());
    await expect.poll(() => dispatcher.upgrades.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
    expect(dispatcher.received).toHaveLength(0);
  });

  it('runs RunTask and answers TaskResult; the first use of a label is a miss', async () => {
    const { dispatcher, records } = await setup();
    const t1 = runTask(dispatcher, { parametersJson: '{"hello":"world"}' });
    const r1 = await dispatcher.result(t1);
    expect(JSON.parse(r1.resultJson!)).toEqual({ echo: { hello: 'world' } });
    expect(r1).toMatchObject({ label: 'label-1', labelMiss: true, loadedLabels: ['label-1'] });
    const t2 = runTask(dispatcher);
    const r2 = await dispatcher.result(t2);
    expect(r2.labelMiss).toBe(false);
    expect(r2.loadMs).toBe(0);
    expect(r2.runMs).toBeGreaterThanOrEqual(0);
    // The contract's log events, with worker_id.
    expect(records.filter((r) => r.event === 'label_miss')).toEqual([
      expect.objectContaining({
        label: 'label-1',
        task_id: t1,
        worker_id: 'w-test',
        load_ms: expect.any(Number),
      }),
    ]);
    expect(records.filter((r) => r.event === 'task_completed')).toEqual([
      expect.objectContaining({
        task_id: t1,
        label: 'label-1',
        worker_id: 'w-test',
        label_miss: true,
        ok: true,
        runtime_ms: expect.any(Number),
      }),
      expect.objectContaining({ task_id: t2, label_miss: false, ok: true }),
    ]);
    expect(
      records.some(
        (r) => r.event === 'label_loaded' && r.label === 'label-1' && typeof r.duration_ms === 'number',
      ),
    ).toBe(true);
  });

  it('honours the eviction order: LabelEvent evicted before loaded, then TaskResult', async () => {
    const { dispatcher } = await setup({ maxLabels: 2 });
    await dispatcher.result(runTask(dispatcher, { label: 'a' }));
    await dispatcher.result(runTask(dispatcher, { label: 'b' }));
    const from = dispatcher.received.length;
    // "a" is least recently used, but the dispatcher says evict "b".
    const t = runTask(dispatcher, { label: 'c', evictLabel: 'b' });
    const result = await dispatcher.result(t, from);
    const frames = dispatcher.received.slice(from).filter((m) => m.body !== 'heartbeat');
    expect(
      frames.map((m) => (m.body === 'labelEvent' ? `${m.labelEvent.kind}:${m.labelEvent.label}` : m.body)),
    ).toEqual(['evicted:b', 'loaded:c', 'taskResult']);
    expect(result.loadedLabels).toEqual(['c', 'a']);
    expect(result.labelMiss).toBe(true);
  });

  it('evicts its own least recently used label when the dispatcher gives no order', async () => {
    const { dispatcher } = await setup({ maxLabels: 2 });
    await dispatcher.result(runTask(dispatcher, { label: 'a' }));
    await dispatcher.result(runTask(dispatcher, { label: 'b' }));
    await dispatcher.result(runTask(dispatcher, { label: 'a' })); // a is now the most recent
    const from = dispatcher.received.length;
    const result = await dispatcher.result(runTask(dispatcher, { label: 'c' }), from);
    const events = dispatcher
      .bodies('labelEvent', from)
      .map((m) => `${m.labelEvent.kind}:${m.labelEvent.label}`);
    expect(events).toEqual(['evicted:b', 'loaded:c']);
    expect(result.loadedLabels).toEqual(['c', 'a']);
  });

  it('carries out LabelOrder load and unload and reports them', async () => {
    const { dispatcher } = await setup();
    dispatcher.send({ labelOrder: { action: 'load', label: 'x' } });
    const loaded = await dispatcher.waitFor((m) => m.body === 'labelEvent' && m.labelEvent.kind === 'loaded');
    expect(loaded.body === 'labelEvent' && loaded.labelEvent).toMatchObject({
      label: 'x',
      loadedLabels: ['x'],
    });
    dispatcher.send({ labelOrder: { action: 'unload', label: 'x' } });
    const evicted = await dispatcher.waitFor(
      (m) => m.body === 'labelEvent' && m.labelEvent.kind === 'evicted',
    );
    expect(evicted.body === 'labelEvent' && evicted.labelEvent).toMatchObject({
      label: 'x',
      loadedLabels: [],
    });
  });

  it('answers Ping with a Heartbeat carrying the ping id', async () => {
    const { dispatcher } = await setup();
    await dispatcher.result(runTask(dispatcher, { label: 'p' }));
    dispatcher.send({ ping: { pingId: 4242 } });
    const hb = await dispatcher.waitFor((m) => m.body === 'heartbeat' && m.heartbeat.pingId === 4242);
    expect(hb.body === 'heartbeat' && hb.heartbeat).toEqual({
      pingId: 4242,
      inFlight: 0,
      state: 'ready',
      loadedLabels: ['p'],
      // Nothing runs now (issue 13: a new leader adopts the tasks listed here).
      runningTaskIds: [],
    });
  });

  it('sends heartbeats on its own at the interval from Welcome', async () => {
    const { dispatcher } = await setup({ heartbeatIntervalMs: 30 });
    await expect
      .poll(() => dispatcher.bodies('heartbeat').length, { timeout: 20_000 })
      .toBeGreaterThanOrEqual(4);
    expect(dispatcher.bodies('heartbeat').every((m) => m.heartbeat.pingId === 0)).toBe(true);
  });

  it('reconnects after the dispatcher restarts and says Hello again with what is loaded', async () => {
    const { dispatcher } = await setup();
    await dispatcher.result(runTask(dispatcher, { label: 'a' }));
    await dispatcher.result(runTask(dispatcher, { label: 'b' }));
    const port = dispatcher.port;
    await dispatcher.close();
    const again = await FakeDispatcher.start({ port });
    cleanups.push(() => again.close());
    const hello = await again.waitFor((m) => m.body === 'hello');
    expect(hello.body === 'hello' && hello.hello.loadedLabels).toEqual(['b', 'a']);
    const r = await again.result(runTask(again, { label: 'b' }));
    expect(r.labelMiss).toBe(false);
  });

  it('survives malformed frames', async () => {
    const { dispatcher, records } = await setup();
    dispatcher.raw(new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02]));
    dispatcher.raw('not protobuf');
    dispatcher.raw(new Uint8Array([]));
    dispatcher.send({ ping: { pingId: 7 } });
    await dispatcher.waitFor((m) => m.body === 'heartbeat' && m.heartbeat.pingId === 7);
    expect(records.filter((r) => r.event === 'malformed_frame').length).toBe(3);
  });

  it('rejects unknown task types and bad parameters with typed errors', async () => {
    const { dispatcher } = await setup();
    const unknown = await dispatcher.result(runTask(dispatcher, { taskType: 'embed_texts' }));
    expect(unknown.error).toEqual({
      code: 'unknown_task_type',
      message: expect.stringContaining('embed_texts'),
    });
    expect(unknown.loadedLabels).toEqual([]);
    const bad = await dispatcher.result(runTask(dispatcher, { parametersJson: '{nope' }));
    expect(bad.error?.code).toBe('bad_parameters');
    const badLabel = await dispatcher.result(runTask(dispatcher, { label: '../etc' }));
    expect(badLabel.error?.code).toBe('label_not_found');
  });

  it('drains on a Drain frame: heartbeat says draining, new tasks get draining', async () => {
    const { dispatcher } = await setup();
    dispatcher.send({ drain: { reason: 'test' } });
    await dispatcher.waitFor((m) => m.body === 'heartbeat' && m.heartbeat.state === 'draining');
    const r = await dispatcher.result(runTask(dispatcher));
    expect(r.error?.code).toBe('draining');
  });
});

describe('WorkerConnection with a slow handler', () => {
  /** A handler that waits until the test releases it. */
  function gate() {
    const pending: (() => void)[] = [];
    const handler: TaskHandler = {
      taskType: 'wait',
      labelFree: true,
      parse: (p) => p,
      run: () => new Promise((resolve) => pending.push(() => resolve({ done: true }))),
    };
    return { handler, release: () => pending.splice(0).forEach((f) => f()), pending };
  }

  async function connect(slots: number) {
    const dispatcher = await FakeDispatcher.start({ heartbeatIntervalMs: 20 });
    cleanups.push(() => dispatcher.close());
    const g = gate();
    const labels = new LabelManager({ capacity: 2, logger: silent });
    const runner = new TaskRunner({
      workerId: 'w-slow',
      slots,
      labels,
      handlers: new Map([
        ['wait', g.handler],
        ['echo', echoHandler],
      ]),
      models: new ModelCache({ client: undefined, modelRepository: '/nonexistent' }),
      client: undefined,
      logger: silent,
    });
    const connection = new WorkerConnection({
      dispatcherUrl: dispatcher.url,
      workerId: 'w-slow',
      runner,
      labels,
      logger: silent,
    });
    cleanups.push(() => connection.close());
    connection.start();
    await dispatcher.waitFor((m) => m.body === 'hello');
    return { dispatcher, connection, ...g };
  }

  it('answers no_slot when every slot is busy', async () => {
    const { dispatcher, release, pending } = await connect(1);
    const t1 = runTask(dispatcher, { taskType: 'wait' });
    await expect.poll(() => pending.length).toBe(1);
    const busy = await dispatcher.result(runTask(dispatcher, { taskType: 'echo' }));
    expect(busy.error?.code).toBe('no_slot');
    // The next heartbeat after the refusal: the waiting task still holds its slot.
    const hb = await dispatcher.waitFor((m) => m.body === 'heartbeat', dispatcher.received.length);
    expect(hb.body === 'heartbeat' && hb.heartbeat).toMatchObject({ inFlight: 1, state: 'ready' });
    release();
    expect((await dispatcher.result(t1)).resultJson).toBe('{"done":true}');
  });

  it('drain() waits for tasks in flight, reports draining, and then close() says 1000', async () => {
    const { dispatcher, connection, release, pending } = await connect(2);
    const t1 = runTask(dispatcher, { taskType: 'wait' });
    await expect.poll(() => pending.length).toBe(1);
    let drained = false;
    const draining = connection.drain().then(() => (drained = true));
    await dispatcher.waitFor(
      (m) => m.body === 'heartbeat' && m.heartbeat.state === 'draining' && m.heartbeat.inFlight === 1,
    );
    const refused = await dispatcher.result(runTask(dispatcher, { taskType: 'echo' }));
    expect(refused.error?.code).toBe('draining');
    expect(drained).toBe(false);
    release();
    await draining;
    expect((await dispatcher.result(t1)).resultJson).toBe('{"done":true}');
    await connection.close();
    await connection.close(); // twice is fine
    expect(connection.connected).toBe(false);
  });
});

describe('CancelTask', () => {
  it('aborts the running handler, answers cancelled and takes the next task at once', async () => {
    const dispatcher = await FakeDispatcher.start();
    cleanups.push(() => dispatcher.close());
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    let aborted = false;
    const hang: TaskHandler = {
      taskType: 'hang',
      labelFree: true,
      parse: (p) => p,
      // Ends only when its signal aborts, as a model-server call given the signal does.
      run: (_p, { signal }) => {
        started();
        return new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('aborted'));
          }),
        );
      },
    };
    const worker = await startWorker({
      dispatcherUrl: dispatcher.url,
      workerId: 'w-cancel',
      tritonUrl: 'none',
      slots: 1,
      logger: silent,
      taskHandlers: [hang],
    });
    cleanups.push(() => worker.close());
    await dispatcher.waitFor((m) => m.body === 'hello');
    const id = runTask(dispatcher, { taskType: 'hang', parametersJson: '{}' });
    await running;
    dispatcher.send({ cancelTask: { taskId: id } });
    const result = await dispatcher.result(id);
    expect(result.error?.code).toBe('cancelled');
    expect(aborted).toBe(true);
    // The only slot is free: an echo runs now.
    const next = await dispatcher.result(runTask(dispatcher, { parametersJson: '{"n":2}' }));
    expect(next.resultJson).toBe('{"echo":{"n":2}}');
    // A cancel for a task not running here is ignored.
    dispatcher.send({ cancelTask: { taskId: 'unknown' } });
    const after = await dispatcher.result(runTask(dispatcher, { parametersJson: '{"n":3}' }));
    expect(after.resultJson).toBe('{"echo":{"n":3}}');
  });
});
