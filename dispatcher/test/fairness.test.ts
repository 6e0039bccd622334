/**
 * Tenant = API key over real sockets: the key a producer sends names its tenant, and weighted fair
 * queueing in the routing core keeps a heavy tenant from starving a light one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createKeyIdentifier, unnamedKeyTenant } from '../src/api-keys.js';
import type { DispatcherOptions } from '../src/config.js';
import { Harness, eventually, post, task } from './harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

const HEAVY = { authorization: 'Bearer heavy-key' };
const LIGHT = { 'x-api-key': 'light-key' };

/**
 * One worker holding one label at a time; the heavy tenant queues `heavyTasks` tasks on cold labels,
 * then the light tenant sends two. Returns where the light tasks ran in the worker's order.
 */
async function lightPositions(options: DispatcherOptions, heavyTasks = 10): Promise<number[]> {
  const d = await h.dispatcher(options);
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  // The worker holds its first task until every task is queued in the router.
  const w = await h.worker({
    url: d.url,
    id: 'w1',
    labelCapacity: 1,
    loadMs: 5,
    runMs: 5,
    before: () => held,
  });
  const heavy = [post(d.url, '/run-task', task('h0'), HEAVY)];
  await w.waitForTasks(1, 20_000);
  for (let i = 1; i < heavyTasks; i++) heavy.push(post(d.url, '/run-task', task(`h${i}`), HEAVY));
  await eventually(() => d.router.queuedCount === heavyTasks - 1, 20_000);
  const lightBodies = [task('l0'), task('l1')];
  const light = lightBodies.map((b) => post(d.url, '/run-task', b, LIGHT));
  await eventually(() => d.router.queuedCount === heavyTasks + 1, 20_000);
  release();
  const answers = await Promise.all([...heavy, ...light]);
  for (const a of answers) expect(a.status).toBe(200);
  const order = w.received.map((t) => t.taskId);
  return lightBodies.map((b) => order.indexOf(b.task_id as string));
}

describe('tenant = API key', () => {
  it('names the tenant by the key: named keys by name, unnamed ones by a digest, none = shared', () => {
    const identify = createKeyIdentifier(['plain'], { alice: 'k1' });
    expect(identify({ authorization: 'Bearer k1' })).toBe('alice');
    expect(identify({ 'x-api-key': 'plain' })).toBe(unnamedKeyTenant('plain'));
    expect(unnamedKeyTenant('plain')).toMatch(/^key-[0-9a-f]{8}$/);
    expect(identify({ authorization: 'Bearer nope' })).toBeNull();
    expect(identify({})).toBeNull();
    expect(createKeyIdentifier([])({})).toBeUndefined();
  });

  it('accepts named keys on /run-task and refuses others with 401', async () => {
    const d = await h.dispatcher({ namedApiKeys: { heavy: 'heavy-key' } });
    await h.worker({ url: d.url, id: 'w1', labels: ['a'] });
    expect((await post(d.url, '/run-task', task('a'), HEAVY)).status).toBe(200);
    const refused = await post(d.url, '/run-task', task('a'), LIGHT);
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('unauthorized');
    // The task was charged to the key's tenant.
    expect(d.router.fairShare.finishOf('heavy')).toBeGreaterThan(0);
  });

  it('a heavy tenant does not starve a light one', async () => {
    const keys = { namedApiKeys: { heavy: 'heavy-key', light: 'light-key' } };
    // Fair queueing: the light tenant's two tasks go among the next few, not after the backlog.
    const fair = await lightPositions(keys);
    expect(Math.max(...fair)).toBeLessThanOrEqual(4);
    await h.cleanup();
    // No keys, so one shared tenant: FIFO, the light tasks go last.
    const fifo = await lightPositions({});
    expect(Math.min(...fifo)).toBeGreaterThanOrEqual(9);
  });

  it('TENANT_WEIGHTS reach the router: a heavier weight keeps more of the worker', async () => {
    const keys = { namedApiKeys: { heavy: 'heavy-key', light: 'light-key' } };
    const favoured = await lightPositions({ ...keys, tenantWeights: { heavy: 50 } });
    await h.cleanup();
    const equal = await lightPositions(keys);
    expect(Math.min(...favoured)).toBeGreaterThan(Math.max(...equal));
  });
});
