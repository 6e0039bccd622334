import { performance } from 'node:perf_hooks';
import {
  decodeDispatcherMessage,
  encodeWorkerMessage,
  PROTOCOL_VERSION,
  type LabelOrder,
  type RunTask,
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
 * A TaskResult larger than the dispatcher's frame limit (`Welcome.max_frame_bytes`) would only
 * get the link closed (1009) and the task retried or lost; it is replaced by a `bad_parameters`
 * error that says so (as a model server answers a response over its MAX_RESPONSE_BYTES).
 */

/** Longest delay a Node timer accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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
}

/** The worker side of `/worker-listen`. */
export class WorkerConnection {
  private readonly o: Required<Omit<WorkerConnectionOptions, 'token' | 'modelServerHealthy'>> &
    Pick<WorkerConnectionOptions, 'token' | 'modelServerHealthy'>;
  private readonly url: string;
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
    const ws = new WebSocket(this.url, { headers, maxPayload: this.o.maxPayload, perMessageDeflate: false });
    this.ws = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      this.o.logger.info({ event: 'dispatcher_connected', url: this.url }, 'connected to the dispatcher');
      if (this.state === 'draining' && !this.drainingForGood) {
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
        this.o.logger.info(
          { event: 'dispatcher_welcome', heartbeat_interval_ms: this.heartbeatMs },
          'welcomed',
        );
        return;
      }
      case 'ping':
        this.sendHeartbeat(msg.ping.pingId);
        return;
      case 'drain':
        this.drainLink(msg.drain.reason || 'dispatcher asked').catch(() => undefined);
        return;
      case 'labelOrder':
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

  private onRunTask(task: RunTask): void {
    const deliver = (outcome: TaskOutcome) => this.sendResult(outcome);
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
   * Sends a task's result; false when there is no link, or the error sent instead of a result too
   * large for one frame (the runner logs the task's outcome once, with that error).
   */
  private sendResult(outcome: TaskOutcome): boolean | { code: 'inference_failed'; message: string } {
    const { taskId, resultJson, inferResponse, inferHeaderLength, error, label, labelMiss, loadMs, runMs } =
      outcome;
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
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
      return false;
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
    return true;
  }
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
