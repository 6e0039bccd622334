/**
 * Reads an HTTP answer body with a byte limit, before anything decodes it: a model server whose
 * output is far larger than expected (a small request with a huge output tensor) is refused while
 * it streams, instead of being buffered and parsed on the event loop that answers heartbeats.
 */

/** The answer was larger than the limit; nothing of it was decoded. */
export class ResponseTooLargeError extends Error {
  override name = 'ResponseTooLargeError';
  /** The limit (bytes). */
  readonly limitBytes: number;

  constructor(what: string, limitBytes: number, declaredBytes?: number) {
    super(
      `result_too_large: ${what} answered ${declaredBytes === undefined ? 'more than' : declaredBytes} bytes, ` +
        `over the worker's limit of ${limitBytes} bytes (MAX_RESPONSE_BYTES)`,
    );
    this.limitBytes = limitBytes;
  }
}

/**
 * The body of `res` as text, at most `limitBytes` bytes (see {@link readBoundedBytes}).
 * @throws ResponseTooLargeError
 */
export async function readBoundedText(res: Response, limitBytes: number, what: string): Promise<string> {
  return (await readBoundedBytes(res, limitBytes, what)).toString('utf8');
}

/**
 * The body of `res`, at most `limitBytes` bytes: a declared `Content-Length` over the limit is
 * refused before reading, a streamed body as soon as it passes the limit (the rest is not read:
 * the stream is cancelled).
 * @throws ResponseTooLargeError
 */
export async function readBoundedBytes(res: Response, limitBytes: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > limitBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new ResponseTooLargeError(what, limitBytes, declared);
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limitBytes) {
      await reader.cancel().catch(() => undefined);
      throw new ResponseTooLargeError(what, limitBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}
