import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Harness, get, post, task } from './harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

describe('POST /run-task input validation', () => {
  const cases: [string, string | Record<string, unknown>, string, RegExp][] = [
    ['a body that is not JSON', '{"task_id": ', 'invalid_request', /not valid JSON/],
    ['a JSON array', '[1,2]', 'invalid_request', /expected object/],
    [
      'a missing field',
      { task_id: 't', task_type: 'echo', label: 'a' },
      'invalid_request',
      /parameters_json/,
    ],
    [
      'a wrong type',
      { task_id: 7, task_type: 'echo', label: 'a', parameters_json: '{}' },
      'invalid_request',
      /task_id/,
    ],
    [
      'an empty task_id',
      { task_id: '', task_type: 'echo', label: 'a', parameters_json: '{}' },
      'invalid_request',
      /task_id/,
    ],
    ['a task_id over 200 chars', { ...task('a'), task_id: 'x'.repeat(201) }, 'invalid_request', /task_id/],
    [
      'parameters_json that is not JSON',
      { ...task('a'), parameters_json: '{nope' },
      'invalid_parameters_json',
      /parameters_json/,
    ],
  ];
  for (const [what, body, code, message] of cases) {
    it(`answers 400 ${code} to ${what}`, async () => {
      const d = await h.dispatcher();
      const res = await post(d.url, '/run-task', body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.message).toMatch(message);
    });
  }

  it('answers 400 to a body over the size limit, as JSON', async () => {
    const d = await h.dispatcher({ maxBodyBytes: 2048 });
    const res = await post(
      d.url,
      '/run-task',
      task('a', { parameters_json: JSON.stringify({ t: 'x'.repeat(4096) }) }),
    );
    expect(res.status).toBe(413);
    expect(res.body.error).toEqual({
      code: 'payload_too_large',
      message: 'the body is larger than 2048 bytes',
    });
  });

  it('answers JSON 404 to unknown routes and 405 to wrong methods', async () => {
    const d = await h.dispatcher();
    const missing = await get(d.url, '/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    const wrong = await get(d.url, '/run-task');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect(wrong.body.error.code).toBe('method_not_allowed');
  });

  it('requires an API key when API_KEYS is set, by bearer or x-api-key', async () => {
    const d = await h.dispatcher({ apiKeys: ['k1', 'k2'] });
    await h.worker({ url: d.url, id: 'w1' });
    expect((await post(d.url, '/run-task', task('a'))).status).toBe(401);
    expect(
      (await post(d.url, '/run-task', task('a'), { authorization: 'Bearer wrong' })).body.error.code,
    ).toBe('unauthorized');
    expect((await post(d.url, '/run-task', task('a'), { authorization: 'Bearer k2' })).status).toBe(200);
    expect((await post(d.url, '/run-task', task('a'), { 'x-api-key': 'k1' })).status).toBe(200);
    expect((await get(d.url, '/workers')).status).toBe(401);
    expect((await get(d.url, '/health')).status).toBe(200);
  });
});

describe('operator routes', () => {
  it('GET /health, /workers and /labels have the documented shapes', async () => {
    const d = await h.dispatcher();
    await h.worker({
      url: d.url,
      id: 'w1',
      labels: ['a', 'b'],
      slots: 2,
      labelCapacity: 3,
      taskTypes: ['echo'],
    });
    await h.worker({ url: d.url, id: 'w2', labels: ['b'] });
    expect((await get(d.url, '/health')).body).toEqual({ status: 'ok', workers: 2 });
    expect((await get(d.url, '/workers')).body).toEqual([
      {
        id: 'w1',
        labels: ['a', 'b'],
        state: 'ready',
        in_flight: 0,
        slots: 2,
        label_capacity: 3,
        task_types: ['echo'],
      },
      {
        id: 'w2',
        labels: ['b'],
        state: 'ready',
        in_flight: 0,
        slots: 1,
        label_capacity: 2,
        task_types: ['embed_texts', 'infer', 'echo'],
      },
    ]);
    expect((await get(d.url, '/labels')).body).toEqual({ a: ['w1'], b: ['w1', 'w2'] });
  });

  it('GET /metrics counts hits, misses, loads, evictions and outcomes', async () => {
    const d = await h.dispatcher();
    await h.worker({ url: d.url, id: 'w1', labels: ['a'], labelCapacity: 1 });
    expect((await post(d.url, '/run-task', task('a'))).body.label_miss).toBe(false);
    expect((await post(d.url, '/run-task', task('b'))).body.label_miss).toBe(true);
    expect((await post(d.url, '/run-task', task('b'))).body.label_miss).toBe(false);
    const res = await get(d.url, '/metrics');
    expect(res.status).toBe(200);
    const text = res.body as string;
    expect(text).toMatch(/^smart_routing_label_hits_total 2$/m);
    expect(text).toMatch(/^smart_routing_label_misses_total 1$/m);
    expect(text).toMatch(/^smart_routing_label_loads_total 1$/m);
    expect(text).toMatch(/^smart_routing_label_evictions_total 1$/m);
    expect(text).toMatch(/^smart_routing_tasks_total\{outcome="completed"\} 3$/m);
    expect(text).toMatch(/^smart_routing_connected_workers 1$/m);
    expect(text).toMatch(/^smart_routing_queue_depth\{label="\*"\} 0$/m);
    expect(text).toMatch(/^smart_routing_routing_decision_seconds_count \d+$/m);
    expect(text).toMatch(/^smart_routing_task_retries_total 0$/m);
  });
});

describe('model repository checks', () => {
  let repo: string;
  beforeEach(async () => {
    repo = await mkdtemp(join(tmpdir(), 'dispatcher-repo-'));
    for (const name of ['label-1', 'label-2']) {
      await mkdir(join(repo, name), { recursive: true });
      await writeFile(join(repo, name, 'config.pbtxt'), `name: "${name}"\n`);
    }
  });
  afterEach(() => rm(repo, { recursive: true, force: true }));

  it('answers 404 label_not_found at once for a label the repository lacks', async () => {
    const d = await h.dispatcher({ modelRepository: repo });
    const w = await h.worker({ url: d.url, id: 'w1', labelFreeTaskTypes: ['echo'] });
    const res = await post(d.url, '/run-task', task('label-9'));
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('label_not_found');
    expect((await post(d.url, '/run-task', task('../etc'))).status).toBe(404);
    expect((await post(d.url, '/run-task', task('label-1'))).status).toBe(200);
    // A type the worker announced label-free skips the check and goes without a label.
    const echo = await post(d.url, '/run-task', task('anything', { task_type: 'echo' }));
    expect(echo.status).toBe(200);
    expect(echo.body.label).toBe('anything');
    expect(w.received.map((r) => r.label)).toEqual(['label-1', '']);
  });

  it('checks the label of a type the worker did not announce label-free (a worker older than the field)', async () => {
    const d = await h.dispatcher({ modelRepository: repo });
    const w = await h.worker({ url: d.url, id: 'old' });
    const res = await post(d.url, '/run-task', task('anything', { task_type: 'echo' }));
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('label_not_found');
    expect((await post(d.url, '/run-task', task('label-1', { task_type: 'echo' }))).status).toBe(200);
    expect(w.received.map((r) => r.label)).toEqual(['label-1']);
  });

  it('GET /labels lists repository models no worker holds with an empty list', async () => {
    const d = await h.dispatcher({ modelRepository: repo });
    await h.worker({ url: d.url, id: 'w1', labels: ['label-2'] });
    expect((await get(d.url, '/labels')).body).toEqual({ 'label-1': [], 'label-2': ['w1'] });
  });
});

describe('POST /upload-model', () => {
  let uploader: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => (uploader ? uploader.close(resolve) : resolve(undefined)));
    uploader = undefined;
  });

  async function fakeUploader(status: number, answer: string): Promise<{ url: string; bodies: unknown[] }> {
    const bodies: unknown[] = [];
    uploader = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        if (req.url === '/models') {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ models: [{ name: 'uploaded-1', has_tokenizer: true }] }));
          return;
        }
        bodies.push(JSON.parse(text));
        res.statusCode = status;
        res.setHeader('content-type', 'application/json');
        res.end(answer);
      });
    });
    await new Promise<void>((resolve) => uploader!.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(uploader.address() as AddressInfo).port}`, bodies };
  }

  it('answers 503 uploader_not_configured without UPLOADER_URL', async () => {
    const d = await h.dispatcher();
    const res = await post(d.url, '/upload-model', { model_id: 'org/model' });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('uploader_not_configured');
  });

  it('checks the body before the uploader: a bad body is 400 even without UPLOADER_URL', async () => {
    const d = await h.dispatcher();
    const cases: [unknown, RegExp][] = [
      [[1, 2], /^body: /],
      [{}, /^model_id: /],
      [{ model_id: 3 }, /^model_id: /],
      [{ model_id: 'org/m', max_batch_size: 5000 }, /^max_batch_size: /],
      [{ model_id: 'org/m', overwrite: 'yes' }, /^overwrite: /],
      [{ model_id: 'org/m', source: 'ftp' }, /^source: only "hub" through the dispatcher/],
      [
        { model_id: 'org/m', source: 'local' },
        /^source: only "hub" through the dispatcher: upload a local folder/,
      ],
      [{ model_id: 'org/m', path: '/srv/x' }, /path/],
      [{ model_id: 'org/m', modelid: 'typo' }, /modelid/],
    ];
    for (const [body, message] of cases) {
      const res = await post(d.url, '/upload-model', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.message, JSON.stringify(body)).toMatch(message);
    }
    const notJson = await post(d.url, '/upload-model', '{nope');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.code).toBe('invalid_request');
  });

  it('forwards the request and relays the uploader’s status and body', async () => {
    const up = await fakeUploader(201, '{"status":"uploaded","model_name":"model","message":"ok"}');
    const d = await h.dispatcher({ uploaderUrl: up.url });
    const res = await post(d.url, '/upload-model', {
      model_id: 'org/model',
      max_batch_size: 4,
      source: 'hub',
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ status: 'uploaded', model_name: 'model', message: 'ok' });
    expect(up.bodies).toEqual([{ model_id: 'org/model', max_batch_size: 4, source: 'hub' }]);
    // A local folder never travels through the dispatcher (refused above, not dropped).
    const local = await post(d.url, '/upload-model', {
      model_id: 'org/model',
      source: 'local',
      path: '/etc',
    });
    expect(local.status).toBe(400);
    expect(up.bodies).toHaveLength(1);
    expect((await get(d.url, '/labels')).body).toEqual({ 'uploaded-1': [] });
  });

  it('relays uploader errors and validates its own input', async () => {
    const up = await fakeUploader(409, '{"error":{"code":"model_exists","message":"exists"}}');
    const d = await h.dispatcher({ uploaderUrl: up.url });
    const res = await post(d.url, '/upload-model', { model_id: 'org/model' });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('model_exists');
    const bad = await post(d.url, '/upload-model', { model_id: 3 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/model_id/);
  });

  it('answers 502 uploader_unreachable when nothing listens there', async () => {
    const up = await fakeUploader(200, '{}');
    await new Promise((resolve) => uploader!.close(resolve));
    uploader = undefined;
    const d = await h.dispatcher({ uploaderUrl: up.url });
    const res = await post(d.url, '/upload-model', { model_id: 'org/model' });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('uploader_unreachable');
  });
});
