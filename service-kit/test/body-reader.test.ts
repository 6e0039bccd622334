import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BodyAbortedError, BodyTooLargeError, readBody, readJsonBody } from '../src/body-reader.js';

/** A real server whose handler reads the body with `read` and answers what happened as JSON. */
async function serve(
  read: (req: IncomingMessage) => Promise<unknown>,
  onSettled?: (outcome: unknown) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    read(req).then(
      (value) => {
        onSettled?.({ value });
        res.end(JSON.stringify({ ok: true, value: Buffer.isBuffer(value) ? value.toString('utf8') : value }));
      },
      (err: Error & { status?: number }) => {
        onSettled?.({ error: err });
        if (res.destroyed) return;
        res.writeHead(err.status ?? 400, { connection: 'close' });
        res.end(JSON.stringify({ ok: false, name: err.name, message: err.message }));
      },
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** Sends `chunks` (chunked, unless `contentLength` is given) and returns the status and parsed answer. */
async function send(
  port: number,
  chunks: string[],
  contentLength?: number,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const req = request({
    port,
    host: '127.0.0.1',
    method: 'POST',
    headers: contentLength === undefined ? {} : { 'content-length': String(contentLength) },
  });
  req.on('error', () => {}); // the server may close first on a refused body
  const answered = once(req, 'response') as Promise<[IncomingMessage]>;
  for (const chunk of chunks) req.write(chunk);
  req.end();
  const [res] = await answered;
  let text = '';
  for await (const chunk of res) text += (chunk as Buffer).toString();
  return { status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('readBody', () => {
  it('returns the whole body when it is within the limit', async () => {
    const { server, port } = await serve((req) => readBody(req, { limit: 10 }));
    servers.push(server);
    expect(await send(port, ['hello', ' you'])).toEqual({
      status: 200,
      body: { ok: true, value: 'hello you' },
    });
  });

  it('refuses at once a declared Content-Length over the limit', async () => {
    const { server, port } = await serve((req) => readBody(req, { limit: 10 }));
    servers.push(server);
    // Nothing of the body is sent: the answer comes from the header alone.
    const req = request({ port, host: '127.0.0.1', method: 'POST', headers: { 'content-length': '11' } });
    req.on('error', () => {});
    req.flushHeaders();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    let text = '';
    for await (const chunk of res) text += (chunk as Buffer).toString();
    req.destroy();
    expect(res.statusCode).toBe(413);
    expect(JSON.parse(text)).toEqual({ ok: false, name: 'BodyTooLargeError', message: '11 bytes > 10' });
  });

  it('refuses a streamed body as soon as it passes the limit', async () => {
    const { server, port } = await serve((req) => readBody(req, { limit: 10 }));
    servers.push(server);
    const answer = await send(port, ['123456', '7890', 'x']);
    expect(answer).toEqual({
      status: 413,
      body: { ok: false, name: 'BodyTooLargeError', message: 'more than 10 bytes' },
    });
  });

  it('rejects with the service error given for each case', async () => {
    class Mine extends Error {
      status = 413;
      override name = 'Mine';
    }
    const { server, port } = await serve((req) =>
      readBody(req, { limit: 2, tooLarge: (info) => new Mine(`limit ${info.limit}`) }),
    );
    servers.push(server);
    expect((await send(port, ['abc'])).body).toEqual({ ok: false, name: 'Mine', message: 'limit 2' });
  });

  it('rejects when the client goes away before the body ends', async () => {
    let settled!: (outcome: unknown) => void;
    const outcome = new Promise<unknown>((resolve) => (settled = resolve));
    const { server, port } = await serve((req) => readBody(req, { limit: 100 }), settled);
    servers.push(server);
    const req = request({ port, host: '127.0.0.1', method: 'POST', headers: { 'content-length': '50' } });
    req.on('error', () => {});
    req.write('only part');
    await once(server, 'request');
    req.destroy();
    expect(((await outcome) as { error: Error }).error).toBeInstanceOf(BodyAbortedError);
  });
});

describe('readJsonBody', () => {
  it('parses JSON, and an empty body is undefined', async () => {
    const { server, port } = await serve((req) => readJsonBody(req, { limit: 100 }));
    servers.push(server);
    expect((await send(port, ['{"a":', '[1,2]}'])).body).toEqual({ ok: true, value: { a: [1, 2] } });
    expect((await send(port, [], 0)).body).toEqual({ ok: true });
  });

  it('maps a parse failure to the error given', async () => {
    const { server, port } = await serve((req) =>
      readJsonBody(req, { limit: 100, invalidJson: (err) => new Error(`bad json (${err.name})`) }),
    );
    servers.push(server);
    expect((await send(port, ['{nope'])).body).toEqual({
      ok: false,
      name: 'Error',
      message: 'bad json (SyntaxError)',
    });
  });

  it('keeps the 413 of an over-limit body', async () => {
    const { server, port } = await serve((req) => readJsonBody(req, { limit: 4 }));
    servers.push(server);
    const answer = await send(port, ['[1,2,3]']);
    expect(answer.status).toBe(413);
    expect(answer.body.name).toBe(new BodyTooLargeError({ limit: 4 }).name);
  });
});
