import { performance } from 'node:perf_hooks';
import {
  decodeDispatcherMessage,
  encodeWorkerMessage,
  PROTOCOL_VERSION,
  type LabelOrder,
  type RunTask,
  type TaskError as WireTaskError,
  type WorkerMessageInput,
  type WorkerState,
} from '@smart-routing/proto';
import { isValidModelName } from '@smart-routing/model-repo';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { errorMessage, TaskError, taskLogLevel } from './errors.js';
import type { ModelCache } from './handlers/model-cache.js';
import type { TaskHandler } from './handlers/types.js';
import type { LabelChange, LabelManager } from './label-manager.js';
import type { TritonClient } from './triton-client.js';

/**
 * The worker's WebSocket link to the dispatcher: announces itself, keeps the heartbeat going, runs
 * what it is told, reports every label change, and reconnects when the link drops.
 *
 *   connect ─ open ─> Hello ─> (Welcome: heartbeat every N ms) ─> RunTask / LabelOrder / Drain / Ping
 *      ^                                                               │
 *      └──── backoff (capped, jittered) <─── close / error ────────────┘   (never after close())
 *
 * A RunTask runs as: slot check ─ parse parameters ─ evict the dispatcher's evictLabel ─ load the
 * label if needed (evicting our own LRU if still full) ─ handler ─ TaskResult.
 */

/** Longest delay a Node timer accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Options of `WorkerConnection`. */
export interface WorkerConnectionOptions {
  /** Dispatcher base URL (`http(s)://` or `ws(s)://`); `/worker-listen` is appended. */
  dispatcherUrl: string;
  workerId: string;
  /** Sent as `Authorization: Bearer <token>` when set. */
  token?: string;
  /** Concurrent tasks; a RunTask beyond them is answered `no_slot`. */
  slots: number;
  labels: LabelManager;
  handlers: ReadonlyMap<string, TaskHandler>;
  models: ModelCache;
  client: TritonClient | undefined;
  logger: Logger;
  /** First reconnect delay. Default 250 ms; doubles per failed try. */
  reconnectInitialMs?: number;
  /** Longest reconnect delay. Default 10 000 ms. */
  reconnectMaxMs?: number;
  /** Largest frame accepted from the dispatcher. Default 64 MiB. */
  maxPayload?: number;
}

/** The worker side of `/worker-listen`. */
export class WorkerConnection {
  private readonly o: Required<Omit<WorkerConnectionOptions, 'token' | 'client'>> &
    Pick<WorkerConnectionOptions, 'token' | 'client'>;
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
  private inFlight = 0;
  private attempt = 0;
  private heartbeatMs = 1000;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private closePromise: Promise<void> | undefined;
  private readonly onLabelChange = (change: LabelChange) => this.sendLabelEvent(change);

  constructor(options: WorkerConnectionOptions) {
    if (!Number.isInteger(options.slots) || options.slots < 1)
      throw new TypeError(`WorkerConnection: slots must be a positive integer, got ${options.slots}`);
    this.o = {
      reconnectInitialMs: 250,
      reconnectMaxMs: 10_000,
      maxPayload: 64 * 1024 * 1024,
      ...options,
    };
    this.url = workerListenUrl(options.dispatcherUrl);
    this.o.labels.on('change', this.onLabelChange);
  }

  /** Task types this worker serves (sent in Hello). */
  get taskTypes(): string[] {
    return [...this.o.handlers.keys()];
  }

  /** Tasks running now. */
  get tasksInFlight(): number {
    return this.inFlight;
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
      this.o.logger.info({ event: 'worker_draining', reason, in_flight: this.inFlight }, 'draining');
      this.sendHeartbeat(0);
    }
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
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
          taskSlots: this.o.slots,
          loadedLabels: this.o.labels.loaded(),
          taskTypes: this.taskTypes,
          state: this.state,
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

