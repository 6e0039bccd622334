import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startLogCollector, type LogCollectorHandle, type LogCollectorOptions } from '../src/collector.js';
import { createLogShipper, type DropReason, type LogShipper } from '@smart-routing/service-kit';
import { closedPort, readRecords, silent, tempDir, waitFor } from './helpers.js';

const line = (record: object): string => JSON.stringify(record) + '\n';

describe('createLogShipper', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const collectors: LogCollectorHandle[] = [];
  const shippers: LogShipper[] = [];

  const collector = async (options: LogCollectorOptions = {}): Promise<LogCollectorHandle> => {
    const handle = await startLogCollector({
      port: 0,
      host: '127.0.0.1',
      dir: tmp.dir,
      runId: 'ship',
      logger: silent,
      flushIntervalMs: 5,
      ...options,
    });
    collectors.push(handle);
    return handle;
  };
  const shipper = (options: Parameters<typeof createLogShipper>[0]): LogShipper => {
    const created = createLogShipper({ minRetryMs: 10, maxRetryMs: 50, ...options });
    shippers.push(created);
    return created;
  };

  beforeEach(async () => {
    tmp = await tempDir();
  });

  afterEach(async () => {
    await Promise.all(shippers.splice(0).map((s) => s.close()));
    await Promise.all(collectors.splice(0).map((c) => c.close()));
    await tmp.remove();
  });

  it('ships lines in batches and keeps their order', async () => {
    const target = await collector();
    const ship = shipper({ url: target.url, batchSize: 100, flushIntervalMs: 10 });
    for (let seq = 0; seq < 2500; seq++) ship.write(line({ seq }));
    // A chunk with several lines counts each of them.
    ship.write(line({ seq: 2500 }) + line({ seq: 2501 }));
    await ship.flush();
    expect(ship.sent()).toBe(2502);
    expect(ship.dropped()).toBe(0);
    expect(ship.buffered()).toBe(0);
    await target.close();
    expect(target.stats().batches).toBeGreaterThanOrEqual(26);
    const records = await readRecords(target.file);
    expect(records.map((record) => record.seq)).toEqual(Array.from({ length: 2502 }, (_, i) => i));
  });

  it('accepts the collector base URL or its /ingest URL', async () => {
    const target = await collector();
    const a = shipper({ url: `${target.url}/` });
    const b = shipper({ url: `${target.url}/ingest` });
    a.write(line({ from: 'a' }));
    b.write(line({ from: 'b' }));
    await Promise.all([a.flush(), b.flush()]);
    expect([a.sent(), b.sent()]).toEqual([1, 1]);
  });

  it('ships what is left on close()', async () => {
    const target = await collector();
    const ship = shipper({ url: target.url, flushIntervalMs: 60_000, batchSize: 1000 });
    for (let seq = 0; seq < 10; seq++) ship.write(line({ seq }));
    await ship.close();
    await ship.close();
    expect(ship.sent()).toBe(10);
    // Writes after close are counted, not thrown.
    expect(ship.write(line({ late: true }))).toBe(true);
    expect(ship.dropped()).toBe(1);
    await target.close();
    expect(await readRecords(target.file)).toHaveLength(10);
  });

  it('with the collector down: does not throw or block, and counts what it drops', async () => {
    const drops: Record<DropReason, number> = { buffer_full: 0, rejected: 0, closed: 0 };
    const statuses: string[] = [];
    const ship = shipper({
      url: `http://127.0.0.1:${await closedPort()}`,
      maxBuffer: 100,
      batchSize: 50,
      flushIntervalMs: 5,
      // Also flush()'s deadline: with nothing reachable it resolves after this, without throwing.
      timeoutMs: 300,
      onDrop: (count, reason) => {
        drops[reason] += count;
      },
      onStatusChange: (status) => statuses.push(status),
    });
    const logger = pino({ level: 'info' }, ship);
    for (let i = 0; i < 10_000; i++) logger.info({ event: 'task_completed', i }, 'done');
    // Nothing was sent, so everything past the buffer was dropped right away.
    expect(ship.dropped()).toBe(9_900);
    expect(drops.buffer_full).toBe(9_900);
    await waitFor(() => statuses.includes('down'));
    await ship.flush();
    await ship.close();
    expect(ship.sent()).toBe(0);
    expect(ship.dropped()).toBe(10_000);
    expect(drops).toEqual({ buffer_full: 9_900, rejected: 0, closed: 100 });
  });

  it('recovers when the collector comes up', async () => {
    const port = await closedPort();
    const statuses: string[] = [];
    const ship = shipper({
      url: `http://127.0.0.1:${port}`,
      batchSize: 5,
      flushIntervalMs: 5,
      onStatusChange: (status) => statuses.push(status),
    });
    for (let seq = 0; seq < 20; seq++) ship.write(line({ seq }));
    await waitFor(() => statuses.includes('down'));
    expect(ship.sent()).toBe(0);

    const target = await collector({ port });
    for (let seq = 20; seq < 40; seq++) ship.write(line({ seq }));
    await waitFor(() => ship.sent() === 40);
    expect(ship.dropped()).toBe(0);
    expect(statuses).toEqual(['down', 'up']);
    await target.close();
    expect((await readRecords(target.file)).map((record) => record.seq)).toEqual(
      Array.from({ length: 40 }, (_, i) => i),
    );
  });

  it('backs off on 503 and delivers once the collector has room', async () => {
    // The collector never writes on its own, so its buffer stays full until the test flushes it.
    const target = await collector({ maxBufferRecords: 20, flushIntervalMs: 60_000 });
    const ship = shipper({ url: target.url, batchSize: 10, flushIntervalMs: 5 });
    for (let seq = 0; seq < 30; seq++) ship.write(line({ seq }));
    await waitFor(() => target.stats().throttled >= 2);
    expect(ship.sent()).toBe(20);
    await target.flush();
    await waitFor(() => ship.sent() === 30);
    expect(ship.dropped()).toBe(0);
    await target.close();
    expect((await readRecords(target.file)).map((record) => record.seq)).toEqual(
      Array.from({ length: 30 }, (_, i) => i),
    );
  });

  it('drops a batch the collector refuses as bad input, and goes on', async () => {
    const target = await collector({ maxBodyBytes: 512 });
    const drops: DropReason[] = [];
    const ship = shipper({ url: target.url, batchSize: 1, onDrop: (_count, reason) => drops.push(reason) });
    ship.write(line({ pad: 'x'.repeat(1000) }));
    ship.write(line({ small: true }));
    await ship.flush();
    expect(drops).toEqual(['rejected']);
    expect([ship.sent(), ship.dropped()]).toEqual([1, 1]);
  });

  it('close() gives up within its deadline when the collector is gone', async () => {
    const ship = shipper({ url: `http://127.0.0.1:${await closedPort()}`, closeTimeoutMs: 200 });
    ship.write(line({ a: 1 }));
    await ship.close();
    expect(ship.dropped()).toBe(1);
  });

  it('throws at once on a bad URL', () => {
    expect(() => createLogShipper({ url: 'not a url' })).toThrow(/url/);
    expect(() => createLogShipper({ url: 'ws://127.0.0.1:1' })).toThrow(/http/);
    expect(() => createLogShipper({ url: 'http://127.0.0.1:1', batchSize: 0 })).toThrow(/batchSize/);
  });
});
