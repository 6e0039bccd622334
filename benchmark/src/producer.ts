import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { PlannedRequest } from './traffic.js';

/**
 * Drives `POST /run-task` with a traffic plan, the way the original's producers did: closed loop
 * (send, wait for the reply, sleep) or open loop (send at planned times regardless of replies).
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
}

async function send(agent: Agent, o: ProduceOptions, r: PlannedRequest): Promise<RequestOutcome> {
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
      };
    return {
      index: r.index,
      label: r.label,
      status: res.statusCode,
      latencyMs,
      errorCode: json.error?.code ?? 'unknown',
    };
  } catch (err) {
    return {
      index: r.index,
      label: r.label,
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
