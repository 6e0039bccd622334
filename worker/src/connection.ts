import type { LookupAddress, LookupOptions } from 'node:dns';
import { performance } from 'node:perf_hooks';
import {
  decodeDispatcherMessage,
  encodeWorkerMessage,
  PROTOCOL_VERSION,
  type DispatcherRole,
  type Leadership,
  type LabelOrder,
  type RunTask,
  type TaskError,
  type Welcome,
  type WorkerMessageInput,
  type WorkerState,
} from '@smart-routing/proto';
import { isValidModelName } from '@smart-routing/model-repo';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { errorMessage } from './errors.js';
import type { LabelChange, LabelManager } from './label-manager.js';
import type { TaskOutcome, TaskRunner } from './task-runner.js';

/**
 * The worker's WebSocket link to the dispatcher (transport only): announces itself, keeps the
 * heartbeat going, hands every RunTask to the task runner and sends its outcome back, forwards every
 * label change, and reconnects when the link drops.
 *
 *   connect ─ open ─> Hello ─> (Welcome: heartbeat every N ms) ─> RunTask / LabelOrder / Drain / Ping
 *      ^                                                               │
 *      └──── backoff (capped, jittered) <─── close / error ────────────┘   (never after close())
 *
 *   RunTask ─ draining? ─ yes ─> runner.refuse('draining') ─┐
 *                       └ no ──> runner.run ────────────────┴─> TaskResult (+ loaded_labels)
 *
 * With an `owner` (DispatcherLinks: one link per dispatcher replica) the fencing check and where a
 * result goes are the owner's: orders with an old token are refused, a result whose link is gone
 * goes to the leader's link. Without one, a link works alone as it always did.
 *
 * A TaskResult larger than the dispatcher's frame limit (`Welcome.max_frame_bytes`) would only
 * get the link closed (1009) and the task retried or lost; it is replaced by a `bad_parameters`
 * error that says so (as a model server answers a response over its MAX_RESPONSE_BYTES).
 */

/** Longest delay a Node timer accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One address of a dispatcher host name (from `dns.lookup`). */
export interface ResolvedAddress {
  address: string;
  /** 4 or 6. */
  family: number;
}

/** Which orders the fencing check sees. */
export type FencedOrder = 'run_task' | 'label_order' | 'cancel_task';

/** How `sendResult` ended: sent; no open socket for it; or the `too large` error sent instead. */
export type ResultDelivery = 'sent' | 'no_link' | TaskError;

/**
 * What a link asks of the set of links it belongs to (`DispatcherLinks`): the fencing check and
 * where results go. Every call comes from the link's own socket events.
 */
export interface LinkOwner {
  /** True once the worker drains for good (SIGTERM): a link opened later starts draining too. */
  readonly drainingForGood: boolean;
  /** A Welcome arrived on `link` (its role and token are on it). */
  welcomed(link: WorkerConnection, welcome: Welcome): void;
  /** A Leadership frame arrived on `link`. */
  leadership(link: WorkerConnection, leadership: Leadership): void;
  /** Records `token`; true when it is older than the newest seen (the order is then refused). */
  isStale(link: WorkerConnection, token: number, order: FencedOrder, subject: string): boolean;
  /** Sends the outcome of a task `link` delivered on its socket number `generation` (see `deliveredAs`). */
  deliver(link: WorkerConnection, generation: number, outcome: TaskOutcome): boolean | TaskError;
  /** `link`'s socket closed; the link reconnects by itself unless it was closed. */
  disconnected(link: WorkerConnection): void;
}

