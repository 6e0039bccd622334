/**
 * A fake worker for dispatcher tests: a real WebSocket client speaking the real protocol
 * (@smart-routing/proto), with the worker's label rules played by LabelCache. It answers RunTask
 * after `loadMs` (on a miss) and `runMs`, honours evictLabel, reports label events and
 * loadedLabels, answers pings, and can misbehave on demand (raw frames, abrupt termination).
 */
import {
  PROTOCOL_VERSION,
  decodeDispatcherMessage,
  encodeWorkerMessage,
  type DispatcherMessage,
  type RunTask,
  type TaskErrorCode,
  type WorkerMessageInput,
} from '@smart-routing/proto';
import WebSocket from 'ws';
import { LabelCache } from '../src/routing/label-cache.js';

export interface FakeWorkerOptions {
  /** The dispatcher's http:// URL. */
  url: string;
  id: string;
  /** Loaded at start, most recent first. */
  labels?: string[];
  labelCapacity?: number;
  slots?: number;
  taskTypes?: string[];
  /** Sent as Hello.label_free_task_types [none, like a worker older than the field]. */
  labelFreeTaskTypes?: string[];
  /** Run time per task (ms) [5]. */
  runMs?: number | ((task: RunTask) => number);
  /** Load time per label (ms) [1]. */
  loadMs?: number;
  /** Sent as `Authorization: Bearer`. */
  token?: string;
  /** Labels whose load fails (label_load_failed). */
  failLoad?: (label: string) => boolean;
  /** Labels the worker's repository lacks (label_not_found). */
  missingLabels?: string[];
  /** Send Hello on open [true]. */
  hello?: boolean;
  protocolVersion?: number;
  /** Answer tasks at all [true]; false leaves them hanging. */
  answer?: boolean;
  /** Awaited before each task runs (a test holds the worker busy until it is ready). */
  before?: (task: RunTask) => Promise<void>;
  /** The result_json text to answer with [`{"echo": <parameters>, "worker": <id>}`]. */
  resultJson?: (task: RunTask) => string;
  /**
   * How a `kserve_infer` task is answered: bytes (sent as infer_response) or a task error
   * [unset: like any other task, with result_json].
   */
  inferAnswer?: (
    task: RunTask,
  ) => { body: Uint8Array; headerLength: number } | { error: { code: TaskErrorCode; message: string } };
}

/** A RunTask's outcome fields, as the fake worker answers it. */
type Outcome =
  | { resultJson: string }
  | { inferResponse: Uint8Array; inferHeaderLength: number }
  | { error: { code: TaskErrorCode; message: string } };

/** The HTTP answer to an upgrade attempt. */
export interface UpgradeAnswer {
  status: number;
  body: { error: { code: string; message: string } } | undefined;
}

export class FakeWorker {
  /** Every RunTask received, in order. */
  readonly received: RunTask[] = [];
  /** Every frame received, in order. */
  readonly frames: DispatcherMessage[] = [];
  readonly cache: LabelCache;
  closed: { code: number; reason: string } | undefined;
  private inFlight = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly listeners = new Set<() => void>();
  private heartbeat: NodeJS.Timeout | undefined;

