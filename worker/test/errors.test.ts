import { readFile } from 'node:fs/promises';
import { PROTO_PATH } from '@smart-routing/proto';
import { describe, expect, it } from 'vitest';
import { TASK_ERRORS, TaskError, TimeoutError, withTimeout } from '../src/errors.js';

describe('TASK_ERRORS', () => {
  it('has every TaskErrorCode of the proto but unspecified, each with a status and message', async () => {
    const proto = await readFile(PROTO_PATH, 'utf8');
    const codes = [...proto.matchAll(/TASK_ERROR_CODE_([A-Z_]+) = \d+;/g)]
      .map((m) => m[1]!.toLowerCase())
      .filter((c) => c !== 'unspecified');
    expect(Object.keys(TASK_ERRORS).sort()).toEqual(codes.sort());
    for (const e of Object.values(TASK_ERRORS)) {
      expect(e.status).toBeGreaterThanOrEqual(400);
      expect(e.message.length).toBeGreaterThan(0);
    }
  });

  it('TaskError defaults to the catalog message', () => {
    expect(new TaskError('no_slot').message).toBe(TASK_ERRORS.no_slot.message);
    expect(new TaskError('bad_parameters', 'x').code).toBe('bad_parameters');
  });
});

describe('withTimeout', () => {
  it('resolves in time and rejects with TimeoutError past the limit, aborting the signal', async () => {
    expect(await withTimeout('fast', 1000, async () => 5)).toBe(5);
    let aborted = false;
    const err = await withTimeout('slow thing', 20, (signal) => {
      signal.addEventListener('abort', () => (aborted = true));
      return new Promise(() => undefined);
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toBe('slow thing timed out after 20 ms');
    expect(aborted).toBe(true);
  });
});
