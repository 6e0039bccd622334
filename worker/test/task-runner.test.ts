import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateDemoModels } from '@smart-routing/model-repo';
import type { RunTask } from '@smart-routing/proto';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TaskError } from '../src/errors.js';
import { echoHandler } from '../src/handlers/echo.js';
import { ModelCache } from '../src/handlers/model-cache.js';
import { createHandlerRegistry } from '../src/handlers/registry.js';
import type { TaskHandler } from '../src/handlers/types.js';
import { LabelManager, type LabelChange } from '../src/label-manager.js';
import { startModelServer, type ModelServerHandle } from '../src/model-server/index.js';
import { TaskRunner, type TaskOutcome } from '../src/task-runner.js';
import { TritonClient } from '../src/triton-client.js';
import { memoryLogger } from './helpers/fake-dispatcher.js';

// The task runner without any socket: RunTasks in, outcomes out.

const silent = pino({ level: 'silent' });

let seq = 0;
function task(fields: Partial<RunTask> = {}): RunTask {
  return {
    taskId: `t${++seq}`,
    taskType: 'echo',
    label: 'label-1',
    parametersJson: '{"n":1}',
    evictLabel: '',
    attempt: 1,
    deadlineUnixMs: 0,
    ...fields,
  };
}

/** A label-bound handler that waits until the test lets it finish. */
function gate(taskType = 'wait') {
  const pending: (() => void)[] = [];
  const handler: TaskHandler = {
    taskType,
    labelFree: false,
    parse: (p) => p,
    run: () => new Promise((resolve) => pending.push(() => resolve({ done: true }))),
  };
  return { handler, pending, release: () => pending.splice(0).forEach((f) => f()) };
}

