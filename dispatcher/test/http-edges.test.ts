/**
 * Issue 11, item 7: every reply is JSON {"error": {"code", "message"}} with the right status, also
 * where Node answers on its own (connection cap, CONNECT, Expect, timeouts, a bad WebSocket
 * handshake), and invalid UTF-8 is refused. Raw TCP sockets against a real dispatcher.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, nextTaskId } from './harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

interface RawAnswer {
  status: number;
  headers: string;
  body: { error: { code: string; message: string } };
}

/** Sends `request` (raw bytes) and reads until the server closes; returns the parsed answer. */
function exchange(port: number, request: string | Buffer, socket?: Socket): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const s = socket ?? connect(port, '127.0.0.1');
    let text = '';
    s.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      try {
        resolve({ status: Number(head.split(' ')[1]), headers: head, body: JSON.parse(body) });
      } catch {
        reject(new Error(`not a JSON answer: ${JSON.stringify(text.slice(0, 300))}`));
      }
    });
    if (request.length > 0) s.write(request);
  });
}

describe('connection cap', () => {
  it('regression: answers 503 too_many_connections with Retry-After instead of dropping', async () => {
    const d = await h.dispatcher({ maxConnections: 1 });
    const first = connect(d.port, '127.0.0.1');
    await new Promise<void>((resolve) => first.once('connect', () => resolve()));
    const answer = await exchange(d.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    first.destroy();
    expect(answer.status).toBe(503);
    expect(answer.body.error.code).toBe('too_many_connections');
    expect(answer.headers).toMatch(/\r\nRetry-After: 1/i);
  });
});

describe('answers Node would give without JSON', () => {
  it('regression: CONNECT gets 405 method_not_allowed', async () => {
    const d = await h.dispatcher();
    const answer = await exchange(
      d.port,
      'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
    );
    expect(answer.status).toBe(405);
    expect(answer.body.error.code).toBe('method_not_allowed');
  });

  it('regression: an Expect other than 100-continue gets 417 expectation_failed', async () => {
    const d = await h.dispatcher();
    const answer = await exchange(
      d.port,
      'POST /run-task HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
    expect(answer.status).toBe(417);
    expect(answer.body.error.code).toBe('expectation_failed');
  });

  it('regression: a WebSocket upgrade with a bad version gets a JSON 400', async () => {
    const d = await h.dispatcher();
    const answer = await exchange(
      d.port,
      'GET /worker-listen HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\nWorker-Id: w1\r\n\r\n',
    );
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('invalid_request');
    expect(answer.body.error.message).toMatch(/Sec-WebSocket-Version: 13/);
  });

  it('regression: headers or a body that do not arrive in time get 408 request_timeout', async () => {
    const d = await h.dispatcher({ headersTimeoutMs: 200, requestTimeoutMs: 400 });
    const headers = await exchange(d.port, 'GET /health HTTP/1.1\r\nHost: x\r\n');
    expect(headers.status).toBe(408);
    expect(headers.body.error.code).toBe('request_timeout');
    const body = await exchange(
      d.port,
      'POST /upload-model HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model',
    );
    expect(body.status).toBe(408);
    expect(body.body.error.code).toBe('request_timeout');
  });

  it('regression: a declared body over the limit on any Express route is refused before reading', async () => {
    const d = await h.dispatcher({ maxBodyBytes: 2048 });
    // No body is ever sent: the answer comes from the header alone.
    const answer = await exchange(
      d.port,
      'GET /workers HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n',
    );
    expect(answer.status).toBe(413);
    expect(answer.body.error.code).toBe('payload_too_large');
  });
});

describe('invalid UTF-8', () => {
  const invalidBody = (): Buffer =>
    Buffer.concat([
      Buffer.from(`{"task_id":"${nextTaskId()}`),
      Buffer.from([0xc3, 0x28]), // an invalid two-byte sequence
      Buffer.from('","task_type":"echo","label":"a","parameters_json":"{}"}'),
    ]);

  it('regression: an id with invalid UTF-8 is a 400, not silently replaced', async () => {
    const d = await h.dispatcher();
    const body = invalidBody();
    const answer = await exchange(
      d.port,
      Buffer.concat([
        Buffer.from(
          `POST /run-task HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
        ),
        body,
      ]),
    );
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({
      code: 'invalid_request',
      message: 'the body is not valid UTF-8',
    });
  });

  it('regression: the same on the Express routes (POST /upload-model)', async () => {
    const d = await h.dispatcher();
    const body = Buffer.concat([Buffer.from('{"model_id":"a'), Buffer.from([0xff]), Buffer.from('"}')]);
    const answer = await exchange(
      d.port,
      Buffer.concat([
        Buffer.from(
          `POST /upload-model HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
        ),
        body,
      ]),
    );
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toBe('the body is not valid UTF-8');
  });
});
