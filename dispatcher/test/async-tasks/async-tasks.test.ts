import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SIGNATURE_HEADER } from '../../src/async-tasks/callbacks.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryTaskStore } from '../../src/task-store/memory-store.js';
import { SqliteTaskStore } from '../../src/task-store/sqlite-store.js';
import { eventually, get, Harness, nextTaskId, post, task, type HttpAnswer } from '../harness.js';

// The async task API end to end: a real dispatcher on a loopback port, fake workers on real
// WebSockets, a real task store.

const h = new Harness();
afterEach(() => h.cleanup());

async function del(url: string, path: string): Promise<HttpAnswer> {
  const res = await fetch(`${url}${path}`, { method: 'DELETE' });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** Polls GET /tasks/{id} until `done` holds for its document. */
async function waitForTask(
  url: string,
  id: string,
  done: (doc: Record<string, unknown>) => boolean = (d) =>
    !['queued', 'running'].includes(d.status as string),
): Promise<Record<string, unknown>> {
  let doc: Record<string, unknown> = {};
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const answer = await get(url, `/tasks/${encodeURIComponent(id)}`);
    expect(answer.status).toBe(200);
    doc = answer.body as Record<string, unknown>;
    if (done(doc)) return doc;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`task ${id} stayed ${String(doc.status)}`);
}

async function metric(url: string, line: RegExp): Promise<number> {
  const text = (await get(url, '/metrics')).body as string;
  const m = text.split('\n').find((l) => line.test(l));
  return m === undefined ? 0 : Number(m.split(' ').pop());
}

describe('POST /send-task', () => {
  it('answers 202 once the task is stored, then runs it; GET /tasks/{id} shows the result', async () => {
    const store = new MemoryTaskStore();
    const d = await h.dispatcher({ taskStore: store });
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'] });
    const body = task('a');
    const id = body.task_id as string;
    const answer = await post(d.url, '/send-task', body);
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ task_id: id, status: 'queued', status_url: `/tasks/${id}` });
    expect(answer.headers.get('location')).toBe(`/tasks/${id}`);
    expect((await store.get(id))?.mode).toBe('async');
    const doc = await waitForTask(d.url, id);
    expect(doc).toMatchObject({
      task_id: id,
      status: 'completed',
      mode: 'async',
      attempts: 1,
      worker_id: 'w1',
      label_miss: false,
      result: { echo: { texts: ['hi'] }, worker: 'w1' },
      error: null,
    });
    expect(typeof doc.finished_at).toBe('string');
    expect(w.received.map((t) => t.taskId)).toEqual([id]);
    await store.close();
  });

  it("keeps the API key's name as the task's tenant, as /run-task does", async () => {
    const store = new MemoryTaskStore();
    const d = await h.dispatcher({ taskStore: store, namedApiKeys: { team_a: 'key-a' } });
    await h.worker({ url: d.url, id: 'w1', labels: ['a'] });
    const body = task('a');
    const id = body.task_id as string;
    expect((await post(d.url, '/send-task', body)).status).toBe(401);
    const answer = await post(d.url, '/send-task', body, { authorization: 'Bearer key-a' });
    expect(answer.status).toBe(202);
    expect((await store.get(id))?.tenant).toBe('team_a');
    await store.close();
  });

  it('refuses bad bodies with catalog errors and stores nothing', async () => {
    const store = new MemoryTaskStore();
    const d = await h.dispatcher({ taskStore: store });
    await h.worker({ url: d.url, id: 'w1', labels: ['a'] });
    const cases: [Record<string, unknown> | string, string][] = [
      [task('a', { priority: 10 }), 'invalid_request'],
      [task('a', { priority: 1.5 }), 'invalid_request'],
      [task('a', { callback_url: 'ftp://example.com/x' }), 'invalid_request'],
      [task('a', { ttl_s: 0 }), 'invalid_request'],
      [task('a', { parameters_json: '{nope' }), 'invalid_parameters_json'],
      [task('a', { task_type: 'nobody-serves-this' }), 'unknown_task_type'],
      ['{"task_id":', 'invalid_request'],
    ];
    for (const [body, code] of cases) {
      const answer = await post(d.url, '/send-task', body);
      expect(answer.status, code).toBe(code === 'unknown_task_type' || code.startsWith('invalid') ? 400 : 0);
      expect(answer.body.error.code).toBe(code);
    }
    expect((await store.list({})).tasks).toEqual([]);
    expect((await get(d.url, '/tasks/nope')).body.error.code).toBe('task_not_found');
    expect((await del(d.url, '/tasks/nope')).status).toBe(404);
    const wrong = await fetch(`${d.url}/send-task`, { method: 'GET' });
    expect(wrong.status).toBe(405);
    await store.close();
  });

  it('needs an API key when API_KEYS is set, like /run-task', async () => {
    const d = await h.dispatcher({ apiKeys: ['k1'] });
    const body = task('a');
    expect((await post(d.url, '/send-task', body)).status).toBe(401);
    expect((await get(d.url, `/tasks/${body.task_id as string}`)).status).toBe(401);
    expect((await get(d.url, '/tasks')).status).toBe(401);
    expect((await post(d.url, '/send-task', body, { authorization: 'Bearer k1' })).status).toBe(202);
  });
});

