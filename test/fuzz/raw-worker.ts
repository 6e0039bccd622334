/**
 * A raw worker connection for the protocol fuzz: a real `ws` client that sends whatever bytes it is
 * given (binary or text frames, or bytes straight onto the TCP socket, past the WebSocket framing),
 * and reports how the dispatcher closed it. Once registered it stays polite: it answers Pings (so
 * the liveness check does not drop it mid-case) and refuses any RunTask with `draining`, so a task
 * that reached it by mistake is re-routed instead of lost.
 */
import type { Socket } from 'node:net';
import { decodeDispatcherMessage, encodeWorkerMessage } from '@smart-routing/proto';
import WebSocket from 'ws';

export class RawWorker {
  closed: { code: number; reason: string } | undefined;
  welcomed = false;
  /** RunTasks that reached this connection (a producer task routed to a fuzz client). */
  runTasks = 0;
  /** False after raw TCP bytes: our own frames would land inside the garbage. */
  private polite = true;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.onFrame(data as Buffer);
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.notify();
    });
    ws.on('error', () => undefined); // a refused or cut connection shows up as a close
  }

  /** Opens `/worker-listen` with this Worker-Id. */
  static open(url: string, id: string): Promise<RawWorker> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/worker-listen`, {
      headers: { 'worker-id': id },
      perMessageDeflate: false,
      maxPayload: 256 * 1024 * 1024,
    });
    const worker = new RawWorker(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(worker));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Sends one frame. */
  send(bytes: Buffer | Uint8Array, binary = true): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes, { binary });
  }

  /** Writes bytes on the TCP socket under the WebSocket, bypassing its framing. */
  writeRaw(bytes: Buffer): void {
    this.polite = false;
    (this.ws as unknown as { _socket: Socket })._socket.write(bytes);
  }

  /** Resolves with the close code, or undefined if still open after `timeoutMs`. */
  async waitClose(timeoutMs: number): Promise<number | undefined> {
    await this.until(() => this.closed !== undefined, timeoutMs);
    return this.closed?.code;
  }

  /** Resolves true once a Welcome arrived, false if the socket closed or time ran out first. */
  async waitWelcome(timeoutMs: number): Promise<boolean> {
    await this.until(() => this.welcomed || this.closed !== undefined, timeoutMs);
    return this.welcomed;
  }

  /**
   * A WebSocket ping round trip: true when the pong came back, false when the socket closed (or
   * nothing came). Frames are handled in order, so a close caused by an earlier frame comes first.
   */
  async alive(timeoutMs: number): Promise<boolean> {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return false;
    let ponged = false;
    const onPong = (): void => {
      ponged = true;
      this.notify();
    };
    this.ws.once('pong', onPong);
    this.ws.ping();
    await this.until(() => ponged || this.closed !== undefined, timeoutMs);
    this.ws.off('pong', onPong);
    return ponged && this.closed === undefined;
  }

  /** Closes with 1000 (or cuts the socket) and waits. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.polite) this.ws.close(1000);
    else this.ws.terminate();
    if ((await this.waitClose(2000)) === undefined) this.ws.terminate();
  }

  private onFrame(data: Buffer): void {
    let frame;
    try {
      frame = decodeDispatcherMessage(data);
    } catch {
      return;
    }
    if (frame.body === 'welcome') this.welcomed = true;
    else if (frame.body === 'ping' && this.polite)
      this.ws.send(encodeWorkerMessage({ heartbeat: { pingId: frame.ping.pingId, state: 'ready' } }));
    else if (frame.body === 'runTask') {
      this.runTasks++;
      if (this.polite)
        this.ws.send(
          encodeWorkerMessage({
            taskResult: { taskId: frame.runTask.taskId, error: { code: 'draining', message: 'fuzz client' } },
          }),
        );
    }
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private until(check: () => boolean, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      const waiter = (): void => {
        if (check()) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.waiters.add(waiter);
    });
  }
}
