import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  HubAuthError,
  HubClient,
  HubNetworkError,
  HubNotFoundError,
  HubServerError,
  TruncatedDownloadError,
} from '../src/hub-client.js';
import { startFakeHub, type FakeHub } from './hub-server.js';

let hub: FakeHub;
let cdn: FakeHub;
let dir: string;

beforeEach(async () => {
  hub = await startFakeHub();
  cdn = await startFakeHub();
  dir = await mkdtemp(join(tmpdir(), 'hub-client-test-'));
});

afterEach(async () => {
  await hub.close();
  await cdn.close();
  await rm(dir, { recursive: true, force: true });
});

function logs(): { logger: pino.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      records.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), records };
}

describe('HubClient#fileUrl', () => {
  it('builds {endpoint}/{model_id}/resolve/{revision}/{path} with encoded parts', () => {
    const client = new HubClient({ endpoint: 'https://hub.example/' });
    expect(client.fileUrl('org/model', 'main', 'onnx/model.onnx')).toBe(
      'https://hub.example/org/model/resolve/main/onnx/model.onnx',
    );
    expect(client.fileUrl('model', 'refs/pr/1', 'a b.json')).toBe(
      'https://hub.example/model/resolve/refs%2Fpr%2F1/a%20b.json',
    );
  });
});

describe('HubClient#download', () => {
  it('streams a file to disk and logs progress with percent', async () => {
    const body = Buffer.alloc(256 * 1024, 7);
    hub.set('org/m', 'big.bin', { body });
    const { logger, records } = logs();
    const client = new HubClient({ endpoint: hub.url, logger, progressIntervalMs: 0 });
    const dest = join(dir, 'big.bin');
    const result = await client.download('org/m', 'main', 'big.bin', dest);
    expect(result.bytes).toBe(body.length);
    expect(Buffer.compare(await readFile(dest), body)).toBe(0);
    const events = records.map((r) => r.event);
    expect(events[0]).toBe('download_started');
    expect(events.at(-1)).toBe('download_finished');
    const progress = records.filter((r) => r.event === 'download_progress');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({ total_bytes: body.length, file: 'big.bin', model_id: 'org/m' });
    expect(typeof progress[0]!.percent).toBe('number');
  });

  it('follows redirects, sending the token to the hub origin only', async () => {
    hub.set('org/m', 'a.bin', { redirectTo: '/moved/a.bin' });
    hub.setRaw('/moved/a.bin', { redirectTo: `${cdn.url}/blob/a.bin?signature=s3cret` });
    cdn.setRaw('/blob/a.bin', { body: 'payload' });
    const client = new HubClient({ endpoint: hub.url, token: 'tok' });
    await client.download('org/m', 'main', 'a.bin', join(dir, 'a.bin'));
    expect(await readFile(join(dir, 'a.bin'), 'utf8')).toBe('payload');
    expect(hub.requests.map((r) => r.authorization)).toEqual(['Bearer tok', 'Bearer tok']);
    expect(cdn.requests).toEqual([{ method: 'GET', path: '/blob/a.bin', authorization: undefined }]);
  });

  it('gives up after too many redirects', async () => {
    hub.setRaw('/loop', { redirectTo: '/loop' });
    hub.set('org/m', 'a.bin', { redirectTo: '/loop' });
    const client = new HubClient({ endpoint: hub.url, maxRedirects: 3 });
    await expect(client.download('org/m', 'main', 'a.bin', join(dir, 'a'))).rejects.toThrow(HubServerError);
  });

  it('maps statuses and X-Error-Code to typed errors', async () => {
    hub.set('org/m', 'gone.bin', { status: 404, headers: { 'x-error-code': 'EntryNotFound' } });
    hub.set('org/m', 'norepo.bin', { status: 401, headers: { 'x-error-code': 'RepoNotFound' } });
    hub.set('org/m', 'norev.bin', { status: 404, headers: { 'x-error-code': 'RevisionNotFound' } });
    hub.set('org/m', 'private.bin', { status: 401 });
    hub.set('org/m', 'gated.bin', {
      status: 403,
      headers: { 'x-error-message': 'accept the license first' },
    });
    hub.set('org/m', 'broken.bin', { status: 503 });
    const client = new HubClient({ endpoint: hub.url });
    const fail = (path: string): Promise<unknown> =>
      client.download('org/m', 'main', path, join(dir, 'x')).then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(await fail('gone.bin')).toMatchObject({ name: 'HubNotFoundError', missing: 'entry' });
    expect(await fail('norepo.bin')).toMatchObject({ name: 'HubNotFoundError', missing: 'repo' });
    expect(await fail('norev.bin')).toMatchObject({ name: 'HubNotFoundError', missing: 'revision' });
    expect(await fail('unknown.bin')).toMatchObject({ name: 'HubNotFoundError', missing: 'unknown' });
    const priv = await fail('private.bin');
    expect(priv).toBeInstanceOf(HubAuthError);
    expect((priv as Error).message).toContain('no HF_TOKEN');
    const gated = await fail('gated.bin');
    expect(gated).toMatchObject({ status: 403 });
    expect((gated as Error).message).toContain('accept the license first');
    expect(await fail('broken.bin')).toMatchObject({ name: 'HubServerError', status: 503 });
    expect(await fail('gone.bin')).toBeInstanceOf(HubNotFoundError);
  });

  it('reports a refused connection as HubNetworkError', async () => {
    const url = hub.url;
    await hub.close();
    const client = new HubClient({ endpoint: url });
    await expect(client.download('org/m', 'main', 'a', join(dir, 'a'))).rejects.toThrow(HubNetworkError);
  });

  it('detects a socket destroyed mid-body', async () => {
    hub.set('org/m', 'a.bin', { body: Buffer.alloc(10_000, 1), destroyAfter: 1000 });
    const client = new HubClient({ endpoint: hub.url });
    const err = await client.download('org/m', 'main', 'a.bin', join(dir, 'a')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TruncatedDownloadError);
    expect((err as TruncatedDownloadError).expectedBytes).toBe(10_000);
  });

  it('detects a body shorter than content-length', async () => {
    hub.set('org/m', 'a.bin', { body: 'short', contentLength: 50 });
    const client = new HubClient({ endpoint: hub.url });
    await expect(client.download('org/m', 'main', 'a.bin', join(dir, 'a'))).rejects.toThrow(
      TruncatedDownloadError,
    );
  });

  it('rejects with the abort reason when aborted', async () => {
    hub.set('org/m', 'a.bin', { body: 'x', gate: new Promise(() => undefined) });
    const client = new HubClient({ endpoint: hub.url });
    const abort = new AbortController();
    const pending = client.download('org/m', 'main', 'a.bin', join(dir, 'a'), abort.signal);
    setTimeout(() => abort.abort(new Error('stop')), 20);
    await expect(pending).rejects.toThrow('stop');
  });
});

describe('HubClient#exists', () => {
  it('is true for a file, false for a missing file, and throws for a missing repository', async () => {
    hub.set('org/m', 'config.json', { body: '{}' });
    hub.set('org/m', 'secret.json', { status: 401, headers: { 'x-error-code': 'RepoNotFound' } });
    const client = new HubClient({ endpoint: hub.url });
    expect(await client.exists('org/m', 'main', 'config.json')).toBe(true);
    expect(await client.exists('org/m', 'main', 'missing.json')).toBe(false);
    await expect(client.exists('org/m', 'main', 'secret.json')).rejects.toThrow(HubNotFoundError);
    expect(hub.requests.every((r) => r.method === 'HEAD')).toBe(true);
  });
});
