/**
 * Issue 11, item 3: the uploader accepts the same API keys as the dispatcher, and the dispatcher
 * authenticates to it: it forwards the producer's key on POST /upload-model and sends its own
 * when it lists the uploader's models for GET /labels. Real dispatcher, real uploader, real HTTP.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDispatcher, type DispatcherHandle } from '@smart-routing/dispatcher';
import { startUploader, type UploaderHandle } from '@smart-routing/uploader';
import { startFakeHub, type FakeHub } from '../../uploader/test/hub-server.js';

const KEYS = ['key-a', 'key-b'];
const silent = pino({ level: 'silent' });
let dir: string;
let hub: FakeHub;
let uploader: UploaderHandle;
let dispatcher: DispatcherHandle;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sr-upl-auth-'));
  // A model already in the uploader's repository, for GET /labels.
  await mkdir(join(dir, 'uploaded-1'));
  await writeFile(
    join(dir, 'uploaded-1', 'config.pbtxt'),
    'name: "uploaded-1"\nplatform: "onnxruntime_onnx"\n',
  );
  hub = await startFakeHub();
  uploader = await startUploader({
    repository: dir,
    port: 0,
    hfEndpoint: hub.url,
    apiKeys: KEYS,
    logger: silent,
  });
  dispatcher = await startDispatcher({
    port: 0,
    host: '127.0.0.1',
    uploaderUrl: uploader.url,
    apiKeys: KEYS,
    logger: silent,
  });
});

afterAll(async () => {
  await dispatcher?.close();
  await uploader?.close();
  await hub?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('dispatcher -> uploader with API_KEYS', () => {
  it('the uploader refuses a request without a key', async () => {
    const res = await fetch(`${uploader.url}/upload-model`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model_id: 'org/missing' }),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
  });

  it.each<Record<string, string>>([{ authorization: 'Bearer key-b' }, { 'x-api-key': 'key-a' }])(
    "POST /upload-model forwards the producer's key (%o)",
    async (headers) => {
      const res = await fetch(`${dispatcher.url}/upload-model`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model_id: 'org/missing' }),
      });
      // The uploader's own answer (the hub has no such model), not a 401 from it.
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('model_not_found');
    },
  );

  it("GET /labels lists the uploader's models with the dispatcher's own key", async () => {
    const res = await fetch(`${dispatcher.url}/labels`, { headers: { authorization: 'Bearer key-a' } });
    expect(await res.json()).toEqual({ 'uploaded-1': [] });
  });
});
