/** Issue 11, item 2: refused worker upgrades are logged, rate-limited (a flood costs a few lines). */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeWorker } from './fake-worker.js';
import { Harness } from './harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

describe('refused worker upgrades', () => {
  it('regression: logs refusals with code, id and address, at most a few lines per code', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
    const d = await h.dispatcher({ workerToken: 'secret', logger: pino({ level: 'warn' }, sink) });
    for (let i = 0; i < 30; i++) {
      const answer = await FakeWorker.tryUpgrade(d.url, {
        'worker-id': `w${i}`,
        authorization: 'Bearer nope',
      });
      expect(answer.status).toBe(401);
    }
    const dup = await h.worker({ url: d.url, id: 'taken', token: 'secret' });
    expect(dup.frames[0]!.body).toBe('welcome');
    expect(
      (await FakeWorker.tryUpgrade(d.url, { 'worker-id': 'taken', authorization: 'Bearer secret' })).status,
    ).toBe(409);
    const refused = lines.filter((l) => l.event === 'worker_refused');
    const unauthorized = refused.filter((l) => l.code === 'unauthorized');
    expect(unauthorized.length).toBeGreaterThanOrEqual(1);
    expect(unauthorized.length).toBeLessThanOrEqual(5);
    expect(unauthorized[0]).toMatchObject({ status: 401, worker_id: 'w0', remote_address: '127.0.0.1' });
    // A flood of one code does not hide another.
    expect(refused.filter((l) => l.code === 'duplicate_worker_id')).toHaveLength(1);
    // The token itself is never logged.
    expect(JSON.stringify(lines)).not.toContain('nope');
  });
});
