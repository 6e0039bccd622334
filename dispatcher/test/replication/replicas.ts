/**
 * Test support for replicated mode: dispatcher replicas in this process on one real redis-server,
 * and a real worker (@smart-routing/worker, DISPATCHER_URLS) connected to all of them with a
 * label-free `gate` task type whose runs are counted and can be held until released.
 */
import { startWorker, type HandlerContext, type TaskHandler, type WorkerHandle } from '@smart-routing/worker';
import { pino } from 'pino';
import { startDispatcher, type DispatcherHandle } from '../../src/index.js';
import type { DispatcherOptions } from '../../src/config.js';

export const silent = pino({ level: 'silent' });

/**
 * The lease the tests run with (ms): short, so a failover takes a couple of seconds, yet long
 * enough that a loaded machine (two cores shared by many test runs) does not lose it by itself.
 */
export const TEST_LEASE_MS = 1500;

/** Resolves once `check` holds (polled every 20 ms), or rejects after `timeoutMs`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The `gate` task type: counts runs per task id; `{"hold": true}` waits for {@link Gate.release}. */
export class Gate {
  readonly runs = new Map<string, number>();
  private readonly held = new Map<string, () => void>();
  readonly handler: TaskHandler<{ hold?: boolean }> = {
    taskType: 'gate',
    labelFree: true,
    parse: (p) => (typeof p === 'object' && p !== null ? (p as { hold?: boolean }) : {}),
    run: async (p, ctx: HandlerContext) => {
      this.runs.set(ctx.taskId, (this.runs.get(ctx.taskId) ?? 0) + 1);
      if (p.hold) await new Promise<void>((resolve) => this.held.set(ctx.taskId, resolve));
      return { ran: ctx.taskId };
    },
  };

  /** Whether `taskId` is running and held now. */
  isHeld(taskId: string): boolean {
    return this.held.has(taskId);
  }

  release(taskId: string): void {
    this.held.get(taskId)?.();
    this.held.delete(taskId);
  }
}

/** Starts replicas and workers and closes them all at the end. */
export class ReplicaSet {
  readonly dispatchers: DispatcherHandle[] = [];
  readonly workers: WorkerHandle[] = [];

  constructor(
    private readonly redisUrl: string,
    private readonly keyPrefix: string,
  ) {}

  /** A replica on a free port. */
  async replica(
    replicaId: string,
    extra: DispatcherOptions = {},
    leaseTtlMs = TEST_LEASE_MS,
  ): Promise<DispatcherHandle> {
    const d = await startDispatcher({
      port: 0,
      host: '127.0.0.1',
      grpcPort: false,
      logger: process.env.HA_DEBUG ? pino({ level: 'debug' }) : silent,
      heartbeatIntervalMs: 100,
      ...extra,
      replication: {
        redisUrl: this.redisUrl,
        replicaId,
        leaseTtlMs,
        keyPrefix: this.keyPrefix,
      },
    });
    this.dispatchers.push(d);
    return d;
  }

  /** A real worker linked to every URL. */
  async worker(workerId: string, urls: string[], gate: Gate, slots = 4): Promise<WorkerHandle> {
    const w = await startWorker({
      dispatcherUrls: urls,
      workerId,
      slots,
      tritonUrl: 'none',
      taskHandlers: [gate.handler as TaskHandler],
      logger: silent,
      reconnectInitialMs: 50,
      reconnectMaxMs: 200,
    });
    this.workers.push(w);
    return w;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.workers.map((w) => w.close()));
    await Promise.allSettled(this.dispatchers.map((d) => d.close()));
  }
}

/** POST /run-task. */
export async function runTask(
  url: string,
  taskId: string,
  parameters: unknown = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${url}/run-task`, {
    method: 'POST',
    ...(signal ? { signal } : {}),
    body: JSON.stringify({
      task_id: taskId,
      task_type: 'gate',
      label: 'none',
      parameters_json: JSON.stringify(parameters),
    }),
  });
}

/** POST /send-task. */
export async function sendTask(url: string, taskId: string, parameters: unknown = {}): Promise<Response> {
  return fetch(`${url}/send-task`, {
    method: 'POST',
    body: JSON.stringify({
      task_id: taskId,
      task_type: 'gate',
      label: 'none',
      parameters_json: JSON.stringify(parameters),
    }),
  });
}

/** GET /tasks/{id} as JSON (undefined on 404). */
export async function taskStatus(url: string, taskId: string): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(`${url}/tasks/${encodeURIComponent(taskId)}`);
  if (res.status === 404) return undefined;
  return (await res.json()) as Record<string, unknown>;
}

/** GET /ready's `replica`. */
export async function replicaOf(
  url: string,
): Promise<{ id: string; role: string; leader_id: string; epoch: number }> {
  const body = (await (await fetch(`${url}/ready`)).json()) as {
    replica: { id: string; role: string; leader_id: string; epoch: number };
  };
  return body.replica;
}