function setup(
  options: {
    slots?: number;
    capacity?: number;
    handlers?: TaskHandler[];
    client?: TritonClient;
    logger?: pino.Logger;
  } = {},
) {
  const logger = options.logger ?? silent;
  const labels = new LabelManager({ capacity: options.capacity ?? 2, client: options.client, logger });
  const changes: string[] = [];
  labels.on('change', (c: LabelChange) => changes.push(`${c.kind}:${c.label}`));
  const handlers = new Map((options.handlers ?? [echoHandler]).map((h) => [h.taskType, h] as const));
  const runner = new TaskRunner({
    workerId: 'w-unit',
    slots: options.slots ?? 1,
    labels,
    handlers,
    models: new ModelCache({ client: options.client, modelRepository: '/nonexistent' }),
    client: options.client,
    logger,
  });
  const delivered: TaskOutcome[] = [];
  const deliver = (o: TaskOutcome) => {
    delivered.push(o);
    return true;
  };
  return { runner, labels, changes, delivered, deliver };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('TaskRunner', () => {
  it('rejects slots below 1', () => {
    expect(() => setup({ slots: 0 })).toThrow('TaskRunner: slots must be a positive integer, got 0');
  });

  it('runs a task and delivers its outcome once; the first use of a label is a miss, the next a hit', async () => {
    const { runner, delivered, deliver, labels } = setup();
    const first = await runner.run(task({ taskId: 'a', parametersJson: '{"hello":"world"}' }), deliver);
    expect(first).toEqual({
      taskId: 'a',
      taskType: 'echo',
      label: 'label-1',
      resultJson: '{"echo":{"hello":"world"}}',
      labelMiss: true,
      loadMs: expect.any(Number),
      runMs: expect.any(Number),
    });
    expect(delivered).toEqual([first]);
    const second = await runner.run(task(), deliver);
    expect(second).toMatchObject({ labelMiss: false, loadMs: 0 });
    expect(labels.loaded()).toEqual(['label-1']);
    expect(runner.inFlight).toBe(0);
  });

  it('parses parameters_json once and serialises the result once', async () => {
    let serialised = 0;
    const handler: TaskHandler = {
      taskType: 'count',
      labelFree: false,
      parse: (p) => p,
      run: async () => ({ toJSON: () => (++serialised, { ok: true }) }),
    };
    const { runner, deliver } = setup({ handlers: [handler] });
    const parse = vi.spyOn(JSON, 'parse');
    const outcome = await runner.run(task({ taskType: 'count' }), deliver);
    expect(parse).toHaveBeenCalledTimes(1);
    expect(serialised).toBe(1);
    expect(outcome.resultJson).toBe('{"ok":true}');
  });

  it("carries out the dispatcher's evict_label before loading, instead of its own LRU choice", async () => {
    const { runner, deliver, changes, labels } = setup({ capacity: 2 });
    await runner.run(task({ label: 'a' }), deliver);
    await runner.run(task({ label: 'b' }), deliver);
    changes.length = 0;
    // "a" is least recently used, but the dispatcher says evict "b".
    const r = await runner.run(task({ label: 'c', evictLabel: 'b' }), deliver);
    expect(changes).toEqual(['evicted:b', 'loaded:c']);
    expect(labels.loaded()).toEqual(['c', 'a']);
    expect(r.labelMiss).toBe(true);
  });

  it('delivers while the task still holds its slot, so whenIdle resolves only after the outcome left', async () => {
    const { runner } = setup();
    const events: string[] = [];
    const idle = (async () => {
      await Promise.resolve(); // after run() has taken the slot
      await runner.whenIdle();
      events.push('idle');
    })();
    await runner.run(task(), () => (events.push(`deliver:${runner.inFlight}`), true));
    await idle;
    expect(events).toEqual(['deliver:1', 'idle']);
  });

  it('answers no_slot while every slot is busy, and whenIdle waits for the running task', async () => {
    const g = gate();
    const { runner, deliver, delivered } = setup({ slots: 1, handlers: [g.handler, echoHandler] });
    const running = runner.run(task({ taskType: 'wait', taskId: 'slow' }), deliver);
    await expect.poll(() => g.pending.length).toBe(1);
    expect(runner.inFlight).toBe(1);
    const busy = await runner.run(task({ taskId: 'busy' }), deliver);
    expect(busy).toEqual({
      taskId: 'busy',
      taskType: 'echo',
      label: 'label-1',
      error: { code: 'no_slot', message: 'all 1 task slots are busy' },
      labelMiss: false,
      loadMs: 0,
      runMs: 0,
    });
    let idle = false;
    const idling = runner.whenIdle().then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    g.release();
    expect((await running).resultJson).toBe('{"done":true}');
    await idling;
    expect(runner.inFlight).toBe(0);
    expect(delivered.map((o) => o.taskId)).toEqual(['busy', 'slow']);
  });

  it('refuse answers without a slot, a label or timing', () => {
    const { runner, deliver, changes } = setup();
    const r = runner.refuse(task(), { code: 'draining', message: 'worker is draining' }, deliver);
    expect(r).toMatchObject({ error: { code: 'draining' }, labelMiss: false, loadMs: 0, runMs: 0 });
    expect(changes).toEqual([]);
    expect(runner.inFlight).toBe(0);
  });

  it('turns bad input into typed errors before loading anything', async () => {
    const { runner, deliver, changes } = setup({ handlers: [echoHandler, gate().handler] });
    const unknown = await runner.run(task({ taskType: 'nope' }), deliver);
    expect(unknown.error).toEqual({
      code: 'unknown_task_type',
      message: 'task type "nope" is not served here (serves echo, wait)',
    });
    const badJson = await runner.run(task({ parametersJson: '{nope' }), deliver);
    expect(badJson.error).toEqual({ code: 'bad_parameters', message: 'parameters_json is not valid JSON' });
    const noLabel = await runner.run(task({ taskType: 'wait', label: '' }), deliver);
    expect(noLabel.error).toEqual({ code: 'bad_parameters', message: 'the task names no label' });
    const badLabel = await runner.run(task({ label: '../etc' }), deliver);
    expect(badLabel.error).toEqual({
      code: 'label_not_found',
      message: '"../etc" is not a valid model name',
    });
    expect(changes).toEqual([]);
  });

  it("reports a handler's TaskError with its code and anything else as internal", async () => {
    const failing = (taskType: string, err: Error): TaskHandler => ({
      taskType,
      labelFree: true,
      parse: (p) => p,
      run: () => Promise.reject(err),
    });
    const { runner, deliver } = setup({
      handlers: [
        failing('typed', new TaskError('inference_failed', 'model said no')),
        failing('bug', new RangeError('oops')),
      ],
    });
    expect((await runner.run(task({ taskType: 'typed', label: '' }), deliver)).error).toEqual({
      code: 'inference_failed',
      message: 'model said no',
    });
    expect((await runner.run(task({ taskType: 'bug', label: '' }), deliver)).error).toEqual({
      code: 'internal',
      message: 'internal error: oops',
    });
  });

  it('logs task_completed once per task, marking a result that could not be sent', async () => {
    const { logger, records } = memoryLogger();
    const { runner } = setup({ logger });
    await runner.run(task({ taskId: 'kept' }), () => true);
    await runner.run(task({ taskId: 'dropped' }), () => false);
    const replaced = await runner.run(task({ taskId: 'replaced' }), () => ({
      code: 'inference_failed',
      message: 'result_too_large: too big',
    }));
    expect(replaced).toMatchObject({ error: { code: 'inference_failed' } });
    expect(replaced.resultJson).toBeUndefined();
    const done = records.filter((r) => r.event === 'task_completed');
    expect(done).toEqual([
      expect.objectContaining({ task_id: 'kept', worker_id: 'w-unit', ok: true, label_miss: true }),
      expect.objectContaining({ task_id: 'dropped', ok: true, label_miss: false, result_dropped: true }),
      expect.objectContaining({
        task_id: 'replaced',
        ok: false,
        error_code: 'inference_failed',
        message: 'result_too_large: too big',
      }),
    ]);
    expect(done[2]).not.toHaveProperty('result_dropped');
    expect(done[0]).not.toHaveProperty('result_dropped');
    expect(records.filter((r) => r.event === 'label_miss')).toEqual([
      expect.objectContaining({ task_id: 'kept', label: 'label-1', load_ms: expect.any(Number) }),
    ]);
  });

  it('without a model server, routes label-free types with labels too (bookkeeping)', async () => {
    const { runner, deliver, changes } = setup({
      handlers: [...createHandlerRegistry({ withModelServer: false }).values()],
    });
    expect(runner.taskTypes).toEqual(['echo']);
    expect(runner.labelFreeTaskTypes).toEqual([]);
    const r = await runner.run(task({ label: 'x' }), deliver);
    expect(r.labelMiss).toBe(true);
    expect(changes).toEqual(['loaded:x']);
    // An echo that names no label still runs, without bookkeeping.
    const bare = await runner.run(task({ label: '' }), deliver);
    expect(bare).toMatchObject({ resultJson: '{"echo":{"n":1}}', labelMiss: false });
    expect(changes).toEqual(['loaded:x']);
  });
});

describe('TaskRunner with a model server', () => {
  let dir: string;
  let server: ModelServerHandle;
  let client: TritonClient;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sr-runner-'));
    await generateDemoModels({ dir, count: 2, sizeMb: 0.05, hiddenSize: 8 });
    server = await startModelServer({ repository: dir, logger: silent });
    client = new TritonClient({ url: server.url });
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('names its label-free task types', () => {
    const { runner } = setup({
      client,
      handlers: [...createHandlerRegistry({ withModelServer: true }).values()],
    });
    expect(runner.taskTypes.sort()).toEqual([
      'echo',
      'embed_texts',
      'infer',
      'kserve_infer',
      'kserve_metadata',
    ]);
    expect(runner.labelFreeTaskTypes).toEqual(['echo']);
  });

  it('ignores label and evict_label of a label-free task: no unload, no load, no miss', async () => {
    const { runner, deliver, labels, changes } = setup({ client, capacity: 2 });
    expect((await labels.load('label-1')) && (await labels.load('label-2'))).toBe(true);
    changes.length = 0;
    const r = await runner.run(task({ label: 'label-9', evictLabel: 'label-1' }), deliver);
    expect(r).toMatchObject({ resultJson: '{"echo":{"n":1}}', labelMiss: false, loadMs: 0 });
    expect(changes).toEqual([]);
    expect(labels.loaded()).toEqual(['label-2', 'label-1']);
    expect(await client.isModelReady('label-1')).toBe(true);
    // Not even a name check: an invalid label on a label-free task is no error.
    const odd = await runner.run(task({ label: '../etc' }), deliver);
    expect(odd.error).toBeUndefined();
    await labels.unload('label-1');
    await labels.unload('label-2');
  });

  it('reports the time a failed load took, as its load_failed event measured it, and no miss', async () => {
    const { runner, deliver, labels, changes } = setup({ client, handlers: [gate('bound').handler] });
    const failed: LabelChange[] = [];
    labels.on('change', (c) => failed.push(c));
    const r = await runner.run(task({ taskType: 'bound', label: 'label-404' }), deliver);
    expect(r.error).toEqual({
      code: 'label_not_found',
      message: 'model repository has no model named "label-404"',
    });
    expect(r.labelMiss).toBe(false);
    expect(changes).toEqual(['load_failed:label-404']);
    expect(r.loadMs).toBeGreaterThan(0);
    expect(r.loadMs).toBe(failed[0]!.durationMs);
  });

  it("reports a miss's load time as the very number its loaded event carries", async () => {
    const bound: TaskHandler = { ...echoHandler, taskType: 'bound', labelFree: false };
    const { runner, deliver, labels } = setup({ client, handlers: [bound] });
    const events: LabelChange[] = [];
    labels.on('change', (c) => events.push(c));
    const r = await runner.run(task({ taskType: 'bound', label: 'label-2' }), deliver);
    expect(events).toEqual([expect.objectContaining({ kind: 'loaded', label: 'label-2' })]);
    expect(r.labelMiss).toBe(true);
    expect(r.loadMs).toBeGreaterThan(0);
    expect(r.loadMs).toBe(events[0]!.durationMs);
    await labels.unload('label-2');
  });
});

describe('TaskRunner#cancel', () => {
  it('aborts the handler signal, answers cancelled and frees the slot at once, even if the handler ignores it', async () => {
    const g = gate();
    let seen: AbortSignal | undefined;
    const stubborn: TaskHandler = {
      ...g.handler,
      run: (params, ctx) => {
        seen = ctx.signal;
        return g.handler.run(params, ctx);
      },
    };
    const { runner, delivered, deliver } = setup({ slots: 1, handlers: [stubborn] });
    const running = runner.run(task({ taskId: 'c1', taskType: 'wait' }), deliver);
    await vi.waitFor(() => expect(seen).toBeDefined(), { timeout: 20_000 });
    expect(runner.inFlight).toBe(1);
    expect(runner.cancel('c1')).toBe(true);
    const outcome = await running;
    expect(seen!.aborted).toBe(true);
    expect(outcome.error).toEqual({ code: 'cancelled', message: 'the dispatcher cancelled the task' });
    expect(delivered.map((o) => o.error?.code)).toEqual(['cancelled']);
    expect(runner.inFlight).toBe(0);
    // The slot is free while the stubborn handler still has not returned.
    expect(g.pending).toHaveLength(1);
    const next = runner.run(task({ taskId: 'c2', taskType: 'wait' }), deliver);
    await vi.waitFor(() => expect(g.pending).toHaveLength(2), { timeout: 20_000 });
    g.release();
    expect((await next).resultJson).toBe('{"done":true}');
  });

  it('ignores unknown and finished task ids', async () => {
    const { runner, deliver } = setup();
    expect(runner.cancel('nope')).toBe(false);
    await runner.run(task({ taskId: 'done1', label: '' }), deliver);
    expect(runner.cancel('done1')).toBe(false);
  });
});
