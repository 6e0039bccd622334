/**
 * Callbacks: when an async task with a `callback_url` ends, its final status document is POSTed
 * there, signed, and retried with exponential back-off.
 *
 *   POST <callback_url>
 *   Content-Type: application/json
 *   X-Smart-Routing-Task-Id: <task_id>
 *   X-Smart-Routing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(CALLBACK_SECRET, "<t>.<body>")>
 *
 * The receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares in
 * constant time, and rejects old timestamps (replays). Without CALLBACK_SECRET no signature is
 * sent. 2xx is success; 408, 429, 5xx and network errors are retried; other 4xx give up at once.
 * Callbacks live in memory: one still retrying when the dispatcher stops is not sent again
 * (the result itself is in the store; GET /tasks/{id} has it).
 */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { DispatcherMetrics } from '../metrics.js';

/** The signature header's name. */
export const SIGNATURE_HEADER = 'X-Smart-Routing-Signature';

/** Options of {@link CallbackSender}. */
export interface CallbackOptions {
  /** HMAC-SHA256 key [unset: callbacks go unsigned]. */
  readonly secret: string | undefined;
  /** Tries per callback, the first included [6]. */
  readonly attempts: number;
  /** First back-off (ms), doubled per retry up to 30 s, with jitter [500]. */
  readonly backoffMs: number;
  /** Time one POST may take (ms) [10000]. */
  readonly timeoutMs: number;
}

/** The signature header's value for `body` sent at `unixS`. */
export function signCallback(secret: string, unixS: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${unixS}.${body}`).digest('hex');
  return `t=${unixS},v1=${mac}`;
}

/** Sends callbacks in the background; `close()` stops retrying and waits for POSTs under way. */
export class CallbackSender {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly options: CallbackOptions,
    private readonly metrics: DispatcherMetrics,
    private readonly logger: Logger,
  ) {}

  /** Queues the POST of `body` (a JSON text) to `url` for task `taskId`. Never throws. */
  send(url: string, taskId: string, body: string): void {
    if (this.closed) return;
    this.attempt(url, taskId, body, 1);
  }

  /** Stops retrying and resolves once no POST is under way. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  private attempt(url: string, taskId: string, body: string, attempt: number): void {
    const run = this.post(url, taskId, body).then((verdict) => {
      const log = { event: 'callback', task_id: taskId, url, attempt, ...verdict };
      if (verdict.ok) {
        this.metrics.callbacksSent.inc();
        this.logger.info(log, 'callback delivered');
        return;
      }
      if (!verdict.retry || attempt >= this.options.attempts || this.closed) {
        this.metrics.callbacksFailed.inc();
        this.logger.warn(log, 'callback failed; giving up');
        return;
      }
      const base = Math.min(30_000, this.options.backoffMs * 2 ** (attempt - 1));
      const delay = base / 2 + Math.random() * (base / 2);
      this.logger.info({ ...log, retry_in_ms: Math.round(delay) }, 'callback failed; will retry');
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.attempt(url, taskId, body, attempt + 1);
      }, delay).unref();
      this.timers.add(timer);
    });
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  private async post(
    url: string,
    taskId: string,
    body: string,
  ): Promise<{ ok: boolean; retry: boolean; status?: number; message?: string }> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-smart-routing-task-id': taskId,
    };
    if (this.options.secret !== undefined)
      headers[SIGNATURE_HEADER.toLowerCase()] = signCallback(
        this.options.secret,
        Math.floor(Date.now() / 1000),
        body,
      );
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      await res.body?.cancel();
      if (res.status >= 200 && res.status < 300) return { ok: true, retry: false, status: res.status };
      const retry = res.status === 408 || res.status === 429 || res.status >= 500;
      return { ok: false, retry, status: res.status };
    } catch (err) {
      return { ok: false, retry: true, message: (err as Error).message };
    }
  }
}
