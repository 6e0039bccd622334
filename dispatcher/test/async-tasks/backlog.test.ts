import { describe, expect, it } from 'vitest';
import { Backlog } from '../../src/async-tasks/backlog.js';
import type { TaskRecord } from '../../src/task-store/task-store.js';

const rec = (taskId: string, priority: number): TaskRecord => ({
  taskId,
  taskType: 'echo',
  label: 'a',
  parametersJson: '{}',
  mode: 'async',
  priority,
  queuedAt: 0,
  status: 'queued',
  attempts: 0,
});

const drain = (b: Backlog): string[] => {
  const out: string[] = [];
  for (let r = b.shift(); r; r = b.shift()) out.push(r.taskId);
  return out;
};

describe('Backlog', () => {
  it('serves highest priority first, FIFO within a priority; deleted tasks are skipped', () => {
    const b = new Backlog();
    for (const [id, p] of [
      ['a0', 0],
      ['b9', 9],
      ['c5', 5],
      ['d9', 9],
      ['e0', 0],
    ] as const)
      b.add(rec(id, p));
    expect(b.delete('c5')).toBe(true);
    expect(b.delete('nope')).toBe(false);
    expect(b.size).toBe(4);
    expect(drain(b)).toEqual(['b9', 'd9', 'a0', 'e0']);
    expect(b.size).toBe(0);
  });

  it('puts a task back at the front of its lane; a re-added id is served once, in its new place', () => {
    const b = new Backlog();
    b.add(rec('x', 3));
    b.add(rec('y', 3));
    const first = b.shift()!;
    b.returnToFront(first);
    b.add(rec('y', 3)); // re-added: the old entry is stale
    expect(drain(b)).toEqual(['x', 'y']);
  });

  it('keeps order over many operations (compaction)', () => {
    const b = new Backlog();
    for (let i = 0; i < 5000; i++) b.add(rec(`t${i}`, i % 2));
    const taken = [];
    for (let i = 0; i < 3000; i++) taken.push(b.shift()!.taskId);
    expect(taken.slice(0, 3)).toEqual(['t1', 't3', 't5']);
    expect(taken[2499]).toBe('t4999');
    expect(taken[2500]).toBe('t0');
    expect(drain(b)).toHaveLength(2000);
  });
});
