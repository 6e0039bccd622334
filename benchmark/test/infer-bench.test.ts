import { describe, expect, it } from 'vitest';
import { checkTargets, formatCase, measurePath, runCase, type PathMeasurement } from '../src/infer-bench.js';
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

  it('reports CPU per measured inference per process from the sampler read before and after', async () => {
    const p = path(async () => undefined);
    let reads = 0;
    // Stand-in counters: 100 ms more for 'server' and 10 ms more for 'client' over the measured calls.
    const cpu = async (): Promise<Record<string, number>> =>
      reads++ === 0 ? { client: 50, server: 1000 } : { client: 60, server: 1100 };
    const m = await measurePath(p, { concurrency: 2, requests: 20, cpu }, label);
    expect(reads).toBe(2);
    expect(m.cpuUsPerInference).toEqual({ client: 500, server: 5000 });
    expect(
      formatCase({ key: 'k', title: 't', baseline: 'x', rows: [{ ...m, ratio: 1 }] }).join('\n'),
    ).toContain('CPU ms per inference: client 0.50, server 5.00');
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

describe('checkTargets', () => {
  const r = (id: string, perSecond: number, p50Ms: number, base: number): PathMeasurement => ({
    id,
    name: id,
    concurrency: 4,
    requests: 10,
    failures: 0,
    seconds: 1,
    perSecond,
    p50Ms,
    p99Ms: p50Ms,
    ratio: perSecond / base,
  });
  const gone = (id: string): PathMeasurement => ({ id, name: id, concurrency: 4, unavailable: 'HTTP 404' });

  it('judges each target on its rows, and says n/a with the reason when a path is missing', () => {
    const checks = checkTargets([
      {
        key: 'image-224',
        title: '',
        baseline: 'a',
        rows: [
          r('a', 100, 10, 100),
          r('b', 90, 11, 100),
          r('c', 20, 40, 100),
          r('d', 85, 11.5, 100),
          gone('e'),
        ],
      },
      {
        key: 'dynamic-batching',
        title: '',
        baseline: 'a1',
        rows: [r('a1', 50, 5, 50), r('d', 60, 20, 50), r('e', 40, 30, 50)],
      },
      {
        key: 'image-320',
        title: '',
        baseline: 'a',
        rows: [r('a', 1, 1, 1), r('b', 1, 1, 1), gone('c'), r('d', 1, 1, 1), r('e', 1, 1, 1)],
      },
    ]);
    expect(checks.map((c) => [c.target, c.verdict, c.detail])).toEqual([
      ['(d) >= 0.8x (a), image 224', 'met', '0.85x'],
      ['(d) adds <= 2 ms p50 over (a), image 224', 'met', '1.5 ms'],
      ['(e) >= 0.8x (a), image 224', 'n/a', 'HTTP 404'],
      ['(e) adds <= 2 ms p50 over (a), image 224', 'n/a', 'HTTP 404'],
      ['(c) /run-task JSON >= 0.3x (a), image 224', 'not met', '0.20x'],
      ['(d) with dynamic batching above (a) one at a time', 'met', '1.20x'],
      ['(e) with dynamic batching above (a) one at a time', 'not met', '0.80x'],
      ['1x3x320x320 through every path', 'not met', 'failed: c'],
    ]);
  });

  it('says n/a for cases that were not run', () => {
    const checks = checkTargets([]);
    expect(checks).toHaveLength(8);
    expect(checks.every((c) => c.verdict === 'n/a' && c.detail === 'not measured')).toBe(true);
  });
});
