import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DISPATCHER_ERRORS, DispatcherError } from '../src/errors.js';

describe('DISPATCHER_ERRORS', () => {
  it('gives every code an error status and a message', () => {
    for (const [code, entry] of Object.entries(DISPATCHER_ERRORS)) {
      expect(code).toMatch(/^[a-z_]+$/);
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.status).toBeLessThan(600);
      expect(entry.message.length).toBeGreaterThan(0);
    }
  });

  it('contains every code the sources raise', async () => {
    const dir = new URL('../src/', import.meta.url).pathname;
    const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.ts'));
    const used = new Set<string>();
    for (const file of files) {
      const text = await readFile(join(dir, file), 'utf8');
      for (const m of text.matchAll(/DispatcherError\(\s*'([a-z_]+)'/g)) used.add(m[1]!);
    }
    expect(used.size).toBeGreaterThan(10);
    for (const code of used) expect(Object.keys(DISPATCHER_ERRORS)).toContain(code);
  });

  it('builds the JSON error body', () => {
    const err = new DispatcherError('queue_full', undefined, 3);
    expect(err.status).toBe(503);
    expect(err.toBody()).toEqual({
      error: { code: 'queue_full', message: DISPATCHER_ERRORS.queue_full.message },
    });
    expect(new DispatcherError('invalid_request', 'task_id: too long').message).toBe('task_id: too long');
  });
});
