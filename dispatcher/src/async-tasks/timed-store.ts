/**
 * A {@link TaskStore} that times every call into the `smart_routing_task_store_seconds` histogram
 * (label `op`), so the three stores' latencies are seen the same way.
 */
import { performance } from 'node:perf_hooks';
import type { Histogram } from 'prom-client';
import type { TaskStore } from '../task-store/task-store.js';

type Op = Exclude<keyof TaskStore, 'kind'>;
const OPS: readonly Op[] = [
  'create',
  'get',
  'markRunning',
  'markQueued',
  'finish',
  'unfinished',
  'list',
  'countByStatus',
  'prune',
  'close',
];

/** Wraps `store`; the wrapper's `close()` closes `store`. */
export function timedStore(store: TaskStore, seconds: Histogram<'op'>): TaskStore {
  const timed = { kind: store.kind } as Record<string, unknown>;
  for (const op of OPS) {
    const method = (store[op] as (...args: unknown[]) => Promise<unknown>).bind(store);
    timed[op] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await method(...args);
      } finally {
        seconds.observe({ op }, (performance.now() - started) / 1000);
      }
    };
  }
  return timed as unknown as TaskStore;
}
