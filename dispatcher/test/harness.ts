/** Shared set-up for the dispatcher's socket tests: real servers on 127.0.0.1:0, cleaned up after each test. */
import { pino } from 'pino';
import { startDispatcher, type DispatcherHandle } from '../src/dispatcher.js';
import type { DispatcherOptions } from '../src/config.js';
import { seededRandom } from '../src/routing/random.js';
import { FakeWorker, type FakeWorkerOptions } from './fake-worker.js';

export interface HttpAnswer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Headers;
}

let taskSeq = 0;
/** A fresh task id. */
export const nextTaskId = (): string => `task-${process.pid}-${++taskSeq}`;

export class Harness {
  private readonly dispatchers: DispatcherHandle[] = [];
  private readonly workers: FakeWorker[] = [];

  /** Starts a dispatcher on a free loopback port with a silent logger and a seeded RNG. */
  async dispatcher(options: DispatcherOptions = {}): Promise<DispatcherHandle> {
    const handle = await startDispatcher({
      port: 0,
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      random: seededRandom(1234),
      ...options,
    });
    this.dispatchers.push(handle);
    return handle;
  }

  /** Connects a fake worker (cleaned up after the test). */
  async worker(options: FakeWorkerOptions): Promise<FakeWorker> {
    const worker = await FakeWorker.connect(options);
    this.workers.push(worker);
    return worker;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.close()));
    await Promise.all(this.dispatchers.splice(0).map((d) => d.close()));
  }
}

/** POSTs JSON (or a raw string) and returns status, parsed body and headers. */
export async function post(
  url: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** GETs a path and parses JSON when the answer is JSON. */
export async function get(
  url: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  const res = await fetch(`${url}${path}`, { headers });
  const text = await res.text();
  const isJson = res.headers.get('content-type')?.includes('json');
  return { status: res.status, body: isJson && text ? JSON.parse(text) : text, headers: res.headers };
}

/** A valid /run-task body. */
export function task(label: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    task_id: nextTaskId(),
    task_type: 'embed_texts',
    label,
    parameters_json: '{"texts":["hi"]}',
    ...extra,
  };
}

/** Waits until `check` is true (polling every 10 ms; the limit is generous for a loaded machine). */
export async function eventually(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
