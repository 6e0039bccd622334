import { describe, expect, it } from 'vitest';
import type { WorkerInfo } from '../../src/routing/types.js';
import { FleetFeed } from '../../src/ui/fleet-feed.js';

const info = (id: string): WorkerInfo => ({
  id,
  labelCapacity: 2,
  taskSlots: 1,
  loadedLabels: [],
  taskTypes: [],
});
const labelEvent = (kind: 'loaded' | 'evicted' | 'load_failed' | 'unspecified', label: string) => ({
  kind,
  label,
  durationMs: kind === 'loaded' ? 300 : 0,
  message: kind === 'load_failed' ? 'no such file' : '',
  loadedLabels: [],
  footprintBytes: 0,
});

describe('FleetFeed', () => {
  it('keeps the last `capacity` events in order, numbered', () => {
    let now = 1000;
    const feed = new FleetFeed({ capacity: 3, now: () => now });
    feed.workerJoined(info('w1'));
    now += 5;
    feed.labelEvent('w1', labelEvent('loaded', 'a'));
    feed.labelEvent('w1', labelEvent('load_failed', 'b'));
    feed.workerLeft('w1', 'connection closed (1006)');
    const recent = feed.recent();
    expect(recent.map((e) => e.kind)).toEqual(['loaded', 'load_failed', 'left']);
    expect(recent.map((e) => e.seq)).toEqual([2, 3, 4]);
    expect(recent[0]).toMatchObject({ at: 1005, workerId: 'w1', label: 'a', durationMs: 300 });
    expect(recent[1]).toMatchObject({ label: 'b', detail: 'no such file' });
    expect(recent[2]).toMatchObject({ detail: 'connection closed (1006)' });
  });

  it('does not list unspecified label events and cuts long details', () => {
    const feed = new FleetFeed();
    feed.labelEvent('w1', labelEvent('unspecified', 'a'));
    feed.workerLeft('w1', 'x'.repeat(1000));
    expect(feed.recent()).toHaveLength(1);
    expect(feed.recent()[0]!.detail).toHaveLength(200);
  });

  it('counts loads and evictions per bucket over its span, dropping older buckets', () => {
    let now = 0;
    const feed = new FleetFeed({ bucketMs: 100, buckets: 3, now: () => now });
    feed.labelEvent('w1', labelEvent('loaded', 'a'));
    now = 150;
    feed.labelEvent('w1', labelEvent('loaded', 'b'));
    feed.labelEvent('w1', labelEvent('evicted', 'a'));
    feed.labelEvent('w1', labelEvent('load_failed', 'c'));
    expect(feed.series()).toEqual({ bucketMs: 100, startsAt: -100, loads: [0, 1, 1], evictions: [0, 0, 1] });
    now = 420;
    feed.labelEvent('w1', labelEvent('evicted', 'b'));
    expect(feed.series()).toEqual({ bucketMs: 100, startsAt: 200, loads: [0, 0, 0], evictions: [0, 0, 1] });
  });

  it('tells subscribers until they unsubscribe, and drops one that throws', () => {
    const feed = new FleetFeed();
    const seen: string[] = [];
    const off = feed.subscribe((e) => seen.push(e.workerId));
    feed.subscribe(() => {
      throw new Error('broken view');
    });
    feed.workerJoined(info('w1'));
    off();
    feed.workerJoined(info('w2'));
    expect(seen).toEqual(['w1']);
  });
});
