import type { RunTask } from '@smart-routing/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, eventually, get, post, task } from './harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

/** The value of one un-labelled Prometheus series. */
const metric = async (url: string, name: string): Promise<number> => {
  const text = (await get(url, '/metrics')).body as string;
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
};

// Hello.label_free_task_types. Regression (issue 9 item 7): echo was routed with a label, sent
// evict_label and counted as a hit or miss.
describe('label-free task types over real sockets', () => {
  it('routes a type the worker announced label-free without a label, eviction, hit or miss', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({
      url: d.url,
      id: 'w',
      labels: ['a', 'b'],
      labelCapacity: 2,
      labelFreeTaskTypes: ['echo'],
    });
    // A full worker and a label it does not hold: a labelled task would evict b.
    const res = await post(d.url, '/run-task', task('c', { task_type: 'echo' }));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ label: 'c', label_miss: false, load_ms: 0, worker_id: 'w' });
    expect(w.received).toHaveLength(1);
    expect(w.received[0]).toMatchObject({ taskType: 'echo', label: '', evictLabel: '' });
    expect(d.router.worker('w')!.labels).toEqual(['a', 'b']);
    expect(w.cache.labels).toEqual(['a', 'b']);
    expect(await metric(d.url, 'smart_routing_label_hits_total')).toBe(0);
    expect(await metric(d.url, 'smart_routing_label_misses_total')).toBe(0);
    // A labelled task on the same worker still counts.
    expect((await post(d.url, '/run-task', task('a'))).status).toBe(200);
    expect(await metric(d.url, 'smart_routing_label_hits_total')).toBe(1);
  });

  it('waits in the common queue without a label and runs when a slot frees', async () => {
    const d = await h.dispatcher();
    const w = await h.worker({
      url: d.url,
      id: 'w',
      labels: ['a'],
      slots: 1,
      // The labelled task holds the only slot long enough for the label-free one to queue behind it.
      runMs: (t: RunTask) => (t.label === 'a' ? 1500 : 5),
      labelFreeTaskTypes: ['echo'],
    });
    const first = post(d.url, '/run-task', task('a'));
    await w.waitForTasks(1);
    const second = post(d.url, '/run-task', task('z', { task_type: 'echo' }));
    await eventually(() => d.router.queueDepths().get('*') === 1);
    expect(d.router.queueDepths().has('z')).toBe(false);
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(w.received.map((r) => [r.label, r.evictLabel])).toEqual([
      ['a', ''],
      ['', ''],
    ]);
  });

  it('routes the type with its label, as before the field, while a worker that did not announce it serves it', async () => {
    const d = await h.dispatcher();
    const old = await h.worker({ url: d.url, id: 'old', labels: ['a', 'b'], labelCapacity: 2 });
    const res = await post(d.url, '/run-task', task('c', { task_type: 'echo' }));
    expect(res.status).toBe(200);
    expect(old.received[0]).toMatchObject({ label: 'c', evictLabel: 'b' });
    expect(res.body.label_miss).toBe(true);
    expect(await metric(d.url, 'smart_routing_label_misses_total')).toBe(1);
    // A new worker joins: one serving worker still uses labels, so the type stays labelled.
    const fresh = await h.worker({ url: d.url, id: 'new', labels: [], labelFreeTaskTypes: ['echo'] });
    expect(d.router.isLabelFree('echo')).toBe(false);
    await old.close();
    await eventually(() => d.router.worker('old') === undefined);
    expect(d.router.isLabelFree('echo')).toBe(true);
    expect((await post(d.url, '/run-task', task('c', { task_type: 'echo' }))).status).toBe(200);
    expect(fresh.received[0]).toMatchObject({ label: '', evictLabel: '' });
  });
});
