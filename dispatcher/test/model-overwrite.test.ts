/**
 * Issue 11, item 5: after an overwrite upload, no worker keeps serving the old model: every worker
 * holding the label unloads it before the upload answers success.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeWorker } from './fake-worker.js';
import { Harness, post } from './harness.js';

const h = new Harness();
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await h.cleanup();
  for (const c of closers.splice(0)) await c();
});

/** An uploader that accepts every upload of `model_id` as model `model_name`. */
async function fakeUploader(): Promise<string> {
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const { model_id } = JSON.parse(text) as { model_id: string };
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'uploaded', model_name: model_id, message: 'ok' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Answers the first unload order for `label` like a real worker: LabelEvent evicted. */
function confirmUnload(w: FakeWorker, label: string): Promise<void> {
  return w
    .waitFor(
      (f) => f.body === 'labelOrder' && f.labelOrder.action === 'unload' && f.labelOrder.label === label,
    )
    .then(() => {
      // Gone from what its heartbeats report too: a heartbeat after this must not bring it back.
      w.cache.evict(label);
      w.send({
        labelEvent: {
          kind: 'evicted',
          label,
          durationMs: 1,
          message: 'ordered',
          loadedLabels: w.cache.labels,
          footprintBytes: 0,
        },
      });
    });
}

describe('POST /upload-model with overwrite', () => {
  it('regression: every worker holding the label unloads it before the upload answers', async () => {
    const d = await h.dispatcher({ uploaderUrl: await fakeUploader() });
    const a = await h.worker({ url: d.url, id: 'a', labels: ['m'] });
    const b = await h.worker({ url: d.url, id: 'b', labels: ['m', 'x'] });
    const c = await h.worker({ url: d.url, id: 'c', labels: ['x'] });
    void confirmUnload(a, 'm');
    void confirmUnload(b, 'm');
    const res = await post(d.url, '/upload-model', { model_id: 'm', overwrite: true });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ model_name: 'm', stale_workers: [] });
    expect([...res.body.refreshed_workers].sort()).toEqual(['a', 'b']);
    expect(c.frames.some((f) => f.body === 'labelOrder')).toBe(false);
    expect(d.router.labelHolders().get('m') ?? []).toEqual([]);
  });

  it('leaves loaded copies alone for a first upload (no overwrite)', async () => {
    const d = await h.dispatcher({ uploaderUrl: await fakeUploader() });
    const a = await h.worker({ url: d.url, id: 'a', labels: ['m'] });
    const res = await post(d.url, '/upload-model', { model_id: 'm' });
    expect(res.status).toBe(201);
    expect(res.body.refreshed_workers).toBeUndefined();
    expect(a.frames.some((f) => f.body === 'labelOrder')).toBe(false);
  });
});