  private sendHeartbeat(pingId: number): void {
    this.send({
      heartbeat: { inFlight: this.inFlight, state: this.state, loadedLabels: this.o.labels.loaded(), pingId },
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
        const { protocolVersion, heartbeatIntervalMs } = msg.welcome;
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
        this.onRunTask(msg.runTask).catch((err: unknown) =>
          this.o.logger.error(
            { event: 'task_crashed', task_id: msg.runTask.taskId, message: errorMessage(err) },
            'task crashed',
          ),
        );
        return;
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

  private async onRunTask(task: RunTask): Promise<void> {
    const { taskId, label } = task;
    if (this.state === 'draining' || this.closed)
      return this.sendResult(task, { code: 'draining', message: 'worker is draining' }, false, 0, 0);
    if (this.inFlight >= this.o.slots)
      return this.sendResult(
        task,
        { code: 'no_slot', message: `all ${this.o.slots} task slots are busy` },
        false,
        0,
        0,
      );
    this.inFlight++;
    let miss = false;
    let loadMs = 0;
    let runMs = 0;
    let release: (() => void) | undefined;
    try {
      const handler = this.o.handlers.get(task.taskType);
      if (!handler)
        throw new TaskError(
          'unknown_task_type',
          `task type ${JSON.stringify(task.taskType)} is not served here (serves ${this.taskTypes.join(', ')})`,
        );
      let raw: unknown;
      try {
        raw = JSON.parse(task.parametersJson);
      } catch {
        throw new TaskError('bad_parameters', 'parameters_json is not valid JSON');
      }
      const params = handler.parse(raw);
      // Label-free handlers skip the model server; without one (`none`), labels are bookkeeping
      // for every task so routing still sees hits and misses.
      const useLabel = label !== '' && (!handler.labelFree || this.o.labels.bookkeepingOnly);
      if (!handler.labelFree && label === '')
        throw new TaskError('bad_parameters', 'the task names no label');
      if (useLabel) {
        if (!isValidModelName(label))
          throw new TaskError('label_not_found', `${JSON.stringify(label)} is not a valid model name`);
        const evict = task.evictLabel;
        if (evict && evict !== label && this.o.labels.isLoaded(evict)) {
          try {
            await this.o.labels.unload(evict, 'dispatcher order');
          } catch (err) {
            this.o.logger.warn(
              { event: 'evict_failed', label: evict, message: errorMessage(err) },
              'evict failed',
            );
          }
        }
        const loadStart = performance.now();
        try {
          const r = await this.o.labels.ensureLoaded(label);
          release = r.release;
          miss = r.miss;
          loadMs = r.loadMs;
        } catch (err) {
          // A failed load is no miss (nothing ran), but its time is reported.
          loadMs = performance.now() - loadStart;
          throw err;
        }
        if (miss)
          this.o.logger.info(
            {
              event: 'label_miss',
              label,
              task_id: taskId,
              worker_id: this.o.workerId,
              load_ms: round(loadMs),
            },
            'label miss',
          );
      }
      const runStart = performance.now();
      let result: unknown;
      try {
        result = await handler.run(params, { taskId, label, client: this.o.client, models: this.o.models });
      } finally {
        runMs = performance.now() - runStart;
      }
      this.sendResult(task, JSON.stringify(result ?? null), miss, loadMs, runMs);
    } catch (err) {
      const error: WireTaskError =
        err instanceof TaskError
          ? { code: err.code, message: err.message }
          : { code: 'internal', message: `internal error: ${errorMessage(err)}` };
      this.sendResult(task, error, miss, loadMs, runMs);
    } finally {
      release?.();
      this.inFlight--;
      if (this.inFlight === 0 && this.idleWaiters.length > 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  private sendResult(
    task: RunTask,
    outcome: string | WireTaskError,
    miss: boolean,
    loadMs: number,
    runMs: number,
  ): void {
    const ok = typeof outcome === 'string';
    const sent = this.send({
      taskResult: {
        taskId: task.taskId,
        ...(ok ? { resultJson: outcome } : { error: outcome }),
        label: task.label,
        labelMiss: miss,
        loadMs,
        runMs,
        loadedLabels: this.o.labels.loaded(),
      },
    });
    const fields = {
      event: 'task_completed',
      task_id: task.taskId,
      label: task.label,
      worker_id: this.o.workerId,
      task_type: task.taskType,
      runtime_ms: round(runMs),
      load_ms: round(loadMs),
      label_miss: miss,
      ok,
      ...(ok ? {} : { error_code: outcome.code, message: outcome.message }),
      ...(sent ? {} : { result_dropped: true }),
    };
    if (taskLogLevel(ok ? undefined : outcome.code) === 'info') this.o.logger.info(fields, 'task completed');
    else this.o.logger.warn(fields, 'task failed');
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
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
