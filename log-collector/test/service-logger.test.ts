import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startLogCollector, type LogCollectorHandle } from '../src/collector.js';
import { createServiceLogger, type ServiceLogger } from '@smart-routing/service-kit';
import { closedPort, memoryDestination, readRecords, silent, tempDir, waitFor } from './helpers.js';

describe('createServiceLogger', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let collector: LogCollectorHandle | undefined;
  const loggers: ServiceLogger[] = [];

  beforeEach(async () => {
    tmp = await tempDir();
  });

  afterEach(async () => {
    await Promise.all(loggers.splice(0).map((l) => l.close()));
    await collector?.close();
    collector = undefined;
    await tmp.remove();
  });

  it('sends records with service (and base fields) to the collector file and to the local stream', async () => {
    collector = await startLogCollector({
      port: 0,
      host: '127.0.0.1',
      dir: tmp.dir,
      runId: 'svc',
      logger: silent,
    });
    const local = memoryDestination();
    const svc = createServiceLogger({
      service: 'worker',
      level: 'debug',
      collectorUrl: collector.url,
      base: { worker_id: 'w-1' },
      destination: local,
    });
    loggers.push(svc);
    svc.logger.info({ event: 'label_miss', label: 'label-1', task_id: 't-1', worker_id: 'w-1', load_ms: 12 });
    svc.logger.debug({ event: 'task_completed', task_id: 't-1', runtime_ms: 3 }, 'done');
    svc.logger.trace('below the level: nowhere');
    await svc.close();
    await collector.close();

    const records = await readRecords(collector.file);
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({
      service: 'worker',
      worker_id: 'w-1',
      event: 'label_miss',
      label: 'label-1',
      task_id: 't-1',
      load_ms: 12,
      level: 30,
      time: expect.any(Number),
      received_at: expect.any(Number),
    });
    expect(records[1]).toMatchObject({
      service: 'worker',
      event: 'task_completed',
      runtime_ms: 3,
      msg: 'done',
    });
    expect(local.lines.map((l) => JSON.parse(l).event)).toEqual(['label_miss', 'task_completed']);
    expect(svc.shipper?.sent()).toBe(2);
  });

  it('logs to the local stream only when no collector URL is set', async () => {
    const local = memoryDestination();
    const svc = createServiceLogger({ service: 'uploader', collectorUrl: '', destination: local });
    loggers.push(svc);
    svc.logger.info({ event: 'started' });
    expect(svc.shipper).toBeUndefined();
    expect(JSON.parse(local.lines[0] as string)).toMatchObject({ service: 'uploader', event: 'started' });
    await svc.close();
    await svc.close();
  });

  it('with the collector down: keeps logging locally, says so once, and counts drops', async () => {
    const local = memoryDestination();
    const svc = createServiceLogger({
      service: 'dispatcher',
      collectorUrl: `http://127.0.0.1:${await closedPort()}`,
      destination: local,
      shipper: { maxBuffer: 50, flushIntervalMs: 5, minRetryMs: 10, maxRetryMs: 20, closeTimeoutMs: 200 },
    });
    loggers.push(svc);
    for (let i = 0; i < 10_000; i++) svc.logger.info({ event: 'task_routed', i });
    expect(svc.shipper?.dropped()).toBe(9_950);
    await waitFor(() => local.lines.some((l) => l.includes('log_collector_unreachable')));
    await svc.close();
    expect(svc.shipper?.dropped()).toBe(10_000);
    const events = local.lines.map((l) => JSON.parse(l).event);
    expect(events.filter((e) => e === 'task_routed')).toHaveLength(10_000);
    expect(events.filter((e) => e === 'log_collector_unreachable')).toHaveLength(1);
    expect(events.at(-1)).toBe('log_records_dropped');
  });
});
