import { decodeWorkerMessage, encodeWorkerMessage, TASK_ERROR_TABLE } from '@smart-routing/proto';
import { describe, expect, it } from 'vitest';
import { TASK_ERRORS, TaskError, TimeoutError, withTimeout } from '../src/errors.js';

describe('TASK_ERRORS', () => {
  // The codes themselves are typed; what types cannot show is that each survives the wire.
  it('every worker code reaches the dispatcher as itself, with its catalog message', () => {
    for (const code of Object.keys(TASK_ERRORS) as (keyof typeof TASK_ERRORS)[]) {
      const err = new TaskError(code);
      const frame = decodeWorkerMessage(
        encodeWorkerMessage({ taskResult: { taskId: 't', error: { code: err.code, message: err.message } } }),
      );
      expect(frame.body === 'taskResult' && frame.taskResult.error).toEqual({
        code,
        message: TASK_ERRORS[code].message,
      });
      expect(TASK_ERRORS[code].status).toBe(TASK_ERROR_TABLE[code].status);
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
