import { describe, expect, it } from 'vitest';
import { LogLimiter } from '../src/log-limiter.js';

describe('LogLimiter#take', () => {
  it('lets `burst` lines through per window and key, then reports how many it held back', () => {
    const l = new LogLimiter({ intervalMs: 1000, burst: 2 });
    expect([l.take('a', 0), l.take('a', 1), l.take('a', 2), l.take('a', 3)]).toEqual([
      0,
      0,
      undefined,
      undefined,
    ]);
    // Another key has its own budget.
    expect(l.take('b', 4)).toBe(0);
    expect(l.take('a', 1000)).toBe(2);
    expect(l.take('a', 1001)).toBe(0);
    expect(l.take('a', 1002)).toBeUndefined();
  });

  it('forgets the oldest key past maxKeys', () => {
    const l = new LogLimiter({ intervalMs: 1000, burst: 1, maxKeys: 2 });
    l.take('a', 0);
    expect(l.take('a', 1)).toBeUndefined();
    l.take('b', 2);
    l.take('c', 3); // drops a
    expect(l.take('a', 4)).toBe(0);
  });
});
