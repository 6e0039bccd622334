import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogShipper } from '../src/log-shipper.js';

// The shipper against a bare HTTP receiver; log-collector/test/shipper.test.ts runs it against the real collector.

interface Received {
  path: string;
  contentType: string | undefined;
  body: string;
}

async function receiver(status: number): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body });
      res.writeHead(status).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('createLogShipper', () => {
  it('posts buffered lines as NDJSON to <url>/ingest and counts them sent', async () => {
    const { server, url, received } = await receiver(200);
    servers.push(server);
    const shipper = createLogShipper({ url, flushIntervalMs: 1000 });
    shipper.write('{"a":1}\n');
    shipper.write('{"a":2}\n{"a":3}\n');
    await shipper.flush();
    expect(shipper.sent()).toBe(3);
    expect(received).toEqual([
      { path: '/ingest', contentType: 'application/x-ndjson', body: '{"a":1}\n{"a":2}\n{"a":3}\n' },
    ]);
    await shipper.close();
  });

  it('drops a batch the receiver refuses as bad input (4xx), counting why', async () => {
    const { server, url } = await receiver(400);
    servers.push(server);
    const reasons: string[] = [];
    const shipper = createLogShipper({ url, onDrop: (count, reason) => reasons.push(`${count} ${reason}`) });
    shipper.write('{"a":1}\n');
    await shipper.flush();
    expect(shipper.dropped()).toBe(1);
    expect(shipper.sent()).toBe(0);
    expect(reasons).toEqual(['1 rejected']);
    await shipper.close();
  });

  it('refuses bad options at once (caller misuse)', () => {
    expect(() => createLogShipper({ url: 'ftp://x' })).toThrow(/must be http/);
    expect(() => createLogShipper({ url: 'http://x', batchSize: 0 })).toThrow(/batchSize/);
  });
});
