import type { IncomingMessage } from 'node:http';
import { readBody } from '@smart-routing/service-kit';

/**
 * Reads an infer request body into memory of its own, laid out so its tensors can be used in
 * place: one allocation of Content-Length bytes (chunks are copied in as they arrive, no
 * `Buffer.concat` of a second full-size buffer), placed so the binary part after the JSON header
 * (`Inference-Header-Content-Length` bytes) starts 8-byte aligned. Typed arrays over it are then
 * valid views, and the ArrayBuffer may be transferred to a session thread: it is never a pooled
 * Buffer shared with other data.
 *
 *   ArrayBuffer: [pad][JSON header][tensor bytes ...]
 *                      ^ body       ^ 8-aligned
 */

/** Options of `readInferBody`. */
export interface ReadInferBodyOptions {
  /** Largest body accepted, in bytes. */
  limit: number;
  /** The `Inference-Header-Content-Length` header; its value places the alignment. */
  headerLength?: string | string[];
  /** The error of an over-limit body. */
  tooLarge: () => Error;
  /** The error of a body cut short by the client. */
  aborted: () => Error;
}

function alignmentPad(headerLength: string | string[] | undefined): number {
  const text = Array.isArray(headerLength) ? headerLength[0] : headerLength;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= 0 ? (8 - (n % 8)) % 8 : 0;
}

/** A Buffer of `length` bytes at `pad` in an ArrayBuffer of its own. */
function ownBuffer(length: number, pad: number): Buffer {
  return Buffer.from(new ArrayBuffer(length + pad), pad, length);
}

/**
 * Reads the body of an infer request (see the module comment). Without a Content-Length
 * (chunked), the body is gathered first and copied once into its own buffer.
 */
export async function readInferBody(req: IncomingMessage, options: ReadInferBodyOptions): Promise<Buffer> {
  const { limit } = options;
  const pad = alignmentPad(options.headerLength);
  const declared = Number(req.headers['content-length']);
  if (!req.headers['content-length'] || !Number.isSafeInteger(declared) || declared < 0) {
    const gathered = await readBody(req, { limit, tooLarge: options.tooLarge, aborted: options.aborted });
    const own = ownBuffer(gathered.length, pad);
    gathered.copy(own);
    return own;
  }
  if (declared > limit) throw options.tooLarge();
  const body = ownBuffer(declared, pad);
  return new Promise((resolve, reject) => {
    let at = 0;
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('close', onClose);
      if (err) reject(err);
      else resolve(at === declared ? body : body.subarray(0, at));
    };
    const onData = (chunk: Buffer): void => {
      // Node's parser enforces Content-Length; this guards the copy anyway.
      if (at + chunk.length > declared) {
        req.resume();
        finish(options.tooLarge());
        return;
      }
      chunk.copy(body, at);
      at += chunk.length;
    };
    req.on('data', onData);
    req.once('end', () => finish(null));
    req.once('error', (err) => finish(req.complete ? err : options.aborted()));
    // 'close' follows every request, also a complete one: build the error only when it matters.
    const onClose = (): void => {
      if (!done) finish(options.aborted());
    };
    req.once('close', onClose);
  });
}
