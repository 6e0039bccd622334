/**
 * A {@link TaskStore} that times every call into the `smart_routing_task_store_seconds` histogram
 * (label `op`), so the three stores' latencies are seen the same way.
 */
import { performance } from 'node:perf_hooks';
import type { Histogram } from 'prom-client';
import { TASK_STORE_CALLS, type TaskStore } from '../task-store/task-store.js';

const OPS = [...TASK_STORE_CALLS, 'close'] as const;

/** Wraps `store`; the wrapper's `close()` closes `store`. */
export function timedStore(store: TaskStore, seconds: Histogram<'op'>): TaskStore {
  const timed = { kind: store.kind } as Record<string, unknown>;
  for (const op of OPS) {
    const method = (store[op] as (...args: unknown[]) => Promise<unknown>).bind(store);
    const labels = { op };
    // Not an async function with try/finally: every /run-task makes four of these calls, and the
    // extra promise and awaits per call showed in the dispatcher's profile.
    timed[op] = (...args: unknown[]) => {
      const started = performance.now();
      const observe = (): void => seconds.observe(labels, (performance.now() - started) / 1000);
      let result: Promise<unknown>;
      try {
        result = Promise.resolve(method(...args));
      } catch (err) {
        observe();
        return Promise.reject(err as Error);
      }
      result.then(observe, observe);
      return result;
    };
  }
  return timed as unknown as TaskStore;
}