describe('idempotency by task_id', () => {
  it('a completed id returns the stored outcome on /send-task and /run-task without running again', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'] });
    const body = task('a');
    const id = body.task_id as string;
    expect((await post(d.url, '/send-task', body)).status).toBe(202);
    await waitForTask(d.url, id);
    const again = await post(d.url, '/send-task', body);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ task_id: id, status: 'completed', result: { worker: 'w1' } });
    const sync = await post(d.url, '/run-task', body);
    expect(sync.status).toBe(200);
    expect(sync.body).toMatchObject({ task_id: id, status: 'completed', result: { worker: 'w1' } });
    expect(w.received).toHaveLength(1);
  });

  it('a completed /run-task id is answered from the store on retry', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'] });
    const body = task('a');
    const first = await post(d.url, '/run-task', body);
    expect(first.status).toBe(200);
    const retry = await post(d.url, '/run-task', body);
    expect(retry.status).toBe(200);
    // The stored outcome: the same answer, but no work was done for it this time.
    expect(retry.body).toEqual({ ...first.body, load_ms: 0, run_ms: 0 });
    expect(w.received).toHaveLength(1);
    expect((await get(d.url, `/tasks/${body.task_id as string}`)).body).toMatchObject({ mode: 'sync' });
  });

  it('an async id in flight is 409 duplicate_task_id on /run-task and its status on /send-task', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'], answer: false });
    const body = task('a');
    expect((await post(d.url, '/send-task', body)).status).toBe(202);
    await w.waitForTasks(1);
    const sync = await post(d.url, '/run-task', body);
    expect(sync.status).toBe(409);
    expect(sync.body.error.code).toBe('duplicate_task_id');
    const again = await post(d.url, '/send-task', body);
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('running');
    expect(w.received).toHaveLength(1);
  });
});

describe('DELETE /tasks/{id}', () => {
  it('takes a queued task out of its queue: it ends cancelled and is never sent', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'], answer: false });
    const busy = task('a');
    const queued = task('a');
    expect((await post(d.url, '/send-task', busy)).status).toBe(202);
    await w.waitForTasks(1);
    expect((await post(d.url, '/send-task', queued)).status).toBe(202);
    await eventually(() => d.router.queueDepths().get('a') === 1);
    const answer = await del(d.url, `/tasks/${queued.task_id as string}`);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ status: 'cancelled', error: { code: 'task_cancelled' } });
    // Free the slot: the cancelled task must not be what comes next.
    w.send({
      taskResult: { taskId: busy.task_id as string, label: 'a', resultJson: '1', loadedLabels: ['a'] },
    });
    await waitForTask(d.url, busy.task_id as string);
    expect(w.received.map((t) => t.taskId)).toEqual([busy.task_id]);
  });

  it('sends CancelTask to the worker of a running task; the late results change nothing', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'], answer: false });
    const body = task('a');
    const id = body.task_id as string;
    await post(d.url, '/send-task', body);
    await w.waitForTasks(1);
    await waitForTask(d.url, id, (doc) => doc.status === 'running');
    const answer = await del(d.url, `/tasks/${id}`);
    expect(answer.body.status).toBe('cancelled');
    const frame = await w.waitFor((f) => f.body === 'cancelTask');
    expect(frame.body === 'cancelTask' && frame.cancelTask.taskId).toBe(id);
    w.send({
      taskResult: { taskId: id, label: 'a', error: { code: 'cancelled', message: 'x' }, loadedLabels: ['a'] },
    });
    w.send({ taskResult: { taskId: id, label: 'a', resultJson: '2', loadedLabels: ['a'] } });
    // The slot is free again: a new task reaches the worker.
    const next = task('a');
    await post(d.url, '/send-task', next);
    await w.waitForTasks(2);
    expect(w.received.map((t) => t.taskId)).toEqual([id, next.task_id]);
    expect((await get(d.url, `/tasks/${id}`)).body.status).toBe('cancelled');
    // Deleting an ended task leaves it as it ended.
    expect((await del(d.url, `/tasks/${id}`)).body.status).toBe('cancelled');
  });
});