/** Options of `WorkerConnection`. */
export interface WorkerConnectionOptions {
  /** Dispatcher base URL (`http(s)://` or `ws(s)://`); `/worker-listen` is appended. */
  dispatcherUrl: string;
  /** Sent as the `Worker-Id` header and in Hello. */
  workerId: string;
  /** Sent as `Authorization: Bearer <token>` when set. */
  token?: string;
  /** Runs the tasks (slots, labels, handlers); its slots and task types go into Hello. */
  runner: TaskRunner;
  /** What is loaded: sent in every frame that carries `loaded_labels`; LabelOrders go to it. */
  labels: LabelManager;
  /** Announced in Hello: memory the models may take (0 = only the label count limits). Default 0. */
  memoryBudgetBytes?: number;
  /** Receives the link's events (`dispatcher_connected`, `dispatcher_disconnected`, `malformed_frame`, ...). */
  logger: Logger;
  /** First reconnect delay. Default 250 ms; doubles per failed try. */
  reconnectInitialMs?: number;
  /** Longest reconnect delay. Default 10 000 ms. */
  reconnectMaxMs?: number;
  /** Largest frame accepted from the dispatcher. Default 64 MiB. */
  maxPayload?: number;
  /** Whether the model server answers (see `ModelServerWatch`); false: reported draining, label tasks refused. Default always. */
  modelServerHealthy?: () => boolean;
  /**
   * Connect to this address instead of resolving the URL's host (one of several addresses of a
   * DNS name); the Host header and TLS name stay the URL's. Default: resolve at each connect.
   */
  address?: ResolvedAddress;
  /** The set of links this one belongs to (fencing, result routing). Default none: a lone link. */
  owner?: LinkOwner;
}

/** The worker side of `/worker-listen`. */
export class WorkerConnection {
  private readonly o: Required<
    Omit<WorkerConnectionOptions, 'token' | 'modelServerHealthy' | 'address' | 'owner'>
  > &
    Pick<WorkerConnectionOptions, 'token' | 'modelServerHealthy' | 'address' | 'owner'>;
  /** The `ws(s)://.../worker-listen` URL this link opens. */
  readonly url: string;
  /** Bumped on every new socket: a result goes back only on the socket its task came on. */
  private generation = 0;
  /** What the replica at the other end said in its last Welcome (`unspecified` before one). */
  private peer: { role: DispatcherRole; replicaId: string } = { role: 'unspecified', replicaId: '' };
  private ws: WebSocket | undefined;
  private closed = false;
  private state: WorkerState = 'ready';
  /**
   * True once this worker itself drains (SIGTERM, `drain()`): for good. A Drain frame from the
   * dispatcher only drains the current link (the dispatcher is going away), so a new link starts ready.
   */
  private drainingForGood = false;
  /** When the dispatcher was last heard from (a frame or a pong), performance.now() ms. */
  private lastHeardAt = 0;
  private attempt = 0;
  private heartbeatMs = 1000;
  /** Largest frame the dispatcher accepts (Welcome.max_frame_bytes); 0 = not told. */
  private maxFrameBytes = 0;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closePromise: Promise<void> | undefined;
  private readonly onLabelChange = (change: LabelChange) => this.sendLabelEvent(change);

  constructor(options: WorkerConnectionOptions) {
    this.o = {
      reconnectInitialMs: 250,
      reconnectMaxMs: 10_000,
      maxPayload: 64 * 1024 * 1024,
      memoryBudgetBytes: 0,
      ...options,
    };
    this.url = workerListenUrl(options.dispatcherUrl);
    this.o.labels.on('change', this.onLabelChange);
  }

  /** Tasks running now. */
  get tasksInFlight(): number {
    return this.o.runner.inFlight;
  }

  /** The pinned address this link connects to (undefined: the URL's host, resolved at connect). */
  get address(): string | undefined {
    return this.o.address?.address;
  }

  /** The role and replica id from the last Welcome on this link. */
  get replica(): { readonly role: DispatcherRole; readonly replicaId: string } {
    return this.peer;
  }

  /** True while a WebSocket to the dispatcher is open. */
  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Opens the link (and keeps reopening it until `close`). */
  start(): void {
    if (this.closed || this.ws) return;
    this.connect();
  }

