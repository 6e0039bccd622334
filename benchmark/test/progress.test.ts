import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatProgressLine, ProgressReporter } from '../src/progress.js';

describe('formatProgressLine', () => {
  it('shows elapsed time, the phase, requests done/total and failures', () => {
    expect(
      formatProgressLine({
        elapsedS: 12.44,
        phaseS: 4.06,
        phase: 'affinity: sending requests',
        done: 57,
        total: 150,
        failed: 2,
      }),
    ).toBe('benchmark 12.4 s | affinity: sending requests 57/150 (2 failed) | phase 4.1 s');
    expect(formatProgressLine({ elapsedS: 0, phaseS: 0, phase: 'calibrating load time' })).toBe(
      'benchmark 0.0 s | calibrating load time | phase 0.0 s',
    );
  });
});

describe('ProgressReporter', () => {
  // Fake timers and clock: the reporter's own timer is what is under test.
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const make = (quiet = false) => {
    const lines: string[] = [];
    const reporter = new ProgressReporter({
      quiet,
      now: () => Date.now(),
      stream: { write: (t: string) => lines.push(t) },
    });
    return { reporter, lines };
  };

  it('prints a line as each phase starts and then at least every 2 s until stopped', () => {
    const { reporter, lines } = make();
    reporter.phase('generating models');
    expect(lines).toEqual(['benchmark 0.0 s | generating models | phase 0.0 s\n']);
    vi.advanceTimersByTime(1000);
    reporter.phase('random: sending requests', 3);
    reporter.requestDone(false);
    reporter.requestDone(true);
    vi.advanceTimersByTime(10_000);
    expect(lines[1]).toBe('benchmark 1.0 s | random: sending requests 0/3 | phase 0.0 s\n');
    expect(lines).toContain('benchmark 4.5 s | random: sending requests 2/3 (1 failed) | phase 3.5 s\n');
    // Every gap between two lines is at most 2 s.
    const times = lines.map((l) => Number(/^benchmark ([\d.]+) s/.exec(l)![1]));
    expect(times.at(-1)).toBeGreaterThanOrEqual(9);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(2);
    const count = lines.length;
    reporter.stop();
    reporter.stop();
    reporter.phase('after stop');
    vi.advanceTimersByTime(10_000);
    expect(lines).toHaveLength(count);
  });

  it('prints nothing when quiet', () => {
    const { reporter, lines } = make(true);
    reporter.phase('generating models');
    vi.advanceTimersByTime(10_000);
    reporter.stop();
    expect(lines).toEqual([]);
  });
});