describe('priority', () => {
  it('serves the backlog highest priority first, FIFO within a priority', async () => {
    const d = await h.dispatcher();
    const ids: string[] = [];
    for (const priority of [0, 0, 9, 5, 9]) {
      const body = task('a', { priority, task_id: `${nextTaskId()}-p${priority}` });
      ids.push(body.task_id as string);
      expect((await post(d.url, '/send-task', body)).status).toBe(202);
    }
    // Workers come later (as after a restart): the backlog decides the order.
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'] });
    await w.waitForTasks(5);
    expect(w.received.map((t) => t.taskId)).toEqual([ids[2], ids[4], ids[3], ids[0], ids[1]]);
  });

  it('orders a label queue: a later high-priority task goes before waiting low ones', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'], answer: false });
    const first = task('a');
    await post(d.url, '/send-task', first);
    await w.waitForTasks(1);
    const low = task('a', { priority: 1 });
    const high = task('a', { priority: 8 });
    await post(d.url, '/send-task', low);
    await eventually(() => d.router.queueDepths().get('a') === 1);
    await post(d.url, '/send-task', high);
    await eventually(() => d.router.queueDepths().get('a') === 2);
    w.send({
      taskResult: { taskId: first.task_id as string, label: 'a', resultJson: '1', loadedLabels: ['a'] },
    });
    await w.waitForTasks(2);
    expect(w.received[1]!.taskId).toBe(high.task_id);
  });
});

describe('durability', () => {
  it('a restarted dispatcher re-queues the store’s unfinished tasks (queued and running) before new ones', async () => {
    const store = new MemoryTaskStore();
    const first = await h.dispatcher({ taskStore: store });
    const hang = await h.worker({ url: first.url, id: 'w-old', labels: ['a'], answer: false });
    const running = task('a');
    await post(first.url, '/send-task', running);
    await hang.waitForTasks(1);
    await waitForTask(first.url, running.task_id as string, (doc) => doc.status === 'running');
    const queued = [task('a'), task('a'), task('a')];
    for (const b of queued) expect((await post(first.url, '/send-task', b)).status).toBe(202);
    await first.close();
    await hang.close();
    expect((await store.unfinished()).map((t) => t.taskId)).toEqual([
      running.task_id,
      ...queued.map((b) => b.task_id),
    ]);

    const second = await h.dispatcher({ taskStore: store });
    const fresh = task('a');
    expect((await post(second.url, '/send-task', fresh)).status).toBe(202);
    const w = await h.worker({ url: second.url, id: 'w-new', labels: ['a'] });
    await w.waitForTasks(5);
    expect(w.received.map((t) => t.taskId)).toEqual([
      running.task_id,
      ...queued.map((b) => b.task_id),
      fresh.task_id,
    ]);
    for (const b of [running, ...queued, fresh]) {
      const doc = await waitForTask(second.url, b.task_id as string);
      expect(doc.status).toBe('completed');
    }
    expect((await waitForTask(second.url, running.task_id as string)).attempts).toBe(2);
    await store.close();
  });

  it('keeps accepted tasks in a SQLite file across a restart with a new store on the same file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sr-async-sqlite-'));
    try {
      const path = join(dir, 'tasks.sqlite');
      const store1 = new SqliteTaskStore({ path });
      const first = await h.dispatcher({ taskStore: store1 });
      const bodies = [task('a', { priority: 2 }), task('a'), task('a', { priority: 7 })];
      for (const b of bodies) expect((await post(first.url, '/send-task', b)).status).toBe(202);
      await first.close();
      await store1.close();

      const store2 = new SqliteTaskStore({ path });
      const second = await h.dispatcher({ taskStore: store2 });
      const w = await h.worker({ url: second.url, id: 'w1', labels: ['a'] });
      await w.waitForTasks(3);
      expect(w.received.map((t) => t.taskId)).toEqual([
        bodies[2]!.task_id,
        bodies[0]!.task_id,
        bodies[1]!.task_id,
      ]);
      for (const b of bodies)
        expect((await waitForTask(second.url, b.task_id as string)).status).toBe('completed');
      await second.close();
      await store2.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stores a result that arrives twice once', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({ url: d.url, id: 'w1', labels: ['a'], answer: false });
    const body = task('a');
    const id = body.task_id as string;
    await post(d.url, '/send-task', body);
    await w.waitForTasks(1);
    const result = { taskId: id, label: 'a', resultJson: '{"n":1}', loadedLabels: ['a'] };
    w.send({ taskResult: result });
    w.send({ taskResult: { ...result, resultJson: '{"n":2}' } });
    const doc = await waitForTask(d.url, id);
    expect(doc.result).toEqual({ n: 1 });
    // Both results were read (the second one too) before the counter is checked.
    await post(d.url, '/send-task', task('a'));
    await w.waitForTasks(2);
    expect(await metric(d.url, /^smart_routing_results_stored_total\{status="completed"\}/)).toBe(1);
  });
});

