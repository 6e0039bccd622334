import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { PlannedRequest } from './traffic.js';

/**
 * Drives `POST /run-task` with a traffic plan, the way the original's producers did: closed loop
 * (send, wait for the reply, sleep) or open loop (send at planned times regardless of replies).
 * With `asyncFraction`, that share of the requests goes to `POST /send-task` instead (202), and
 * the producer polls `GET /tasks/{id}` until the task ends; its latency runs to the poll that saw
 * the end.
 */

/** What happened to one request. */
export interface RequestOutcome {
  index: number;
  label: string;
  status: number;
  /** End-to-end latency seen by the producer, ms. */
  latencyMs: number;
  /** Error code from the dispatcher, or `transport_error`. */
  errorCode?: string;
  workerId?: string;
  labelMiss?: boolean;
  /** `sync`: POST /run-task; `async`: POST /send-task then polling. */
  mode: 'sync' | 'async';
  /** Async: the 202 arrived (the task was accepted). */
  accepted?: boolean;
}

export interface ProduceOptions {
  dispatcherUrl: string;
  taskType: string;
  /** Builds parameters_json for a request. */
  parameters: (r: PlannedRequest) => string;
  runId: string;
  arrival: 'closed' | 'open';
  /** Called after every finished request (progress bar). */
  onDone?: (o: RequestOutcome) => void;
  /** Per-request timeout, ms. Default 120 s. */
  timeoutMs?: number;
  apiKey?: string;
  /** Share of requests sent as async tasks, 0..1 [0]; which ones is fixed by the request index. */
  asyncFraction?: number;
  /** Async: time between polls of GET /tasks/{id}, ms [25]. */
  pollMs?: number;
}

/** Whether request `index` goes async: a fixed hash of the index, so every policy gets the same split. */
export function isAsyncRequest(index: number, fraction: number): boolean {
  if (fraction <= 0) return false;
  if (fraction >= 1) return true;
  // Knuth's multiplicative hash spreads consecutive indices over [0, 1).
  return (Math.imul(index + 1, 2654435761) >>> 0) / 2 ** 32 < fraction;
}

async function send(agent: Agent, o: ProduceOptions, r: PlannedRequest): Promise<RequestOutcome> {
  if (isAsyncRequest(r.index, o.asyncFraction ?? 0)) return sendAsync(agent, o, r);
  const started = performance.now();
  const body = JSON.stringify({
    task_id: `${o.runId}-${r.index}`,
    task_type: o.taskType,
    label: r.label,
    parameters_json: o.parameters(r),
  });
  try {
    const res = await request(`${o.dispatcherUrl}/run-task`, {
      method: 'POST',
      dispatcher: agent,
      headers: {
        'content-type': 'application/json',
        ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}),
      },
      body,
      headersTimeout: o.timeoutMs ?? 120_000,
      bodyTimeout: o.timeoutMs ?? 120_000,
    });
    const json = (await res.body.json()) as {
      worker_id?: string;
      label_miss?: boolean;
      error?: { code?: string };
    };
    const latencyMs = performance.now() - started;
    if (res.statusCode === 200)
      return {
        index: r.index,
        label: r.label,
        status: 200,
        latencyMs,
        workerId: json.worker_id,
        labelMiss: json.label_miss,
        mode: 'sync',
      };
    return {
      index: r.index,
      label: r.label,
      status: res.statusCode,
      latencyMs,
      errorCode: json.error?.code ?? 'unknown',
      mode: 'sync',
    };
  } catch (err) {
    return {
      index: r.index,
      label: r.label,
      status: 0,
      latencyMs: performance.now() - started,
      errorCode: `transport_error: ${(err as Error).message}`,
      mode: 'sync',
    };
  }
}

interface TaskDoc {
  status?: string;
  worker_id?: string | null;
  label_miss?: boolean | null;
  error?: { code?: string } | null;
}

/** POST /send-task, then GET /tasks/{id} until the task ends (or `timeoutMs` passes). */
async function sendAsync(agent: Agent, o: ProduceOptions, r: PlannedRequest): Promise<RequestOutcome> {
  const started = performance.now();
  const taskId = `${o.runId}-${r.index}`;
  const headers = {
    'content-type': 'application/json',
    ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}),
  };
  const base = { index: r.index, label: r.label, mode: 'async' as const };
  const timeoutMs = o.timeoutMs ?? 120_000;
  try {
    const res = await request(`${o.dispatcherUrl}/send-task`, {
      method: 'POST',
      dispatcher: agent,
      headers,
      body: JSON.stringify({
        task_id: taskId,
        task_type: o.taskType,
        label: r.label,
        parameters_json: o.parameters(r),
      }),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const answer = (await res.body.json()) as { status_url?: string; error?: { code?: string } };
    if (res.statusCode !== 202 || !answer.status_url)
      return {
        ...base,
        status: res.statusCode,
        latencyMs: performance.now() - started,
        errorCode: answer.error?.code ?? 'unknown',
        accepted: false,
      };
    for (;;) {
      await sleep(o.pollMs ?? 25);
      const poll = await request(`${o.dispatcherUrl}${answer.status_url}`, {
        dispatcher: agent,
        headers,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const doc = (await poll.body.json()) as TaskDoc;
      const latencyMs = performance.now() - started;
      if (poll.statusCode === 200 && doc.status === 'completed')
        return {
          ...base,
          status: 200,
          latencyMs,
          workerId: doc.worker_id ?? undefined,
          labelMiss: doc.label_miss ?? undefined,
          accepted: true,
        };
      if (poll.statusCode !== 200 || (doc.status !== 'queued' && doc.status !== 'running'))
        return {
          ...base,
          status: poll.statusCode === 200 ? 500 : poll.statusCode,
          latencyMs,
          errorCode: doc.error?.code ?? doc.status ?? 'unknown',
          accepted: true,
        };
      if (latencyMs > timeoutMs)
        return { ...base, status: 504, latencyMs, errorCode: 'poll_timeout', accepted: true };
    }
  } catch (err) {
    return {
      ...base,
      status: 0,
      latencyMs: performance.now() - started,
      errorCode: `transport_error: ${(err as Error).message}`,
    };
  }
}

/** Runs every producer's plan to the end and returns the outcomes in request order. */
export async function produce(plan: PlannedRequest[][], o: ProduceOptions): Promise<RequestOutcome[]> {
  const agent = new Agent({ connections: Math.max(8, plan.length * 2), keepAliveTimeout: 30_000 });
  const outcomes: RequestOutcome[] = [];
  const record = (out: RequestOutcome): void => {
    outcomes.push(out);
    o.onDone?.(out);
  };
  try {
    if (o.arrival === 'closed') {
      await Promise.all(
        plan.map(async (requests) => {
          for (const r of requests) {
            record(await send(agent, o, r));
            if (r.waitAfterS > 0) await sleep(r.waitAfterS * 1000);
          }
        }),
      );
    } else {
      const start = performance.now();
      const inflight: Promise<void>[] = [];
      for (const r of plan.flat().sort((a, b) => a.atS - b.atS)) {
        const delay = start + r.atS * 1000 - performance.now();
        if (delay > 0) await sleep(delay);
        inflight.push(send(agent, o, r).then(record));
      }
      await Promise.all(inflight);
    }
  } finally {
    await agent.close();
  }
  return outcomes.sort((a, b) => a.index - b.index);
}
