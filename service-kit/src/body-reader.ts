import type { IncomingMessage } from 'node:http';

/** What {@link readBody} knows when a body is refused for its size. */
export interface BodyTooLargeInfo {
  /** The limit, in bytes. */
  limit: number;
  /** The Content-Length the client declared, when that alone was over the limit. */
  declared?: number;
}

/** Says why a body was refused: `<declared> bytes > <limit>`, or `more than <limit> bytes`. */
export function tooLargeDetail(info: BodyTooLargeInfo): string {
  return info.declared !== undefined
    ? `${info.declared} bytes > ${info.limit}`
    : `more than ${info.limit} bytes`;
}

/** The default error of an over-limit body: status 413, message {@link tooLargeDetail}. */
export class BodyTooLargeError extends Error {
  readonly status = 413;
  readonly limit: number;
  readonly declared: number | undefined;

  constructor(info: BodyTooLargeInfo) {
    super(tooLargeDetail(info));
    this.name = 'BodyTooLargeError';
    this.limit = info.limit;
    this.declared = info.declared;
  }
}

/** The default error of a client that closed the connection before its body ended. */
export class BodyAbortedError extends Error {
  constructor() {
    super('client went away before the body ended');
    this.name = 'BodyAbortedError';
  }
}

/** Options of {@link readBody}. */
export interface ReadBodyOptions {
  /** Largest body accepted, in bytes. Required: there is no safe default for every service. */
  limit: number;
  /** The error an over-limit body rejects with; default a {@link BodyTooLargeError}. */
  tooLarge?: (info: BodyTooLargeInfo) => Error;
  /** The error a body cut short by the client (it closed the connection) rejects with; default a {@link BodyAbortedError}. */
  aborted?: () => Error;
}

/**
 * Reads a request body whole, bounded: rejects at once when the declared Content-Length is over
 * `limit`, and as soon as the bytes received pass it (the rest is read and discarded, so answer
 * with `Connection: close`), and when the client leaves before the body ends. Resolves with the
 * bytes.
 */
export function readBody(req: IncomingMessage, options: ReadBodyOptions): Promise<Buffer> {
  const { limit } = options;
  const tooLarge = options.tooLarge ?? ((info: BodyTooLargeInfo) => new BodyTooLargeError(info));
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(tooLarge({ limit, declared }));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null, body?: Buffer): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      if (err) reject(err);
      else resolve(body as Buffer);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        // Keep the stream flowing so the socket is not stuck; the bytes are dropped.
        req.resume();
        finish(tooLarge({ limit }));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish(null, Buffer.concat(chunks, size)));
    const aborted = options.aborted ?? (() => new BodyAbortedError());
    // Node reports a client that left mid-body as an `aborted` error (ECONNRESET), or only as 'close'.
    req.once('error', (err) => finish(req.complete ? err : aborted()));
    // 'close' follows every request, a complete one too: build the error only when it is the outcome
    // (an Error per request, with its stack, cost more than the rest of a small body's reading).
    req.once('close', () => {
      if (!done) finish(aborted());
    });
  });
}

/** Options of {@link readJsonBody}. */
export interface ReadJsonBodyOptions extends ReadBodyOptions {
  /** The error a body that is not JSON rejects with, given the parser's error; default that SyntaxError. */
  invalidJson?: (err: SyntaxError) => Error;
}

/**
 * {@link readBody}, then `JSON.parse` of the UTF-8 text. An empty body resolves to `undefined`
 * (some routes allow none).
 */
export async function readJsonBody(req: IncomingMessage, options: ReadJsonBodyOptions): Promise<unknown> {
  const body = await readBody(req, options);
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw options.invalidJson ? options.invalidJson(err as SyntaxError) : err;
  }
}