describe('callbacks', () => {
  let receiver: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve())));

  it('POSTs the final status, signed with CALLBACK_SECRET, retried after a 5xx', async () => {
    const secret = 'shh-test-secret';
    const got: { body: string; signature: string; status: number }[] = [];
    receiver = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        // The first try fails: the dispatcher must come back.
        const status = got.length === 0 ? 503 : 204;
        got.push({ body, signature: String(req.headers[SIGNATURE_HEADER.toLowerCase()]), status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
    const port = (receiver.address() as AddressInfo).port;
    const d = await h.dispatcher({ asyncTasks: { callbackSecret: secret, callbackBackoffMs: 5 } });
    await h.worker({ url: d.url, id: 'w1', labels: ['a'] });
    const body = task('a', { callback_url: `http://127.0.0.1:${port}/hook` });
    await post(d.url, '/send-task', body);
    await eventually(() => got.length === 2, 10_000);
    for (const g of got) {
      // Verified as a receiver would: HMAC-SHA256 over "<t>.<raw body>".
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(g.signature);
      expect(m).not.toBeNull();
      const expected = createHmac('sha256', secret).update(`${m![1]}.${g.body}`).digest();
      expect(timingSafeEqual(expected, Buffer.from(m![2]!, 'hex'))).toBe(true);
      expect(JSON.parse(g.body)).toMatchObject({ task_id: body.task_id, status: 'completed' });
    }
    await eventually(() => got.length === 2);
    expect(await metric(d.url, /^smart_routing_callbacks_sent_total /)).toBe(1);
  });
});

describe('GET /tasks', () => {
  it('lists newest first, by status, in pages', async () => {
    const d = await h.dispatcher();
    await h.worker({ url: d.url, id: 'w1', labels: ['a'] });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const body = task('a');
      ids.push(body.task_id as string);
      await post(d.url, '/send-task', body);
      await waitForTask(d.url, body.task_id as string);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/tasks?status=completed&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await get(d.url, q);
      expect(page.status).toBe(200);
      expect(page.body.tasks.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.tasks.map((t: { task_id: string }) => t.task_id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    expect((await get(d.url, '/tasks?status=queued')).body.tasks).toEqual([]);
    expect((await get(d.url, '/tasks?status=bogus')).body.error.code).toBe('invalid_request');
    expect((await get(d.url, '/tasks?cursor=garbage')).body.error.code).toBe('invalid_request');
    expect(await metric(d.url, /^smart_routing_async_tasks\{status="completed"\}/)).toBe(5);
  });
});
