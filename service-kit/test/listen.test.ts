import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent } from 'node:http';
import { describe, expect, it } from 'vitest';
import { advertisedHost, advertisedUrl, listen } from '../src/listen.js';

describe('advertisedHost', () => {
  it('shows loopback for wildcard binds and brackets IPv6', () => {
    expect(advertisedHost('0.0.0.0')).toBe('127.0.0.1');
    expect(advertisedHost('::')).toBe('127.0.0.1');
    expect(advertisedHost('')).toBe('127.0.0.1');
    expect(advertisedHost('::1')).toBe('[::1]');
    expect(advertisedHost('fe80::1')).toBe('[fe80::1]');
    expect(advertisedHost('10.1.2.3')).toBe('10.1.2.3');
    expect(advertisedHost('collector.local')).toBe('collector.local');
    expect(advertisedUrl('0.0.0.0', 8001)).toBe('http://127.0.0.1:8001');
    expect(advertisedUrl('::1', 9, 'https')).toBe('https://[::1]:9');
  });
});

describe('listen', () => {
  it('listens on a free port and advertises a URL that answers', async () => {
    const server = createServer((_req, res) => res.end('pong'));
    const http = await listen(server, { port: 0, host: '0.0.0.0' });
    try {
      expect(http.port).toBeGreaterThan(0);
      expect(http.url).toBe(`http://127.0.0.1:${http.port}`);
      expect(await (await fetch(http.url)).text()).toBe('pong');
    } finally {
      await http.close();
    }
    expect(server.listening).toBe(false);
  });

  it('rejects with the listen error and leaves no error listener behind', async () => {
    const first = await listen(createServer(), { port: 0, host: '127.0.0.1' });
    const second = createServer();
    await expect(listen(second, { port: first.port, host: '127.0.0.1' })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    expect(second.listenerCount('error')).toBe(0);
    await first.close();
  });

  it('close() is safe to call twice and returns the same promise', async () => {
    const http = await listen(createServer(), { port: 0, host: '127.0.0.1' });
    const a = http.close();
    const b = http.close();
    expect(b).toBe(a);
    await a;
  });

  it('closes idle keep-alive connections at once and cuts busy ones after the grace', async () => {
    let stuck!: ServerResponse;
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/stuck')
        stuck = res; // never answered
      else res.end('ok');
    });
    // A grace no test run reaches by chance: the stuck request must be cut by closeAllConnections.
    const http = await listen(server, { port: 0, host: '127.0.0.1', closeGraceMs: 50 });
    const agent = new Agent({ keepAlive: true });
    try {
      const idle = request({ port: http.port, host: '127.0.0.1', agent, path: '/' });
      idle.end();
      const [idleRes] = (await once(idle, 'response')) as [IncomingMessage];
      idleRes.resume();
      await once(idleRes, 'end');
      const idleSocket = idle.socket!;
      const busy = request({ port: http.port, host: '127.0.0.1', path: '/stuck' });
      const busyFailed = once(busy, 'error');
      busy.end();
      await once(server, 'request');
      await http.close();
      expect(idleSocket.destroyed || idleSocket.readyState === 'closed').toBe(true);
      const [err] = (await busyFailed) as [NodeJS.ErrnoException];
      expect(err.code).toBe('ECONNRESET');
      expect(stuck.writableEnded).toBe(false);
    } finally {
      agent.destroy();
    }
  });

  it('runs beforeCut after it stops accepting and before connections are cut', async () => {
    const order: string[] = [];
    const server = createServer((_req, res) => res.end('ok'));
    const http = await listen(server, {
      port: 0,
      host: '127.0.0.1',
      beforeCut: async () => {
        order.push(server.listening ? 'listening' : 'not listening');
        await new Promise((resolve) => setImmediate(resolve));
        order.push('before cut done');
      },
    });
    await http.close();
    order.push('closed');
    expect(order).toEqual(['not listening', 'before cut done', 'closed']);
  });
});
