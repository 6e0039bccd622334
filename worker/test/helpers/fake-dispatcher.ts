import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  decodeWorkerMessage,
  encodeDispatcherMessage,
  PROTOCOL_VERSION,
  type DispatcherMessageInput,
  type Welcome,
  type WorkerMessage,
} from '@smart-routing/proto';
import { pino, type Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';

/** A received frame, with the connection it came on (1 = first connection). */
export type Received = WorkerMessage & { connection: number; at: number };

/**
 * A tiny dispatcher for tests: a real WebSocket server on 127.0.0.1 speaking the protocol. It
 * answers Hello with Welcome, records every frame, and lets the test send any frame.
 */
export class FakeDispatcher {
  readonly received: Received[] = [];
  readonly upgrades: IncomingMessage['headers'][] = [];
  /** Close codes of finished connections, in order. */
  readonly closeCodes: number[] = [];
  private readonly waiters: {
    from: number;
    pred: (m: Received) => boolean;
    resolve: (m: Received) => void;
  }[] = [];
  /**
   * Extra Welcome fields for the next connections (a replica's `role`, `replicaId`,
   * `fencingToken`); change it to play a replica whose role changed.
   */
  welcome: Partial<Welcome>;
  private socket: WebSocket | undefined;
  private connections = 0;
  private readonly server: Server;
  private readonly wss = new WebSocketServer({ noServer: true });

  private constructor(
    readonly port: number,
    private readonly options: {
      token?: string;
      heartbeatIntervalMs: number;
      maxFrameBytes?: number;
      host: string;
    },
    server: Server,
    welcome: Partial<Welcome>,
  ) {
    this.server = server;
    this.welcome = welcome;
  }

  /** Starts on `host` (default 127.0.0.1) and `port` (0 = any free one). */
  static async start(
    options: {
      port?: number;
      host?: string;
      token?: string;
      heartbeatIntervalMs?: number;
      maxFrameBytes?: number;
      welcome?: Partial<Welcome>;
    } = {},
  ): Promise<FakeDispatcher> {
    const host = options.host ?? '127.0.0.1';
    const server = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const d = new FakeDispatcher(
      port,
      {
        token: options.token,
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1000,
        maxFrameBytes: options.maxFrameBytes,
        host,
      },
      server,
      options.welcome ?? {},
    );
    server.on('upgrade', (req, socket, head) => d.onUpgrade(req, socket, head));
    return d;
  }

  /** Base URL to give the worker. */
  get url(): string {
    return `http://${this.options.host}:${this.port}`;
  }

  /** True while a worker is connected. */
  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Sends a frame to the connected worker. */
  send(message: DispatcherMessageInput): void {
    this.raw(encodeDispatcherMessage(message));
  }

  /** Sends raw bytes (or text) to the connected worker. */
  raw(data: Uint8Array | string): void {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) throw new Error('no worker connected');
    this.socket.send(data, { binary: typeof data !== 'string' });
  }

  /** Resolves with the first frame at index >= `from` that matches. */
  waitFor(pred: (m: Received) => boolean, from = 0, timeoutMs = 20_000): Promise<Received> {
    const found = this.received.slice(from).find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = { from, pred, resolve: (m: Received) => (clearTimeout(timer), resolve(m)) };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(
          new Error(`timed out waiting for a frame; got: ${this.received.map((m) => m.body).join(', ')}`),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** The TaskResult for `taskId`. */
  async result(taskId: string, from = 0): Promise<Extract<Received, { body: 'taskResult' }>['taskResult']> {
    const m = await this.waitFor((x) => x.body === 'taskResult' && x.taskResult.taskId === taskId, from);
    return (m as Extract<Received, { body: 'taskResult' }>).taskResult;
  }

  /** Frames of one kind, in order. */
  bodies<K extends WorkerMessage['body']>(body: K, from = 0): Extract<Received, { body: K }>[] {
    return this.received.slice(from).filter((m) => m.body === body) as Extract<Received, { body: K }>[];
  }

  /** Drops the worker's connection without a close handshake. */
  dropWorker(): void {
    this.socket?.terminate();
  }

  /** Stops the server and drops every connection. */
  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgrades.push(req.headers);
    // The worker may hang up first (it reconnects fast): a reset must not be an uncaught error.
    socket.on('error', () => socket.destroy());
    if (this.options.token && req.headers.authorization !== `Bearer ${this.options.token}`) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
  }

  private onConnection(ws: WebSocket): void {
    const connection = ++this.connections;
    this.socket = ws;
    ws.on('close', (code) => this.closeCodes.push(code));
    ws.on('message', (data: Buffer) => {
      let msg: WorkerMessage;
      try {
        msg = decodeWorkerMessage(data);
      } catch {
        ws.close(1002);
        return;
      }
      const rec = { ...msg, connection, at: performance.now() } as Received;
      this.received.push(rec);
      if (msg.body === 'hello')
        this.send({
          welcome: {
            protocolVersion: PROTOCOL_VERSION,
            heartbeatIntervalMs: this.options.heartbeatIntervalMs,
            ...this.welcome,
            ...(this.options.maxFrameBytes === undefined
              ? {}
              : { maxFrameBytes: this.options.maxFrameBytes }),
          },
        });
      const index = this.received.length - 1;
      for (const w of [...this.waiters]) {
        if (index >= w.from && w.pred(rec)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(rec);
        }
      }
    });
  }
}

/** A logger that keeps its records in memory, for checking the contract's log events. */
export function memoryLogger(): { logger: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { logger, records };
}
