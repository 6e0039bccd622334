import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeWorkerMessage, encodeDispatcherMessage, PROTOCOL_VERSION } from '@smart-routing/proto';
import { startWorker, type WorkerHandle } from '../src/index.js';

describe('worker liveness towards the dispatcher', () => {
  let server: WebSocketServer | undefined;
  let worker: WorkerHandle | undefined;
  afterEach(async () => {
    await worker?.close();
    for (const c of server?.clients ?? []) c.terminate();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('cuts a link that went silent (no frames, no pongs) and reconnects with a new Hello', async () => {
    // A dispatcher that welcomes the worker and then never speaks again, not even pong.
    server = new WebSocketServer({ port: 0, host: '127.0.0.1', autoPong: false });
    await once(server, 'listening');
    const hellos: number[] = [];
    let secondHello!: () => void;
    const reconnected = new Promise<void>((resolve) => (secondHello = resolve));
    server.on('connection', (ws: WebSocket) => {
      ws.on('message', (data: Buffer) => {
        const msg = decodeWorkerMessage(data);
        if (msg.body !== 'hello') return;
        hellos.push(performance.now());
        if (hellos.length === 2) secondHello();
        ws.send(
          encodeDispatcherMessage({
            welcome: { protocolVersion: PROTOCOL_VERSION, heartbeatIntervalMs: 100 },
          }),
        );
      });
    });
    const { port } = server.address() as AddressInfo;
    worker = await startWorker({
      dispatcherUrl: `ws://127.0.0.1:${port}`,
      workerId: 'silent-test',
      tritonUrl: 'none',
      logger: pino({ level: 'silent' }),
      reconnectInitialMs: 50,
    });
    await reconnected;
    expect(hellos).toHaveLength(2);
    // Not before the silence limit (3 s, or three intervals when longer).
    expect(hellos[1]! - hellos[0]!).toBeGreaterThanOrEqual(2900);
  }, 20_000);
});
