import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/routing/random.js';
import { Registry } from '../../src/routing/registry.js';
import type { TaskSpec, WorkerInfo } from '../../src/routing/types.js';

function info(id: string, labels: string[] = [], extra: Partial<WorkerInfo> = {}): WorkerInfo {
  return { id, labelCapacity: 2, taskSlots: 1, loadedLabels: labels, taskTypes: ['embed_texts'], ...extra };
}
const t = (id: string, label: string, taskType = 'embed_texts'): TaskSpec => ({ id, label, taskType });
const ids = (it: Iterable<{ id: string }>): string[] => [...it].map((w) => w.id);
const random = seededRandom(7);

describe('Registry#add / #remove', () => {
  it('clamps capacity and slots to at least 1, keeps reported recency, and refuses a taken id', () => {
    const r = new Registry();
    const w = r.add(info('w1', ['a', 'b', 'a', 'c'], { labelCapacity: 0, taskSlots: -3 }), 10);
    expect([w.labelCapacity, w.taskSlots]).toEqual([1, 1]);
    expect(w.labels).toEqual(['a']);
    const v = r.add(info('w2', ['x', 'y']), 10);
    expect(v.lastUsed.get('x')!).toBeGreaterThan(v.lastUsed.get('y')!);
    expect(() => r.add(info('w1'), 11)).toThrow('worker w1 is already registered');
    expect([r.size, r.totalReadySlots, r.availableCount]).toEqual([2, 2, 2]);
    expect(r.remove('w1')!.id).toBe('w1');
    expect(r.remove('w1')).toBeUndefined();
    expect([r.size, r.totalReadySlots, r.availableCount]).toEqual([1, 1, 1]);
    expect(ids(r.holdersOf('a'))).toEqual([]);
  });

  it('tells served, gone, waiting and unknown task types apart', () => {
    const r = new Registry();
    expect(r.taskTypeStatus('embed_texts')).toBe('waiting');
    r.add(info('w1'), 0);
    expect([r.taskTypeStatus('embed_texts'), r.taskTypeStatus('infer')]).toEqual(['served', 'unknown']);
    r.remove('w1');
    expect(r.taskTypeStatus('embed_texts')).toBe('gone');
    r.add(info('any', [], { taskTypes: [] }), 1);
    expect(r.taskTypeStatus('infer')).toBe('served');
  });
});

describe('Registry#isLabelFree', () => {
  it('is true only while every connected worker serving the type announced it label-free', () => {
    const r = new Registry();
    const types = ['embed_texts', 'echo'];
    r.add(info('new', [], { taskTypes: types, labelFreeTaskTypes: ['echo'] }), 0);
    expect([r.isLabelFree('echo'), r.isLabelFree('embed_texts')]).toEqual([true, false]);
    r.add(info('old', [], { taskTypes: types }), 0);
    expect(r.isLabelFree('echo')).toBe(false);
    r.remove('old');
    expect(r.isLabelFree('echo')).toBe(true);
    // A worker serving any type, silent about echo, uses labels for it too.
    r.add(info('any', [], { taskTypes: [] }), 0);
    expect(r.isLabelFree('echo')).toBe(false);
    r.remove('any');
    r.remove('new');
    expect(r.isLabelFree('echo')).toBe(false);
    // A label-free claim for a type the worker does not serve counts for nothing.
    r.add(info('odd', [], { taskTypes: ['embed_texts'], labelFreeTaskTypes: ['echo'] }), 0);
    expect(r.isLabelFree('echo')).toBe(false);
  });
});

