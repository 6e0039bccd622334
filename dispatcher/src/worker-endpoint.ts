import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import {
  PROTOCOL_VERSION,
  decodeWorkerMessage,
  encodeDispatcherMessage,
  type DispatcherMessageInput,
  type Heartbeat,
  type Hello,
  type LabelEvent,
  type TaskResult,
} from '@smart-routing/proto';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ResolvedOptions } from './config.js';
import { DispatcherError } from './errors.js';
import { LogLimiter } from './log-limiter.js';
import { WorkerQuarantine } from './quarantine.js';
import type { WorkerInfo } from './routing/types.js';

/** Most task types one worker may announce, and their longest name. */
const MAX_TASK_TYPES = 64;
const MAX_TASK_TYPE_LENGTH = 100;

/** Path workers connect to. */
export const WORKER_PATH = '/worker-listen';

/** What the endpoint reports to the rest of the dispatcher (the task tracker). */
export interface WorkerEvents {
  joined(info: WorkerInfo): void;
  left(workerId: string, reason: string): void;
  taskResult(workerId: string, result: TaskResult): void;
  labelEvent(workerId: string, event: LabelEvent): void;
  heartbeat(workerId: string, beat: Heartbeat): void;
}

/** Options of {@link WorkerEndpoint}. */
export interface WorkerEndpointOptions {
  readonly options: ResolvedOptions;
  readonly logger: Logger;
  readonly events: WorkerEvents;
  /** False once the dispatcher shuts down: upgrades get 503. */
  readonly isAccepting: () => boolean;
  /**
   * Replicated mode: what Welcome says about this replica (its token while it leads, id, role)
   * [unset: standalone, token 0, no id].
   */
  readonly replica?: () => { fencingToken: number; replicaId: string; role: 'leader' | 'standby' };
  /** Hears every refused upgrade by its error code (for the metrics) [unset: not counted]. */
  readonly onRefused?: (code: string) => void;
}

const WORKER_ID = /^[\w.:@-]{1,200}$/;

interface Connection {
  readonly id: string;
  readonly ws: WebSocket;
  /** Who is behind it, whatever id it uses: see `peerKey`. */
  readonly peer: string;
  /** performance.now() when its Hello was welcomed: a short session after it is a flap of its peer. */
  joinedAt: number | undefined;
  /** Hello received and accepted. */
  registered: boolean;
  /** Closing after a protocol error or shutdown: further frames are ignored. */
  closing: boolean;
  /** Label capacity accepted from the Hello (after clamping): reports are cut to it. */
  labelCapacity: number;
  lastSeen: number;
  lastPing: number;
  helloTimer: NodeJS.Timeout | undefined;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * The WebSocket side: workers connect to `/worker-listen` on the dispatcher's HTTP server.
 *
 *   upgrade ─ path? token? Worker-Id? peer quarantined? duplicate? ── no ──> HTTP 404/401/400/429/409/503
 *      │ yes                                                            (socket closed)
 *   open ── Hello within helloTimeoutMs? ── no ──> close 1008
 *      │ yes, same protocol version? ── no ──> close 1002
 *      │ capacity / slots clamped to maxWorkerLabels / maxWorkerSlots (logged)
 *   Welcome ─> registered: TaskResult / LabelEvent / Heartbeat -> events
 *      │ malformed frame -> close 1002; text frame -> 1003; oversize -> 1009 (ws)
 *      │ silent > workerTimeoutMs -> terminate; silent > 2 heartbeats -> Ping
 *   close ─> events.left(id); joined < minWorkerSessionMs ago: a strike against the peer
 *            (peerFlapStrikes within quarantineWindowMs: the peer's upgrades get 429 for a cool-down)
 */
export class WorkerEndpoint {
  private readonly wss: WebSocketServer;
  private readonly connections = new Map<string, Connection>();
  private readonly liveness: NodeJS.Timeout;
  private readonly livenessEveryMs: number;
  /** When the last liveness check ran, and since when this process could read (after a pause). */
  private lastLivenessCheck = Date.now();
  private listeningSince = 0;
  private readonly tokenDigest: Buffer | undefined;
  private readonly perWorkerDigests: ReadonlyMap<string, Buffer>;
  private readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  private readonly refusalLog = new LogLimiter();
  /** Flapping peers, keyed by `peerKey` (a worker id quarantine alone misses a peer that changes ids). */
  private readonly peers: WorkerQuarantine;
  private pingSeq = 0;
  private closed: Promise<void> | undefined;

  constructor(
    private readonly server: Server,
    private readonly opts: WorkerEndpointOptions,
  ) {
    const { options } = opts;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayloadBytes,
      perMessageDeflate: false,
    });
    this.tokenDigest = options.workerToken === undefined ? undefined : digest(options.workerToken);
    this.perWorkerDigests = new Map(
      Object.entries(options.workerTokens).map(([id, token]) => [id, digest(token)]),
    );
    this.peers = new WorkerQuarantine({
      strikes: options.peerFlapStrikes,
      windowMs: options.quarantineWindowMs,
      cooldownMs: options.quarantineMs,
      maxCooldownMs: options.quarantineMs * 10,
    });
    this.onUpgrade = (req, socket, head) => this.handleUpgrade(req, socket, head);
    server.on('upgrade', this.onUpgrade);
    const every = Math.max(
      10,
      Math.min(options.heartbeatIntervalMs, Math.floor(options.workerTimeoutMs / 2)),
    );
    this.livenessEveryMs = every;
    this.liveness = setInterval(() => this.checkLiveness(), every).unref();
  }

