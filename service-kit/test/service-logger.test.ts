import { hostname } from 'node:os';
import type { DestinationStream } from 'pino';
import { describe, expect, it } from 'vitest';
import { createServiceLogger } from '../src/service-logger.js';

/** A pino destination that keeps the records it is given. */
function memory(): DestinationStream & { records: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  return {
    write(chunk: string) {
      lines.push(chunk);
    },
    records: () =>
      lines
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('createServiceLogger', () => {
  it('tags every record with service, pid, hostname and the base fields', async () => {
    const destination = memory();
    const service = createServiceLogger({ service: 'worker', base: { worker_id: 'w-1' }, destination });
    service.logger.info({ event: 'started' }, 'hello');
    await service.close();
    expect(service.shipper).toBeUndefined();
    expect(destination.records()).toEqual([
      expect.objectContaining({
        level: 30,
        service: 'worker',
        worker_id: 'w-1',
        pid: process.pid,
        hostname: hostname(),
        event: 'started',
        msg: 'hello',
      }),
    ]);
  });

  it('never writes secrets, wherever the caller puts them', async () => {
    const destination = memory();
    const { logger, close } = createServiceLogger({ service: 'uploader', destination });
    logger.info({ hfToken: 'hf_abc', headers: { authorization: 'Bearer xyz' }, token: 't0k' }, 'call');
    await close();
    const [record] = destination.records();
    expect(record).toMatchObject({
      hfToken: '[redacted]',
      headers: { authorization: '[redacted]' },
      token: '[redacted]',
    });
    expect(JSON.stringify(record)).not.toMatch(/hf_abc|xyz|t0k/);
  });

  it('filters by level; close() is safe to call twice', async () => {
    const destination = memory();
    const service = createServiceLogger({ service: 'dispatcher', level: 'warn', destination });
    service.logger.info('dropped');
    service.logger.warn('kept');
    const first = service.close();
    expect(service.close()).toBe(first);
    await first;
    expect(destination.records().map((r) => r.msg)).toEqual(['kept']);
  });
});
