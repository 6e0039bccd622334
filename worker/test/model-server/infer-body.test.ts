import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeInferRequest, encodeInferRequest } from '@smart-routing/kserve';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readInferBody } from '../../src/model-server/infer-body.js';

// readInferBody on a real HTTP server: the body lands in an ArrayBuffer of its own with the tensor
// bytes 8-aligned, so decodeInferRequest's viewTensors gives views into it, not copies.

let seen: (req: IncomingMessage) => void;
const server = createServer((req, res) => {
  seen(req);
  res.end();
});
let port: number;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const errors = { tooLarge: () => new Error('too large'), aborted: () => new Error('aborted') };

function post(
  body: Buffer,
  headers: Record<string, string>,
  limit: number,
  chunked = false,
): Promise<{ body?: Buffer; error?: Error }> {
  return new Promise((resolve) => {
    seen = (req) => {
      readInferBody(req, {
        limit,
        headerLength: req.headers['inference-header-content-length'],
        ...errors,
      }).then(
        (b) => resolve({ body: b }),
        (e: Error) => {
          req.resume();
          resolve({ error: e });
        },
      );
    };
    const req = request({
      port,
      method: 'POST',
      headers: chunked ? headers : { ...headers, 'content-length': body.length },
    });
    req.on('error', () => undefined);
    if (chunked) {
      req.write(body.subarray(0, 7));
      req.end(body.subarray(7));
    } else req.end(body);
  });
}

describe('readInferBody', () => {
  for (const chunked of [false, true]) {
    it(`gives the body in its own buffer with the binary part 8-aligned (${chunked ? 'chunked' : 'Content-Length'})`, async () => {
      const data = Float32Array.from({ length: 3000 }, (_, i) => i / 7);
      // An id of odd length so the JSON header is not a multiple of 8 by chance.
      const msg = encodeInferRequest({
        id: 'abc',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [3000], data }],
      });
      expect(msg.headerLength! % 8).not.toBe(0);
      const sent = Buffer.concat(msg.chunks);
      const got = await post(
        sent,
        { 'inference-header-content-length': String(msg.headerLength) },
        1 << 20,
        chunked,
      );
      expect(got.body!.equals(sent)).toBe(true);
      expect((got.body!.byteOffset + msg.headerLength!) % 8).toBe(0);
      // Its ArrayBuffer holds nothing else (safe to transfer to a session thread).
      expect(got.body!.buffer.byteLength - got.body!.byteOffset).toBe(sent.length);
      const decoded = decodeInferRequest(got.body!, { headerLength: msg.headerLength, viewTensors: true });
      const x = decoded.inputs[0]!.data as Float32Array;
      expect(x.buffer).toBe(got.body!.buffer);
      expect(Array.from(x)).toEqual(Array.from(data));
    });
  }

  it('refuses a declared body over the limit', async () => {
    const got = await post(Buffer.alloc(100), {}, 50);
    expect(got.error?.message).toBe('too large');
  });
});