  /** Peers whose upgrades are refused now for flapping (those whose cool-down ended are released here). */
  quarantinedPeers(): number {
    this.peers.releaseDue(performance.now());
    return this.peers.size;
  }

  /** Sends a frame to a registered worker; false when it is not connected. */
  send(workerId: string, message: DispatcherMessageInput): boolean {
    const conn = this.connections.get(workerId);
    if (!conn || conn.closing || conn.ws.readyState !== conn.ws.OPEN) return false;
    conn.ws.send(encodeDispatcherMessage(message));
    return true;
  }

  /** Sends a frame to every registered worker (Leadership after a failover). */
  broadcast(message: DispatcherMessageInput): void {
    for (const conn of this.connections.values()) if (conn.registered) this.send(conn.id, message);
  }

  /** Tells every registered worker to stop taking tasks. */
  drainAll(reason: string): void {
    for (const conn of this.connections.values())
      if (conn.registered) this.send(conn.id, { drain: { reason } });
  }

  /** Closes every worker socket (1001) and stops listening for upgrades. Safe to call twice. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      clearInterval(this.liveness);
      this.server.off('upgrade', this.onUpgrade);
      const waits: Promise<void>[] = [];
      for (const conn of this.connections.values()) {
        if (conn.helloTimer) clearTimeout(conn.helloTimer);
        conn.closing = true;
        if (conn.ws.readyState === conn.ws.CLOSED) continue;
        waits.push(new Promise((resolve) => conn.ws.once('close', () => resolve())));
        conn.ws.close(1001, 'dispatcher shutting down');
      }
      // A peer that does not answer the close handshake gets cut off.
      const cutoff = setTimeout(() => {
        for (const conn of this.connections.values()) conn.ws.terminate();
      }, 1000).unref();
      await Promise.all(waits);
      clearTimeout(cutoff);
      await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    })();
    return this.closed;
  }

  // ---------------------------------------------------------------- upgrade

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== WORKER_PATH)
      return this.refuse(req, socket, new DispatcherError('not_found', `no WebSocket endpoint at ${path}`));
    if (!this.opts.isAccepting() || this.closed)
      return this.refuse(req, socket, new DispatcherError('shutting_down', undefined, 1));
    // ws would answer these with a plain-text 400; the dispatcher's answers are JSON.
    if (
      req.headers['sec-websocket-version'] !== '13' ||
      typeof req.headers['sec-websocket-key'] !== 'string' ||
      String(req.headers.upgrade).toLowerCase() !== 'websocket'
    )
      return this.refuse(
        req,
        socket,
        new DispatcherError(
          'invalid_request',
          'a WebSocket upgrade needs Upgrade: websocket, a Sec-WebSocket-Key and Sec-WebSocket-Version: 13',
        ),
      );
    const id = req.headers['worker-id'];
    // A listed id needs its own token; the shared token (when set) serves the ids not listed.
    const expected =
      typeof id === 'string' && this.perWorkerDigests.has(id)
        ? this.perWorkerDigests.get(id)
        : this.perWorkerDigests.size > 0 && this.tokenDigest === undefined
          ? null
          : this.tokenDigest;
    if (expected !== undefined && !tokenMatches(req.headers.authorization, expected))
      return this.refuse(req, socket, new DispatcherError('unauthorized', 'missing or invalid worker token'));
    if (typeof id !== 'string' || !WORKER_ID.test(id))
      return this.refuse(req, socket, new DispatcherError('invalid_worker_id'));
    const credential =
      expected === undefined ? 'open' : expected === this.perWorkerDigests.get(id) ? 'own' : 'shared';
    const peer = peerKey(id, credential, req);
    const left = this.peers.remainingMs(peer, performance.now());
    if (left !== undefined)
      return this.refuse(
        req,
        socket,
        new DispatcherError(
          'worker_quarantined',
          `this peer's worker connections flapped; retry in ${Math.ceil(left / 1000)} s`,
          Math.ceil(left / 1000),
        ),
      );
    if (this.connections.has(id))
      return this.refuse(
        req,
        socket,
        new DispatcherError('duplicate_worker_id', `a connected worker already has id ${id}`),
      );
    // Without verifyClient, ws completes the upgrade synchronously, so no second upgrade can slip
    // in between the duplicate check above and the registration in the callback.
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(id, peer, ws));
  }

  /** Refuses an upgrade (JSON error, socket closed) and logs it, a few lines per code and 10 s. */
  private refuse(req: IncomingMessage, socket: Duplex, err: DispatcherError): void {
    this.opts.onRefused?.(err.code);
    const held = this.refusalLog.take(err.code, performance.now());
    if (held !== undefined) {
      const id = req.headers['worker-id'];
      this.opts.logger.warn(
        {
          event: 'worker_refused',
          code: err.code,
          status: err.status,
          // Attacker-controlled: cut short.
          worker_id: typeof id === 'string' ? id.slice(0, 200) : undefined,
          remote_address: req.socket.remoteAddress,
          suppressed: held,
        },
        `worker upgrade refused: ${err.code}`,
      );
    }
    refuse(socket, err);
  }

