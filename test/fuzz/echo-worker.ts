/**
 * A minimal well-behaved worker for the fuzz tests: a real `ws` client speaking the real protocol
 * (@smart-routing/proto). It sends Hello, heartbeats at the Welcome's interval, answers pings, and
 * answers every RunTask with `{"echo": <parameters>}`, spliced as text so any valid JSON comes back
 * exactly as sent. `embed_texts` tasks must carry `{"texts": [strings]}` (else `bad_parameters`),
 * like the real handler. Labels are bookkeeping only: an MRU list of `labelCapacity` entries.
 */
import {
  PROTOCOL_VERSION,
  decodeDispatcherMessage,
  encodeWorkerMessage,
  type RunTask,
  type WorkerMessageInput,
} from '@smart-routing/proto';
import WebSocket from 'ws';

/** Options of {@link EchoWorker.connect}. */
export interface EchoWorkerOptions {
  /** The dispatcher's http:// URL. */
  url: string;
  id: string;
  /** Task types announced [echo, embed_texts]. */
  taskTypes?: string[];
  /** Announced as run without a model (Hello.label_free_task_types) [none]. */
  labelFreeTaskTypes?: string[];
  /** Loaded at start, most recent first [[]]. */
  labels?: string[];
  labelCapacity?: number;
  slots?: number;
  /** Run time reported in every TaskResult (ms) [1]; the dispatcher learns its drain estimate from it. */
  reportRunMs?: number;
  /** Keep RunTasks unanswered until `release()` [false]. */
  hold?: boolean;
}

export class EchoWorker {
  /** RunTasks received. */
  received = 0;
  /** TaskResults sent. */
  answered = 0;
  /** Set once the socket closed. */
  closed: { code: number; reason: string } | undefined;
  /** Keep RunTasks unanswered until `release()` (starts as `options.hold`). */
  hold: boolean;
  private labels: string[];
  private readonly held: RunTask[] = [];
  private heartbeat: NodeJS.Timeout | undefined;

  private constructor(
    readonly options: EchoWorkerOptions,
    readonly ws: WebSocket,
  ) {
    this.labels = [...(options.labels ?? [])];
    this.hold = options.hold ?? false;
    ws.on('message', (data) => this.onFrame(data as Buffer));
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      clearInterval(this.heartbeat);
    });
  }

  /** Connects, sends Hello and resolves once the Welcome arrived. */
  static async connect(options: EchoWorkerOptions): Promise<EchoWorker> {
    const ws = new WebSocket(`${options.url.replace(/^http/, 'ws')}/worker-listen`, {
      headers: { 'worker-id': options.id },
    });
    const worker = new EchoWorker(options, ws);
    const welcomed = new Promise<number>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('close', (code) =>
        reject(new Error(`echo worker ${options.id} closed ${code} before Welcome`)),
      );
      const onWelcome = (data: Buffer): void => {
        const frame = decodeDispatcherMessage(data);
        if (frame.body !== 'welcome') return;
        ws.off('message', onWelcome);
        resolve(frame.welcome.heartbeatIntervalMs);
      };
      ws.on('message', onWelcome);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    worker.send({
      hello: {
        protocolVersion: PROTOCOL_VERSION,
        workerId: options.id,
        labelCapacity: options.labelCapacity ?? 2,
        taskSlots: options.slots ?? 1,
        loadedLabels: worker.labels,
        taskTypes: options.taskTypes ?? ['echo', 'embed_texts'],
        labelFreeTaskTypes: options.labelFreeTaskTypes ?? [],
        state: 'ready',
      },
    });
    const intervalMs = await welcomed;
    worker.heartbeat = setInterval(
      () => worker.send({ heartbeat: { inFlight: 0, state: 'ready', loadedLabels: worker.labels } }),
      intervalMs,
    ).unref();
    return worker;
  }

  /** Answers every held RunTask. */
  release(): void {
    for (const task of this.held.splice(0)) this.answer(task);
  }

  /** Closes with 1000 and waits for the close. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    const force = setTimeout(() => this.ws.terminate(), 2000).unref();
    this.ws.close(1000);
    await closed;
    clearTimeout(force);
  }

  private send(message: WorkerMessageInput): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeWorkerMessage(message));
  }

  private onFrame(data: Buffer): void {
    const frame = decodeDispatcherMessage(data);
    if (frame.body === 'ping') {
      this.send({
        heartbeat: { pingId: frame.ping.pingId, inFlight: 0, state: 'ready', loadedLabels: this.labels },
      });
    } else if (frame.body === 'runTask') {
      this.received++;
      if (this.hold) this.held.push(frame.runTask);
      else this.answer(frame.runTask);
    }
  }

  private answer(task: RunTask): void {
    this.answered++;
    const { taskId, label } = task;
    const miss = label !== '' && !this.labels.includes(label);
    if (label !== '') {
      this.labels = [label, ...this.labels.filter((l) => l !== label)].slice(
        0,
        this.options.labelCapacity ?? 2,
      );
    }
    const common = {
      taskId,
      label,
      labelMiss: miss,
      loadMs: miss ? 1 : 0,
      runMs: this.options.reportRunMs ?? 1,
      loadedLabels: this.labels,
    };
    if (task.taskType === 'embed_texts' && !isTexts(task.parametersJson)) {
      this.send({
        taskResult: {
          ...common,
          error: { code: 'bad_parameters', message: 'expected {"texts": [strings]}' },
        },
      });
      return;
    }
    this.send({ taskResult: { ...common, resultJson: `{"echo":${task.parametersJson}}` } });
  }
}

function isTexts(parametersJson: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(parametersJson);
  } catch {
    return false;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const texts = (value as { texts?: unknown }).texts;
  return Array.isArray(texts) && texts.length > 0 && texts.every((t) => typeof t === 'string');
}
