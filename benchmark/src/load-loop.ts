import { Agent, request } from 'undici';
import { percentile } from './stats.js';

/**
 * A closed-loop HTTP load generator: `concurrency` loops each send a request, wait for the reply,
 * and send the next, until `total` requests are done. Used by the throughput benchmark for both
 * the dispatcher and the bare Express baseline, so both see the same client.
 */
export interface LoadResult {
  requests: number;
  failures: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export async function loadLoop(options: {
  url: string;
  concurrency: number;
  total: number;
  body: (i: number) => string;
}): Promise<LoadResult> {
  const agent = new Agent({ connections: options.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
  const latencies: number[] = [];
  let next = 0;
  let failures = 0;
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (next < options.total) {
          const i = next++;
          const t0 = performance.now();
          try {
            const res = await request(options.url, {
              method: 'POST',
              dispatcher: agent,
              headers: { 'content-type': 'application/json' },
              body: options.body(i),
            });
            await res.body.dump();
            if (res.statusCode !== 200) failures++;
          } catch {
            failures++;
          }
          latencies.push(performance.now() - t0);
        }
      }),
    );
  } finally {
    await agent.close();
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    requests: options.total,
    failures,
    seconds,
    perSecond: options.total / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}
