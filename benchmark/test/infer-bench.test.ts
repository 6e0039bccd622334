import { describe, expect, it } from 'vitest';
import { formatCase, measurePath, runCase } from '../src/infer-bench.js';
import type { InferPath } from '../src/infer-paths.js';

// The measuring loop on stand-in paths (no sockets): counts, failures, unavailable paths, ratios.

function path(behaviour: (i: number) => Promise<void>): InferPath & { calls: number; closed: number } {
  const p = {
    calls: 0,
    closed: 0,
    infer: () => behaviour(p.calls++),
    close: async () => {
      p.closed++;
    },
  };
  return p;
}

const label = { id: 'x', name: 'stand-in' };

describe('measurePath', () => {
  it('makes the probe, the warm-up and exactly the measured calls', async () => {
    const p = path(async () => undefined);
    const m = await measurePath(p, { concurrency: 3, requests: 20, warmup: 5 }, label);
    expect(p.calls).toBe(1 + 5 + 20);
    expect(m).toMatchObject({ id: 'x', concurrency: 3, requests: 20, failures: 0 });
    expect(m.perSecond).toBeGreaterThan(0);
    expect(m.p99Ms).toBeGreaterThanOrEqual(m.p50Ms!);
  });

  it('a failing probe makes the path unavailable, with the reason', async () => {
    const p = path(async () => {
      throw new Error('HTTP 404: {"error":"no route"}\nmore');
    });
    const m = await measurePath(p, { concurrency: 2, requests: 10 }, label);
    expect(m).toEqual({
      id: 'x',
      name: 'stand-in',
      concurrency: 2,
      unavailable: 'HTTP 404: {"error":"no route"}',
    });
    expect(p.calls).toBe(1);
  });

  it('counts later failures and leaves them out of tasks/s', async () => {
    const p = path(async (i) => {
      if (i % 2 === 0 && i > 0) throw new Error(`boom ${i}`);
    });
    const m = await measurePath(p, { concurrency: 1, requests: 10 }, label);
    expect(m.requests).toBe(10);
    expect(m.failures).toBe(5);
    expect(m.firstFailure).toBe('boom 2');
    expect(m.perSecond).toBeCloseTo(5 / m.seconds!, 6);
  });

  it('by duration, stops after the time', async () => {
    let t = 0;
    const p = path(async () => {
      t++;
      await new Promise((r) => setImmediate(r));
    });
    const m = await measurePath(p, { concurrency: 2, requests: 1, durationMs: 30 }, label);
    expect(m.seconds).toBeGreaterThanOrEqual(0.03);
    expect(m.requests).toBe(t - 1);
  });
});

describe('runCase', () => {
  it('measures in order, gives ratios against the first row, reports paths that cannot open', async () => {
    const slow = path(() => new Promise((r) => setTimeout(r, 2)));
    const fast = path(async () => undefined);
    const c = await runCase('k', 'title', [
      { id: 'a', name: 'slow', options: { concurrency: 1, requests: 5 }, open: async () => slow },
      { id: 'b', name: 'fast', options: { concurrency: 1, requests: 5 }, open: async () => fast },
      {
        id: 'e',
        name: 'gone',
        options: { concurrency: 1, requests: 5 },
        open: () => Promise.reject(new Error('no such front')),
      },
    ]);
    expect(c.baseline).toBe('a');
    expect(c.rows.map((r) => r.id)).toEqual(['a', 'b', 'e']);
    expect(c.rows[0]!.ratio).toBe(1);
    expect(c.rows[1]!.ratio).toBeCloseTo(c.rows[1]!.perSecond! / c.rows[0]!.perSecond!, 9);
    expect(c.rows[1]!.ratio).toBeGreaterThan(1);
    expect(c.rows[2]).toEqual({ id: 'e', name: 'gone', concurrency: 1, unavailable: 'no such front' });
    expect(slow.closed).toBe(1);
    expect(fast.closed).toBe(1);
    const text = formatCase(c);
    expect(text[0]).toBe('title (ratios against (a))');
    expect(text[3]).toMatch(/\(e\) gone, c=1 +unavailable: no such front$/);
  });
});