describe('Registry#startTask / #finishTask', () => {
  it('marks the label loading and most recent and the eviction done, optimistically, and frees the slot', () => {
    const r = new Registry();
    const w = r.add(info('w1', ['a', 'b']), 0);
    const entry = r.startTask(w, t('x', 'c'), 'b', 5);
    expect(entry).toMatchObject({ workerId: 'w1', sentAt: 5, evictLabel: 'b', expectMiss: true });
    expect(w.labels).toEqual(['c', 'a']);
    expect([...w.loading]).toEqual(['c']);
    expect(w.pendingEvictions.get('b')).toBe(1);
    expect(r.inUse(w, 'c')).toBe(true);
    expect(r.inFlight('x')).toBe(entry);
    expect([r.isAvailable(w), r.availableCount]).toEqual([false, 0]);
    expect(ids(r.holdersOf('c'))).toEqual(['w1']);
    expect(r.finishTask(w, 'x')).toBe(entry);
    expect(r.finishTask(w, 'x')).toBeUndefined();
    expect([r.isAvailable(w), r.inUse(w, 'c'), w.pendingEvictions.has('b')]).toEqual([true, false, false]);
    expect(r.inFlight('x')).toBeUndefined();
  });

  it('leaves every label alone for a label-free task', () => {
    const r = new Registry();
    const w = r.add(info('w1', ['a', 'b']), 0);
    const before = new Map(w.lastUsed);
    const entry = r.startTask(w, t('x', '', 'echo'), undefined, 9);
    expect(entry.expectMiss).toBe(false);
    expect([w.labels, [...w.loading], w.inFlightByLabel.size]).toEqual([['a', 'b'], [], 0]);
    expect(w.lastUsed).toEqual(before);
    expect(r.isAvailable(w)).toBe(false);
    r.finishTask(w, 'x');
    // A report while nothing is in flight keeps no '' label around.
    r.applyLoadedLabels(w, ['b', 'a'], 10);
    expect(w.labels).toEqual(['b', 'a']);
  });
});

describe('Registry#applyLoadedLabels', () => {
  it('takes the report as the truth but keeps what the worker cannot have seen yet', () => {
    const r = new Registry();
    const w = r.add(info('w1', ['a', 'b']), 0);
    r.startTask(w, t('x', 'c'), 'b', 1);
    // A report from before the RunTask: b must stay gone, c stays (loading).
    r.applyLoadedLabels(w, ['a', 'b'], 2);
    expect(w.labels).toEqual(['c', 'a']);
    expect([...w.loading]).toEqual(['c']);
    r.finishTask(w, 'x');
    r.applyLoadedLabels(w, ['c'], 3);
    expect(w.labels).toEqual(['c']);
    expect(w.loading.size).toBe(0);
    expect([...w.lastUsed.keys()]).toEqual(['c']);
  });
});

describe('Registry indices', () => {
  it('finds available holders, free label slots (fewest labels first) and the stalest full worker', () => {
    const r = new Registry();
    const full1 = r.add(info('full-old', ['a', 'b']), 0);
    r.add(info('full-new', ['c', 'd']), 100);
    r.add(info('one', ['a']), 0);
    r.add(info('empty', []), 0);
    expect(ids(r.availableHolders('a', random)).sort()).toEqual(['full-old', 'one']);
    expect(ids(r.withFreeLabelSlot(random))).toEqual(['empty', 'one']);
    expect(ids(r.fullByStalestLabel())).toEqual(['full-old', 'full-new']);
    expect(r.holderCount('a')).toBe(2);
    expect(r.holderSlots('a')).toBe(2);
    // Busy: out of the available indices, still a holder.
    r.startTask(full1, t('x', 'a'), undefined, 200);
    expect(ids(r.availableHolders('a', random))).toEqual(['one']);
    expect(ids(r.fullByStalestLabel())).toEqual(['full-new']);
    expect(r.holderCount('a')).toBe(2);
    // Draining: no longer a holder nor a ready slot.
    r.setState(full1, 'draining');
    expect([r.holderCount('a'), r.totalReadySlots]).toEqual([1, 3]);
  });

  it('keeps the order in which workers became available, and blocked workers out of it', () => {
    const r = new Registry();
    const a = r.add(info('a'), 0);
    const b = r.add(info('b'), 0);
    expect(ids(r.availableByWait())).toEqual(['a', 'b']);
    r.startTask(a, t('x', 'l'), undefined, 1);
    r.finishTask(a, 'x');
    expect(ids(r.availableByWait())).toEqual(['b', 'a']);
    r.setBlocked(b, true);
    expect([ids(r.availableByWait()), r.availableCount]).toEqual([['a'], 1]);
    r.setBlocked(b, false);
    expect(ids(r.availableByWait())).toEqual(['a', 'b']);
  });

  it('avoids a failing label until its back-off ends, and forgets it is there', () => {
    const r = new Registry();
    const w = r.add(info('w1', ['a']), 0);
    r.markFailing(w, 'a', 100);
    expect([w.labels, r.isFailing(w, 'a', 50), r.canRun(w, t('x', 'a'), 50)]).toEqual([[], true, false]);
    expect([r.isFailing(w, 'a', 100), r.canRun(w, t('x', 'a'), 100)]).toEqual([false, true]);
    expect(r.canRun(w, t('x', 'a', 'infer'), 100)).toBe(false);
    r.expireFailures(w, 100);
    expect(w.failing.size).toBe(0);
  });
});
