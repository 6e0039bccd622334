import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedModelServer, type EmbeddedModelServer } from '../../src/model-server/index.js';
import { alive, call, embedRequest, makeRepository, memoryLogger, waitFor } from './helpers.js';

// Spawns the built bin (dist/model-server/cli.js): run `npx tsc -b worker` first.

let repo: { dir: string; remove(): Promise<void> };
let server: EmbeddedModelServer | undefined;

beforeAll(async () => {
  repo = await makeRepository(1);
});
afterEach(async () => {
  await server?.close();
  server = undefined;
});
afterAll(async () => {
  await repo.remove();
});

describe('startEmbeddedModelServer', () => {
  it('starts a child on a loopback port that serves the repository, and forwards its logs', async () => {
    const mem = memoryLogger();
    server = await startEmbeddedModelServer({ repository: repo.dir, logger: mem.logger });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.pid).toBeGreaterThan(0);
    expect(alive(server.pid!)).toBe(true);
    expect((await call(server.url, 'GET', '/v2/health/ready')).status).toBe(200);
    expect((await call(server.url, 'POST', '/v2/repository/models/label-1/load')).status).toBe(200);
    expect((await call(server.url, 'POST', '/v2/models/label-1/infer', embedRequest([[3]]))).status).toBe(
      200,
    );
    await waitFor(() => mem.records.some((r) => r.event === 'model_loaded'));
    const loaded = mem.records.find((r) => r.event === 'model_loaded')!;
    expect(loaded.model_server_pid).toBe(server.pid);
    expect(loaded.level).toBe(30);
  });

  it('restarts the child after it is killed and emits restart with the new url', async () => {
    const mem = memoryLogger();
    server = await startEmbeddedModelServer({ repository: repo.dir, logger: mem.logger, restartDelayMs: 50 });
    const firstPid = server.pid!;
    await call(server.url, 'POST', '/v2/repository/models/label-1/load');
    const restarted = once(server, 'restart') as Promise<[{ url: string; pid: number }]>;
    process.kill(firstPid, 'SIGKILL');
    const [info] = await restarted;
    expect(info.pid).not.toBe(firstPid);
    expect(info.pid).toBe(server.pid);
    expect(info.url).toBe(server.url);
    expect(alive(firstPid)).toBe(false);
    expect((await call(server.url, 'GET', '/v2/health/ready')).status).toBe(200);
    // The replacement starts empty: the label must be loaded again.
    expect((await call(server.url, 'POST', '/v2/repository/index', { ready: true })).body).toEqual([]);
    expect(mem.records.some((r) => r.event === 'model_server_exited' && r.signal === 'SIGKILL')).toBe(true);
  });

  it('close() stops the child, leaves no process and is safe to call twice', async () => {
    server = await startEmbeddedModelServer({ repository: repo.dir, logger: memoryLogger().logger });
    const pid = server.pid!;
    const restarts: unknown[] = [];
    server.on('restart', (i) => restarts.push(i));
    await Promise.all([server.close(), server.close()]);
    await server.close();
    expect(alive(pid)).toBe(false);
    expect(server.pid).toBeUndefined();
    await new Promise((r) => setTimeout(r, 300));
    expect(restarts).toEqual([]);
  });

  it('rejects when the child cannot start, leaving no process', async () => {
    await expect(
      startEmbeddedModelServer({
        repository: repo.dir,
        logger: memoryLogger().logger,
        env: { LOG_LEVEL: 'not-a-level' },
      }),
    ).rejects.toThrow(/exited before it was ready/);
  });
});
