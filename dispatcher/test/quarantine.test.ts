import { describe, expect, it } from 'vitest';
import { WorkerQuarantine } from '../src/quarantine.js';

describe('WorkerQuarantine#strike', () => {
  it('quarantines after `strikes` strikes within the window, not for strikes spread wider', () => {
    const q = new WorkerQuarantine({ strikes: 3, windowMs: 1000, cooldownMs: 500 });
    expect(q.strike('w', 'task_timeout', 0)).toBeUndefined();
    expect(q.strike('w', 'task_timeout', 600)).toBeUndefined();
    // The first strike left the window: still two.
    expect(q.strike('w', 'task_timeout', 1200)).toBeUndefined();
    expect(q.isQuarantined('w')).toBe(false);
    expect(q.strike('w', 'lost_with_tasks', 1300)).toEqual({
      workerId: 'w',
      until: 1800,
      cooldownMs: 500,
      reason: 'lost_with_tasks',
    });
    expect(q.isQuarantined('w')).toBe(true);
    expect(q.isQuarantined('other')).toBe(false);
    expect(q.size).toBe(1);
  });

  it('doubles the cool-down on a repeat, up to the maximum, and forgets it after a clean window', () => {
    const q = new WorkerQuarantine({ strikes: 1, windowMs: 1000, cooldownMs: 100, maxCooldownMs: 250 });
    expect(q.strike('w', 'task_timeout', 0)?.cooldownMs).toBe(100);
    expect(q.releaseDue(50)).toEqual([]);
    expect(q.releaseDue(100)).toEqual(['w']);
    expect(q.isQuarantined('w')).toBe(false);
    expect(q.strike('w', 'task_timeout', 200)?.cooldownMs).toBe(200);
    expect(q.releaseDue(400)).toEqual(['w']);
    expect(q.strike('w', 'task_timeout', 500)?.cooldownMs).toBe(250);
    expect(q.releaseDue(750)).toEqual(['w']);
    expect(q.strike('w', 'task_timeout', 5000)?.cooldownMs).toBe(100);
  });

  it('ignores strikes while quarantined and drops records with nothing left to remember', () => {
    const q = new WorkerQuarantine({ strikes: 2, windowMs: 100, cooldownMs: 10 });
    q.strike('a', 'task_timeout', 0);
    q.strike('a', 'task_timeout', 1);
    expect(q.strike('a', 'task_timeout', 2)).toBeUndefined();
    expect(q.releaseDue(11)).toEqual(['a']);
    q.strike('b', 'task_timeout', 20);
    q.releaseDue(500);
    // Both were forgotten: each needs two fresh strikes again.
    expect(q.strike('a', 'task_timeout', 501)).toBeUndefined();
    expect(q.strike('b', 'task_timeout', 501)).toBeUndefined();
    expect(q.strike('b', 'task_timeout', 502)).toBeDefined();
  });
});