  private constructor(
    readonly options: FakeWorkerOptions,
    readonly ws: WebSocket,
  ) {
    this.cache = new LabelCache(options.labelCapacity ?? 2, options.labels ?? []);
    ws.on('message', (data) => this.onFrame(data as Buffer));
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.stopTimers();
      this.notify();
    });
  }

  /** Connects; with `hello` (default) resolves once the Welcome arrived. */
  static async connect(options: FakeWorkerOptions): Promise<FakeWorker> {
    const ws = new WebSocket(`${options.url.replace(/^http/, 'ws')}/worker-listen`, {
      headers: {
        'worker-id': options.id,
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      },
    });
    const worker = new FakeWorker(options, ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    if (options.hello ?? true) {
      worker.send({
        hello: {
          protocolVersion: options.protocolVersion ?? PROTOCOL_VERSION,
          workerId: options.id,
          labelCapacity: options.labelCapacity ?? 2,
          taskSlots: options.slots ?? 1,
          loadedLabels: worker.cache.labels,
          taskTypes: options.taskTypes ?? ['embed_texts', 'infer', 'echo'],
          labelFreeTaskTypes: options.labelFreeTaskTypes ?? [],
          state: 'ready',
        },
      });
      const welcome = await worker.waitFor((f) => f.body === 'welcome');
      if (welcome.body === 'welcome') {
        worker.heartbeat = setInterval(
          () =>
            worker.send({
              heartbeat: { inFlight: worker.inFlight, state: 'ready', loadedLabels: worker.cache.labels },
            }),
          welcome.welcome.heartbeatIntervalMs,
        ).unref();
      }
    }
    return worker;
  }

  /**
   * Attempts an upgrade and returns the HTTP status and JSON body of the refusal (or 101 when it
   * was accepted; the socket is then closed).
   */
  static async tryUpgrade(url: string, headers: Record<string, string>): Promise<UpgradeAnswer> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/worker-listen`, { headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        ws.terminate();
        resolve({ status: 101, body: undefined });
      });
      ws.once('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => {
          ws.terminate();
          resolve({
            status: res.statusCode ?? 0,
            body: text ? (JSON.parse(text) as UpgradeAnswer['body']) : undefined,
          });
        });
      });
      ws.once('error', (err) => {
        if (!/Unexpected server response/.test(err.message)) reject(err);
      });
    });
  }

  /** Sends a protocol message. */
  send(message: WorkerMessageInput): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeWorkerMessage(message));
  }

  /** Sends raw bytes (for malformed-frame tests). */
  sendRaw(data: Buffer | string, binary = true): void {
    this.ws.send(data, { binary });
  }

  /** Resolves with the first frame (past or future) matching `predicate`. */
  waitFor(predicate: (frame: DispatcherMessage) => boolean, timeoutMs = 20_000): Promise<DispatcherMessage> {
    return this.until(() => this.frames.find(predicate), timeoutMs, 'frame');
  }

  /** Resolves when the socket closed, with the code and reason. */
  waitForClose(timeoutMs = 20_000): Promise<{ code: number; reason: string }> {
    return this.until(() => this.closed, timeoutMs, 'close');
  }

  /** Resolves once `n` RunTasks arrived. */
  waitForTasks(n: number, timeoutMs = 20_000): Promise<RunTask[]> {
    return this.until(() => (this.received.length >= n ? this.received : undefined), timeoutMs, `${n} tasks`);
  }

  /** Kills the connection abruptly, like a crashed process (no close frame). */
  terminate(): void {
    this.stopTimers();
    this.ws.terminate();
  }

  /** Closes cleanly (1000) and waits for the close. */
  async close(): Promise<void> {
    this.stopTimers();
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close(1000);
    await this.waitForClose().catch(() => this.ws.terminate());
  }

  private until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const now = check();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`fake worker ${this.options.id}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (): void => {
        const value = check();
        if (value === undefined) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(value);
      };
      this.listeners.add(listener);
    });
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private stopTimers(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private onFrame(data: Buffer): void {
    const frame = decodeDispatcherMessage(data);
    this.frames.push(frame);
    if (frame.body === 'runTask') {
      this.received.push(frame.runTask);
      if (this.options.answer ?? true) void this.run(frame.runTask);
    } else if (frame.body === 'ping') {
      this.send({
        heartbeat: {
          pingId: frame.ping.pingId,
          inFlight: this.inFlight,
          state: 'ready',
          loadedLabels: this.cache.labels,
        },
      });
    }
    this.notify();
  }

  private async run(task: RunTask): Promise<void> {
    const { taskId, label } = task;
    const error = (code: 'no_slot' | 'label_load_failed' | 'label_not_found', message: string) =>
      this.send({ taskResult: { taskId, label, error: { code, message }, loadedLabels: this.cache.labels } });
    if (this.inFlight >= (this.options.slots ?? 1)) return error('no_slot', 'all slots busy');
    this.inFlight++;
    try {
      await this.options.before?.(task);
      if (label === '') return await this.runLabelFree(task);
      if (task.evictLabel && this.cache.evict(task.evictLabel))
        this.send({
          labelEvent: { kind: 'evicted', label: task.evictLabel, loadedLabels: this.cache.labels },
        });
      const miss = !this.cache.has(label);
      const loadMs = miss ? (this.options.loadMs ?? 1) : 0;
      if (miss) {
        if (this.options.missingLabels?.includes(label)) return error('label_not_found', `no model ${label}`);
        if (this.options.failLoad?.(label)) {
          this.send({
            labelEvent: { kind: 'load_failed', label, message: 'boom', loadedLabels: this.cache.labels },
          });
          return error('label_load_failed', `could not load ${label}`);
        }
        await this.delay(loadMs);
      }
      const use = this.cache.use(label);
      for (const evicted of use.evicted)
        this.send({ labelEvent: { kind: 'evicted', label: evicted, loadedLabels: this.cache.labels } });
      if (miss)
        this.send({
          labelEvent: { kind: 'loaded', label, durationMs: loadMs, loadedLabels: this.cache.labels },
        });
      const runMs =
        typeof this.options.runMs === 'function' ? this.options.runMs(task) : (this.options.runMs ?? 5);
      await this.delay(runMs);
      this.send({
        taskResult: {
          taskId,
          label,
          ...this.outcomeFor(task),
          labelMiss: miss,
          loadMs,
          runMs,
          loadedLabels: this.cache.labels,
        },
      });
    } finally {
      this.inFlight--;
    }
  }

  private outcomeFor(task: RunTask): Outcome {
    const infer = task.taskType === 'kserve_infer' ? this.options.inferAnswer?.(task) : undefined;
    if (infer === undefined) return { resultJson: this.resultFor(task) };
    if ('error' in infer) return { error: infer.error };
    return { inferResponse: infer.body, inferHeaderLength: infer.headerLength };
  }

  private resultFor(task: RunTask): string {
    if (this.options.resultJson) return this.options.resultJson(task);
    return JSON.stringify({ echo: JSON.parse(task.parametersJson || 'null'), worker: this.options.id });
  }

  /** A task sent without a label: no load, no eviction, labels untouched (as the real worker's echo). */
  private async runLabelFree(task: RunTask): Promise<void> {
    const runMs =
      typeof this.options.runMs === 'function' ? this.options.runMs(task) : (this.options.runMs ?? 5);
    await this.delay(runMs);
    this.send({
      taskResult: {
        taskId: task.taskId,
        label: '',
        resultJson: this.resultFor(task),
        labelMiss: false,
        loadMs: 0,
        runMs,
        loadedLabels: this.cache.labels,
      },
    });
  }
}