  /**
   * Stops taking tasks (new RunTasks get `draining`), tells the dispatcher at once with a draining
   * heartbeat, and resolves when the tasks in flight have finished.
   */
  async drain(reason = 'worker shutting down'): Promise<void> {
    this.drainingForGood = true;
    return this.drainLink(reason);
  }

  /** Drains until the link ends: what a dispatcher's Drain frame asks for. */
  private async drainLink(reason: string): Promise<void> {
    if (this.state !== 'draining') {
      this.state = 'draining';
      this.o.logger.info({ event: 'worker_draining', reason, in_flight: this.o.runner.inFlight }, 'draining');
      this.sendHeartbeat(0);
    }
    await this.o.runner.whenIdle();
  }

  /** Closes the link with 1000 and stops reconnecting. Safe to call twice. */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closed = true;
    this.o.labels.off('change', this.onLabelChange);
    clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    const ws = this.ws;
    this.closePromise = new Promise<void>((resolve) => {
      if (!ws || ws.readyState === WebSocket.CLOSED) return resolve();
      const force = setTimeout(() => ws.terminate(), 2000).unref();
      ws.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, 'worker closing');
    });
    return this.closePromise;
  }

  // ------------------------------------------------------------------ link

  private connect(): void {
    const headers: Record<string, string> = { 'Worker-Id': this.o.workerId };
    if (this.o.token) headers.Authorization = `Bearer ${this.o.token}`;
    const pinned = this.o.address;
    const ws = new WebSocket(this.url, {
      headers,
      maxPayload: this.o.maxPayload,
      perMessageDeflate: false,
      generateMask: zeroMask,
      ...(pinned ? { lookup: pinnedLookup(pinned) } : {}),
    });
    this.ws = ws;
    this.generation++;
    this.peer = { role: 'unspecified', replicaId: '' };
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      this.o.logger.info(
        { event: 'dispatcher_connected', url: this.url, ...(pinned ? { address: pinned.address } : {}) },
        'connected to the dispatcher',
      );
      if (this.o.owner?.drainingForGood) this.drainingForGood = true;
      if (this.drainingForGood) this.state = 'draining';
      else if (this.state === 'draining') {
        // Regression (chaos test): a restarted dispatcher found every worker still draining for its predecessor.
        this.state = 'ready';
        this.o.logger.info({ event: 'worker_ready', reason: 'new dispatcher link' }, 'taking tasks again');
      }
      this.send({
        hello: {
          protocolVersion: PROTOCOL_VERSION,
          workerId: this.o.workerId,
          labelCapacity: this.o.labels.capacity,
          taskSlots: this.o.runner.slots,
          loadedLabels: this.o.labels.loaded(),
          taskTypes: this.o.runner.taskTypes,
          state: this.state === 'draining' || !this.modelServerHealthy() ? 'draining' : 'ready',
          labelFreeTaskTypes: this.o.runner.labelFreeTaskTypes,
          memoryBudgetBytes: this.o.memoryBudgetBytes,
        },
      });
    });
    ws.on('message', (data, isBinary) => {
      this.lastHeardAt = performance.now();
      this.onMessage(data, isBinary);
    });
    ws.on('pong', () => {
      this.lastHeardAt = performance.now();
    });
    ws.on('error', (err) => {
      this.o.logger.warn(
        { event: 'dispatcher_link_error', url: this.url, message: err.message },
        'link error',
      );
    });
    ws.on('close', (code, reason) => {
      if (this.ws === ws) this.ws = undefined;
      this.stopHeartbeat();
      this.o.owner?.disconnected(this);
      if (this.closed) return;
      const delay = this.nextDelay();
      this.o.logger.warn(
        { event: 'dispatcher_disconnected', code, reason: reason.toString(), retry_in_ms: Math.round(delay) },
        'link to the dispatcher closed; reconnecting',
      );
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = undefined;
        if (!this.closed) this.connect();
      }, delay);
      this.reconnectTimer.unref();
    });
  }

  /** Exponential backoff with jitter: a random delay in [d/2, d], d = initial * 2^attempt, capped. */
  private nextDelay(): number {
    const d = Math.min(this.o.reconnectMaxMs, this.o.reconnectInitialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return d / 2 + (Math.random() * d) / 2;
  }

  private send(message: WorkerMessageInput): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    try {
      ws.send(encodeWorkerMessage(message));
      return true;
    } catch (err) {
      this.o.logger.error(
        { event: 'frame_encode_failed', message: errorMessage(err) },
        'could not send a frame',
      );
      return false;
    }
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.lastHeardAt = performance.now();
    this.heartbeatTimer = setInterval(() => {
      this.sendHeartbeat(0);
      this.checkDispatcherAlive();
    }, this.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  /**
   * Liveness the other way round: a dispatcher whose host vanished sends no FIN, so a link that has
   * heard nothing (no frame, no pong) for three heartbeat intervals is cut and reopened.
   */
  private checkDispatcherAlive(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const silentMs = performance.now() - this.lastHeardAt;
    if (silentMs > Math.max(3 * this.heartbeatMs, 3000)) {
      this.o.logger.warn(
        { event: 'dispatcher_silent', silent_ms: Math.round(silentMs) },
        'dispatcher went silent; reconnecting',
      );
      ws.terminate();
      return;
    }
    ws.ping();
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  /** The model server's health changed: tell the dispatcher now rather than at the next heartbeat. */
  modelServerChanged(): void {
    this.sendHeartbeat(0);
  }

  private modelServerHealthy(): boolean {
    return this.o.modelServerHealthy?.() ?? true;
  }

  private sendHeartbeat(pingId: number): void {
    this.send({
      heartbeat: {
        inFlight: this.o.runner.inFlight,
        runningTaskIds: this.o.runner.runningTaskIds,
        // A dead model server is reported as draining: the dispatcher routes elsewhere until it is back.
        state: this.state === 'draining' || !this.modelServerHealthy() ? 'draining' : 'ready',
        loadedLabels: this.o.labels.loaded(),
        pingId,
      },
    });
  }

  private sendLabelEvent(change: LabelChange): void {
    this.send({
      labelEvent: {
        kind: change.kind,
        label: change.label,
        durationMs: change.durationMs,
        message: change.message,
        loadedLabels: this.o.labels.loaded(),
        footprintBytes: change.footprintBytes ?? 0,
      },
    });
  }

  // ------------------------------------------------------------------ frames

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (!isBinary) {
      this.o.logger.warn({ event: 'malformed_frame', message: 'text frame' }, 'ignored a text frame');
      return;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    let msg;
    try {
      msg = decodeDispatcherMessage(bytes);
    } catch (err) {
      this.o.logger.warn(
        { event: 'malformed_frame', message: errorMessage(err), bytes: bytes.length },
        'ignored a bad frame',
      );
      return;
    }
    switch (msg.body) {
      case 'welcome': {
        const { protocolVersion, heartbeatIntervalMs, maxFrameBytes } = msg.welcome;
        this.maxFrameBytes = maxFrameBytes > 0 ? maxFrameBytes : 0;
        if (protocolVersion !== PROTOCOL_VERSION)
          this.o.logger.error(
            { event: 'protocol_mismatch', ours: PROTOCOL_VERSION, theirs: protocolVersion },
            'dispatcher speaks another protocol version',
          );
        this.attempt = 0;
        // Timers take at most 2^31-1 ms (a larger value fires every 1 ms); below 10 ms is a flood.
        this.heartbeatMs =
          heartbeatIntervalMs > 0 ? Math.min(Math.max(heartbeatIntervalMs, 10), MAX_TIMER_MS) : 1000;
        this.startHeartbeat();
        this.peer = { role: msg.welcome.role, replicaId: msg.welcome.replicaId };
        this.o.logger.info(
          {
            event: 'dispatcher_welcome',
            heartbeat_interval_ms: this.heartbeatMs,
            ...(msg.welcome.replicaId
              ? {
                  replica_id: msg.welcome.replicaId,
                  role: msg.welcome.role,
                  fencing_token: msg.welcome.fencingToken ?? 0,
                }
              : {}),
          },
          'welcomed',
        );
        this.o.owner?.welcomed(this, msg.welcome);
        return;
      }
      case 'leadership':
        // A lone link has no other replica to prefer: nothing to do.
        this.o.owner?.leadership(this, msg.leadership);
        return;
      case 'ping':
        this.sendHeartbeat(msg.ping.pingId);
        return;
      case 'drain':
        this.drainLink(msg.drain.reason || 'dispatcher asked').catch(() => undefined);
        return;
      case 'labelOrder':
        if (this.isStale(msg.labelOrder.fencingToken, 'label_order', msg.labelOrder.label)) return;
        this.onLabelOrder(msg.labelOrder).catch((err: unknown) =>
          this.o.logger.error(
            { event: 'label_order_failed', message: errorMessage(err) },
            'label order failed',
          ),
        );
        return;
      case 'runTask':
        this.onRunTask(msg.runTask);
        return;
      case 'cancelTask': {
        if (this.isStale(msg.cancelTask.fencingToken, 'cancel_task', msg.cancelTask.taskId)) return;
        const cancelled = this.o.runner.cancel(msg.cancelTask.taskId);
        this.o.logger.info(
          { event: 'task_cancel', task_id: msg.cancelTask.taskId, running: cancelled },
          cancelled ? 'task cancelled' : 'cancel for a task not running here: ignored',
        );
        return;
      }
    }
  }

  private async onLabelOrder(order: LabelOrder): Promise<void> {
    const { action, label } = order;
    if (!isValidModelName(label)) {
      this.o.logger.warn(
        { event: 'label_order_rejected', label, action },
        'label order with an invalid label',
      );
      return;
    }
    if (action === 'load') {
      // Already loaded: acknowledge so the dispatcher's picture is confirmed.
      if (this.o.labels.isLoaded(label))
        return this.sendLabelEvent({ kind: 'loaded', label, durationMs: 0, message: 'already loaded' });
      await this.o.labels.load(label); // reports loaded / load_failed itself
    } else if (action === 'unload') {
      const done = await this.o.labels.unload(label, 'dispatcher order');
      if (done === undefined)
        this.sendLabelEvent({ kind: 'evicted', label, durationMs: 0, message: 'was not loaded' });
    } else {
      this.o.logger.warn({ event: 'label_order_rejected', label, action }, 'label order without an action');
    }
  }

  // ------------------------------------------------------------------ tasks

  /** The fencing check (issue 13): the owner's; a lone link takes every order. */
  private isStale(token: number | undefined, order: FencedOrder, subject: string): boolean {
    return this.o.owner?.isStale(this, token ?? 0, order, subject) ?? false;
  }

  private onRunTask(task: RunTask): void {
    const owner = this.o.owner;
    const generation = this.generation;
    const deliver = owner
      ? (outcome: TaskOutcome) => owner.deliver(this, generation, outcome)
      : (outcome: TaskOutcome) => deliveredAs(this.sendResult(outcome, generation));
    if (this.isStale(task.fencingToken, 'run_task', task.taskId)) {
      // Answered, not run: the old leader learns it no longer leads, and nothing runs twice.
      this.o.runner.refuse(
        task,
        {
          code: 'stale_leader',
          message: `fencing token ${task.fencingToken ?? 0} is older than the newest this worker has seen`,
        },
        deliver,
      );
      return;
    }
    if (this.state === 'draining' || this.closed) {
      this.o.runner.refuse(task, { code: 'draining', message: 'worker is draining' }, deliver);
      return;
    }
    if (!this.modelServerHealthy() && !this.o.runner.labelFreeTaskTypes.includes(task.taskType)) {
      this.o.runner.refuse(
        task,
        { code: 'model_server_unavailable', message: 'the model server does not answer its health probe' },
        deliver,
      );
      return;
    }
    // run() turns every failure into an outcome; a rejection here is a bug in the runner itself.
    this.o.runner
      .run(task, deliver)
      .catch((err: unknown) =>
        this.o.logger.error(
          { event: 'task_crashed', task_id: task.taskId, message: errorMessage(err) },
          'task crashed',
        ),
      );
  }

  /**
   * Sends a task's result on this link: `no_link` when no socket is open (or, with `generation`,
   * when the socket is not that one any more), or the error sent instead of a result too large for
   * one frame (the runner logs the task's outcome once, with that error).
   */
  sendResult(outcome: TaskOutcome, generation?: number): ResultDelivery {
    const { taskId, resultJson, inferResponse, inferHeaderLength, error, label, labelMiss, loadMs, runMs } =
      outcome;
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return 'no_link';
    if (generation !== undefined && generation !== this.generation) return 'no_link';
    const common = { taskId, label, labelMiss, loadMs, runMs, loadedLabels: this.o.labels.loaded() };
    const result = error
      ? { error }
      : inferResponse
        ? { inferResponse, inferHeaderLength: inferHeaderLength ?? 0 }
        : { resultJson };
    let frame: Uint8Array;
    try {
      frame = encodeWorkerMessage({ taskResult: { ...common, ...result } });
    } catch (err) {
      this.o.logger.error(
        { event: 'frame_encode_failed', task_id: taskId, message: errorMessage(err) },
        'could not send a frame',
      );
      return { code: 'internal', message: `the result could not be encoded: ${errorMessage(err)}` };
    }
    // A frame over the dispatcher's limit would close the link (1009) and lose every task on it:
    // such a result is reported as a failure of this task alone.
    if (this.maxFrameBytes > 0 && frame.byteLength > this.maxFrameBytes) {
      const message = `result_too_large: the result has ${frame.byteLength} bytes in its frame, more than the ${this.maxFrameBytes} bytes the dispatcher accepts in one frame (task ${taskId})`;
      const error = { code: 'inference_failed' as const, message };
      this.send({ taskResult: { ...common, error } });
      return error;
    }
    ws.send(frame);
    return 'sent';
  }
}

/**
 * The masking key of every frame sent: zero. RFC 6455 makes a client mask its frames (XOR with a
 * random key) so that script in a browser cannot forge bytes a proxy might cache; a worker runs no
 * one else's script, and with a zero key (a valid key) ws skips the XOR on both ends. Without the
 * optional native `bufferutil`, ws masks in JavaScript byte by byte: for a 1 MB result that was
 * the worker's largest cost (10% of its CPU profile under benchmark:infer's large-output case).
 */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/**
 * A `lookup` for the socket that always answers `pinned`: the link reaches that one address of a
 * name with several (Host header and TLS server name stay the name's).
 */
function pinnedLookup(pinned: ResolvedAddress) {
  return (
    _host: string,
    options: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    // Node 20's happy-eyeballs connect asks with `all: true` and wants a list.
    if (options.all) callback(null, [{ address: pinned.address, family: pinned.family }]);
    else callback(null, pinned.address, pinned.family);
  };
}

/** `http://h:p` / `ws://h:p/` / `wss://h/base` -> `ws(s)://.../worker-listen`. */
export function workerListenUrl(base: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new TypeError(`dispatcherUrl must be an http(s) or ws(s) URL, got ${JSON.stringify(base)}`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
    throw new TypeError(`dispatcherUrl must be an http(s) or ws(s) URL, got ${JSON.stringify(base)}`);
  const pathname = url.pathname.replace(/\/+$/, '');
  url.pathname = pathname.endsWith('/worker-listen') ? pathname : `${pathname}/worker-listen`;
  return url.toString();
}

/** A delivery as the task runner's sink reports it: sent, not sent, or the error sent instead. */
export function deliveredAs(delivery: ResultDelivery): boolean | TaskError {
  return delivery === 'sent' ? true : delivery === 'no_link' ? false : delivery;
}
