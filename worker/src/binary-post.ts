import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { ResponseTooLargeError } from './bounded-body.js';

/**
 * One POST of a binary body on a keep-alive connection, its answer read whole and bounded. The
 * infer hop of the worker (triton-client.ts) uses it instead of `fetch`: WHATWG fetch wraps every
 * body in web streams and copies it chunk by chunk, which costs the worker more CPU than the hop
 * itself for a 600 KB tensor. The answer is read into one buffer of its Content-Length.
 */

/** Keep-alive agents for `binaryPost`, one per client; `destroy()` closes their sockets. */
export class PostAgents {
  private http: HttpAgent | undefined;
  private https: HttpsAgent | undefined;

  /** The agent for a URL's protocol. */
  for(url: URL): HttpAgent {
    if (url.protocol === 'https:') return (this.https ??= new HttpsAgent({ keepAlive: true }));
    return (this.http ??= new HttpAgent({ keepAlive: true }));
  }

  /** Closes every kept connection. Safe to call twice. */
  destroy(): void {
    this.http?.destroy();
    this.https?.destroy();
    this.http = undefined;
    this.https = undefined;
  }
}

/** The answer of `binaryPost`. */
export interface BinaryAnswer {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Options of `binaryPost`. */
export interface BinaryPostOptions {
  headers: Record<string, string>;
  body: Uint8Array;
  /** Ends the call (the socket is destroyed); the promise rejects with the signal's reason. */
  signal: AbortSignal;
  /** Largest answer body, in bytes. */
  limitBytes: number;
  /** Names the call in a ResponseTooLargeError. */
  what: string;
  agents: PostAgents;
}

/**
 * POSTs `body` to `url` and reads the answer, at most `limitBytes` (a declared Content-Length
 * over it is refused before reading; a streamed one as it passes the limit).
 * @throws ResponseTooLargeError, the signal's reason, or the socket's error.
 */
export function binaryPost(url: URL, options: BinaryPostOptions): Promise<BinaryAnswer> {
  const { signal, limitBytes, what } = options;
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method: 'POST',
      agent: options.agents.for(url),
      headers: { ...options.headers, 'content-length': String(options.body.byteLength) },
    });
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      reject(err);
    };
    const onAbort = (): void => fail(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    req.once('error', fail);
    req.once('response', (res) => {
      res.once('error', fail);
      const declared = Number(res.headers['content-length']);
      const known = res.headers['content-length'] !== undefined && Number.isSafeInteger(declared);
      if (known && declared > limitBytes) {
        fail(new ResponseTooLargeError(what, limitBytes, declared));
        return;
      }
      // One buffer of the declared size; chunks gathered only when the length is not known.
      const whole = known ? Buffer.allocUnsafe(declared) : undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        if (size + chunk.length > (known ? declared : limitBytes)) {
          fail(
            known
              ? new Error(`${what}: the answer is longer than its Content-Length`)
              : new ResponseTooLargeError(what, limitBytes),
          );
          return;
        }
        if (whole) chunk.copy(whole, size);
        else chunks.push(chunk);
        size += chunk.length;
      });
      res.once('end', () => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        const body = whole ? whole.subarray(0, size) : Buffer.concat(chunks, size);
        resolve({
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? '',
          headers: res.headers,
          body,
        });
      });
      res.once('close', () => {
        if (!res.complete) fail(new Error(`${what}: the connection closed before the answer ended`));
      });
    });
    req.end(options.body);
  });
}