  // ---------------------------------------------------------------- connection

  private onConnection(id: string, peer: string, ws: WebSocket): void {
    const { logger, options } = this.opts;
    const conn: Connection = {
      id,
      ws,
      peer,
      joinedAt: undefined,
      registered: false,
      closing: false,
      labelCapacity: 1,
      lastSeen: Date.now(),
      lastPing: 0,
      helloTimer: undefined,
    };
    this.connections.set(id, conn);
    setFrameLimit(ws, Math.min(options.preHelloMaxBytes, options.maxPayloadBytes));
    conn.helloTimer = setTimeout(
      () => this.protocolError(conn, 1008, 'no Hello in time'),
      options.helloTimeoutMs,
    ).unref();
    ws.on('message', (data, isBinary) => this.onFrame(conn, data as Buffer, isBinary));
    ws.on('pong', () => (conn.lastSeen = Date.now()));
    ws.on('error', (err) =>
      logger.warn({ err, event: 'worker_socket_error', worker_id: id }, 'worker socket error'),
    );
    ws.on('close', (code, reason) => this.onClose(conn, code, reason.toString()));
    logger.debug({ event: 'worker_connected', worker_id: id }, 'worker connected');
  }

  private onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    if (conn.closing) return;
    conn.lastSeen = Date.now();
    if (!isBinary) return this.protocolError(conn, 1003, 'text frames are not part of the protocol');
    let message;
    try {
      message = decodeWorkerMessage(data);
    } catch (err) {
      return this.protocolError(conn, 1002, (err as Error).message);
    }
    const { events, logger } = this.opts;
    try {
      if (!conn.registered) {
        if (message.body !== 'hello')
          return this.protocolError(conn, 1002, `expected hello, got ${message.body}`);
        return this.onHello(conn, message.hello);
      }
      switch (message.body) {
        case 'hello':
          return this.protocolError(conn, 1002, 'hello sent twice on one connection');
        // A worker cannot hold more labels than its capacity: longer reports are cut (most recent kept).
        case 'taskResult':
          return events.taskResult(conn.id, capLabels(message.taskResult, conn.labelCapacity));
        case 'labelEvent':
          return events.labelEvent(conn.id, capLabels(message.labelEvent, conn.labelCapacity));
        case 'heartbeat':
          return events.heartbeat(conn.id, capLabels(message.heartbeat, conn.labelCapacity));
      }
    } catch (err) {
      // A bug in our handling must not take the connection or the process down.
      logger.error(
        { err, event: 'worker_frame_failed', worker_id: conn.id },
        'handling a worker frame failed',
      );
    }
  }

  private onHello(conn: Connection, hello: Hello): void {
    const { events, logger, options } = this.opts;
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      return this.protocolError(
        conn,
        1002,
        `protocol version ${hello.protocolVersion} is not supported (dispatcher speaks ${PROTOCOL_VERSION})`,
      );
    }
    if (hello.workerId && hello.workerId !== conn.id)
      logger.warn(
        { event: 'worker_id_mismatch', worker_id: conn.id, hello_worker_id: hello.workerId.slice(0, 200) },
        'Hello names another id than the Worker-Id header; using the header',
      );
    // Limits: a worker claiming absurd capacity or slots would draw every task and bloat the
    // routing indices; it gets at most the configured maximum (0 counts as 1, as in the registry).
    const labelCapacity = Math.min(Math.max(1, hello.labelCapacity), options.maxWorkerLabels);
    const taskSlots = Math.min(Math.max(1, hello.taskSlots), options.maxWorkerSlots);
    if (hello.labelCapacity > options.maxWorkerLabels || hello.taskSlots > options.maxWorkerSlots)
      logger.warn(
        {
          event: 'worker_claims_clamped',
          worker_id: conn.id,
          label_capacity: hello.labelCapacity,
          task_slots: hello.taskSlots,
          max_worker_labels: options.maxWorkerLabels,
          max_worker_slots: options.maxWorkerSlots,
        },
        'worker claims more labels or slots than allowed; clamped',
      );
    conn.labelCapacity = labelCapacity;
    const loadedLabels = hello.loadedLabels.slice(0, labelCapacity);
    // Task types are remembered after a worker leaves (for 503 vs 400): keep the set small.
    const taskTypes = hello.taskTypes
      .filter((t) => t.length > 0 && t.length <= MAX_TASK_TYPE_LENGTH)
      .slice(0, MAX_TASK_TYPES);
    // Only types it serves can be label-free (any type, when it announced none).
    const labelFreeTaskTypes = hello.labelFreeTaskTypes
      .filter(
        (t) =>
          t.length > 0 && (taskTypes.length === 0 ? t.length <= MAX_TASK_TYPE_LENGTH : taskTypes.includes(t)),
      )
      .slice(0, MAX_TASK_TYPES);
    clearTimeout(conn.helloTimer);
    conn.helloTimer = undefined;
    conn.ws.send(
      encodeDispatcherMessage({
        // The worker learns what was accepted, so a clamped worker knows it is routed less than it offered.
        welcome: {
          protocolVersion: PROTOCOL_VERSION,
          heartbeatIntervalMs: options.heartbeatIntervalMs,
          labelCapacity,
          taskSlots,
          maxFrameBytes: options.maxPayloadBytes,
          // Standalone: role standalone, token 0, no replica id (PROTOCOL.md, Several replicas).
          ...(this.opts.replica ? this.opts.replica() : { role: 'standalone' as const }),
        },
      }),
    );
    conn.registered = true;
    conn.joinedAt = performance.now();
    setFrameLimit(conn.ws, options.maxPayloadBytes);
    logger.info(
      {
        event: 'worker_joined',
        worker_id: conn.id,
        label_capacity: labelCapacity,
        task_slots: taskSlots,
        loaded_labels: loadedLabels,
        task_types: taskTypes,
        label_free_task_types: labelFreeTaskTypes,
      },
      'worker joined',
    );
    events.joined({
      id: conn.id,
      labelCapacity,
      taskSlots,
      loadedLabels,
      taskTypes,
      labelFreeTaskTypes,
      state: hello.state === 'draining' ? 'draining' : 'ready',
      memoryBudgetBytes: hello.memoryBudgetBytes > 0 ? hello.memoryBudgetBytes : undefined,
    });
  }

  /** Logs, closes with `code`, and takes the worker out of routing at once. */
  private protocolError(conn: Connection, code: number, message: string): void {
    if (conn.closing) return;
    this.opts.logger.warn(
      { event: 'worker_protocol_error', worker_id: conn.id, close_code: code, message },
      'closing worker connection',
    );
    conn.closing = true;
    if (conn.helloTimer) clearTimeout(conn.helloTimer);
    this.unregister(conn, `protocol error: ${message}`);
    // Close reasons are limited to 123 bytes.
    conn.ws.close(code, Buffer.from(message).subarray(0, 120).toString());
    setTimeout(() => conn.ws.terminate(), 1000).unref();
  }

  private unregister(conn: Connection, reason: string): void {
    if (!conn.registered) return;
    conn.registered = false;
    this.opts.events.left(conn.id, reason);
  }

  private onClose(conn: Connection, code: number, reason: string): void {
    if (conn.helloTimer) clearTimeout(conn.helloTimer);
    if (this.connections.get(conn.id) === conn) this.connections.delete(conn.id);
    const wasRegistered = conn.registered;
    this.unregister(conn, `connection closed (${code}${reason ? ` ${reason}` : ''})`);
    if (wasRegistered)
      this.opts.logger.info(
        { event: 'worker_left', worker_id: conn.id, close_code: code, reason },
        'worker left',
      );
    this.countFlap(conn);
  }

  /**
   * A worker that left soon after it joined is a strike against its peer (not at shutdown). Peers
   * that never get a Hello accepted are bounded by the Hello timeout and pre-Hello frame limit.
   */
  private countFlap(conn: Connection): void {
    if (this.closed || conn.joinedAt === undefined) return;
    const now = performance.now();
    if (now - conn.joinedAt >= this.opts.options.minWorkerSessionMs) return;
    const start = this.peers.strike(conn.peer, 'flapping', now);
    if (start)
      this.opts.logger.warn(
        {
          event: 'worker_peer_quarantined',
          peer: conn.peer,
          worker_id: conn.id,
          cooldown_ms: start.cooldownMs,
        },
        'worker peer quarantined for flapping: its upgrades are refused until the cool-down ends',
      );
    // Forgets peers with nothing left to remember (many short-lived ids, addresses).
    this.peers.releaseDue(now);
  }

  private checkLiveness(): void {
    const { options, logger } = this.opts;
    const now = Date.now();
    // This check runs late: the process itself was paused (SIGSTOP, a long GC, a blocked loop) and
    // the workers' frames of that time still wait unread in the sockets (timers run before I/O).
    // Their silence counts from now, else every worker is dropped on waking (regression: failover
    // chaos, worker_lost for tasks of a leader woken from SIGSTOP).
    if (now - this.lastLivenessCheck > this.livenessEveryMs + options.workerTimeoutMs / 2)
      this.listeningSince = now;
    this.lastLivenessCheck = now;
    for (const conn of this.connections.values()) {
      if (!conn.registered || conn.closing) continue;
      const silent = now - Math.max(conn.lastSeen, this.listeningSince);
      if (silent > options.workerTimeoutMs) {
        logger.warn(
          { event: 'worker_timeout', worker_id: conn.id, silent_ms: silent },
          'worker silent too long; dropping it',
        );
        conn.closing = true;
        this.unregister(conn, `silent for ${silent} ms`);
        conn.ws.terminate();
      } else if (
        silent > 2 * options.heartbeatIntervalMs &&
        now - conn.lastPing > options.heartbeatIntervalMs
      ) {
        conn.lastPing = now;
        this.send(conn.id, { ping: { pingId: ++this.pingSeq } });
      }
    }
  }
}

