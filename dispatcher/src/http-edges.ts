import { isUtf8 } from 'node:buffer';
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DispatcherError } from './errors.js';
import { sendError } from './http-json.js';

/**
 * The HTTP edges Node answers on its own, made JSON like every other reply
 * (`{"error": {"code", "message"}}`), and the connection cap:
 *
 *   connection ── open >= maxConnections? ── yes ──> 503 too_many_connections, closed
 *   CONNECT ──────────────────────────────────────> 405 method_not_allowed, closed
 *   Expect: other than 100-continue ──────────────> 417 expectation_failed
 *
 * Node's own `server.maxConnections` drops the socket without a word; here the client learns why
 * and when to come back (Retry-After).
 */

/** Options of {@link installHttpEdges}. */
export interface HttpEdgesOptions {
  /** Most open TCP connections (HTTP and worker sockets); more get a 503 and are closed. */
  readonly maxConnections: number;
}

/** Installs the listeners of the file header on `server`. */
export function installHttpEdges(server: Server, options: HttpEdgesOptions): void {
  let open = 0;
  // Runs before Node's own listener: an over-cap socket is answered before any request is parsed.
  server.prependListener('connection', (socket: Socket) => {
    if (open >= options.maxConnections) {
      writeRawError(
        socket,
        new DispatcherError(
          'too_many_connections',
          `the dispatcher has ${open} connections open, its limit (MAX_CONNECTIONS)`,
          1,
        ),
      );
      return;
    }
    open++;
    socket.once('close', () => open--);
  });
  server.on('connect', (_req: IncomingMessage, socket: Duplex) =>
    writeRawError(socket, new DispatcherError('method_not_allowed', 'CONNECT is not supported')),
  );
  server.on('checkExpectation', (req: IncomingMessage, res) => {
    const expect = String(req.headers.expect ?? '').slice(0, 100);
    res.setHeader('Connection', 'close');
    sendError(res, new DispatcherError('expectation_failed', `Expect: ${expect} is not supported`));
    req.resume();
  });
}

/** Whether a request arrived on a socket already answered (over the connection cap): ignore it. */
export function isAnsweredSocket(req: IncomingMessage): boolean {
  return req.socket.writableEnded;
}

/** body-parser `verify`: a body that is not valid UTF-8 is a 400, not silently replaced characters. */
export function verifyUtf8(_req: unknown, _res: unknown, buf: Buffer, encoding?: string): void {
  if ((encoding === undefined || /^utf-?8$/i.test(encoding)) && !isUtf8(buf))
    throw new DispatcherError('invalid_request', 'the body is not valid UTF-8');
}

/** Writes `err` as a complete HTTP/1.1 answer on a raw socket and closes it. */
export function writeRawError(socket: Duplex, err: DispatcherError): void {
  socket.on('error', () => socket.destroy());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(err.toBody());
  const headers = [
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...(err.retryAfterS !== undefined ? [`Retry-After: ${err.retryAfterS}`] : []),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
}