/**
 * Who is behind a worker connection, whatever Worker-Id it sends: a per-worker credential is bound
 * to its id (`credential:<id>`); the shared token, or no token, could be anyone, so the remote
 * address tells peers apart (`shared-token@<addr>`, `open@<addr>`). Tokens never appear in it.
 */
function peerKey(id: string, credential: 'own' | 'shared' | 'open', req: IncomingMessage): string {
  if (credential === 'own') return `credential:${id}`;
  const address = req.socket.remoteAddress ?? 'unknown';
  return credential === 'shared' ? `shared-token@${address}` : `open@${address}`;
}

/** `message` with its loadedLabels cut to `capacity` entries (the message itself when short enough). */
function capLabels<T extends { loadedLabels: string[] }>(message: T, capacity: number): T {
  return message.loadedLabels.length <= capacity
    ? message
    : { ...message, loadedLabels: message.loadedLabels.slice(0, capacity) };
}

/** Whether `header` is `Bearer <token>` with the token digested to `expected` (null: none matches). */
function tokenMatches(header: string | undefined, expected: Buffer | null): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return match !== null && expected !== null && timingSafeEqual(digest(match[1]!.trim()), expected);
}

/**
 * Sets the largest frame `ws` accepts from now on. ws has one maxPayload per server; its receiver
 * checks the length in each frame header against this field before buffering anything, so a small
 * pre-Hello limit costs nothing and a 50 MB frame from a stranger is refused without being read.
 */
function setFrameLimit(ws: WebSocket, bytes: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: number } })._receiver;
  if (receiver && typeof receiver._maxPayload === 'number') receiver._maxPayload = bytes;
}

/** Answers a refused upgrade with a JSON error and closes the socket. */
function refuse(socket: Duplex, err: DispatcherError): void {
  const body = JSON.stringify(err.toBody());
  const headers = [
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...(err.retryAfterS !== undefined ? [`Retry-After: ${err.retryAfterS}`] : []),
  ];
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
}
