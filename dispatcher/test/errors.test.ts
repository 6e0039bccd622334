import { readFile } from 'node:fs/promises';
import { TASK_ERROR_TABLE, type TaskErrorCode } from '@smart-routing/proto';
import { describe, expect, it } from 'vitest';
import { DISPATCHER_ERRORS, DispatcherError } from '../src/errors.js';
import { workerFailure } from '../src/task-tracker.js';

const taskCodes = Object.keys(TASK_ERROR_TABLE) as TaskErrorCode[];

describe('DISPATCHER_ERRORS', () => {
  it('gives every code an error status and a message', () => {
    for (const [code, entry] of Object.entries(DISPATCHER_ERRORS)) {
      expect(code).toMatch(/^[a-z_]+$/);
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.status).toBeLessThan(600);
      expect(entry.message.length).toBeGreaterThan(0);
    }
  });

  it('has each producer code of the task error table, with the status the table gives it', () => {
    for (const code of taskCodes) {
      const rule = TASK_ERROR_TABLE[code];
      expect(DISPATCHER_ERRORS[rule.producerCode].status, code).toBe(rule.status);
    }
  });

  it('builds the JSON error body', () => {
    const err = new DispatcherError('queue_full', undefined, 3);
    expect(err.status).toBe(503);
    expect(err.retryAfterS).toBe(3);
    expect(err.toBody()).toEqual({
      error: { code: 'queue_full', message: DISPATCHER_ERRORS.queue_full.message },
    });
    expect(new DispatcherError('invalid_request', 'task_id: too long').message).toBe('task_id: too long');
  });
});

describe('workerFailure', () => {
  it('answers with the table’s producer code and status, naming the worker', () => {
    const same = workerFailure('bad_parameters', 'texts missing', 'w1');
    expect([same.code, same.status, same.message]).toEqual([
      'bad_parameters',
      400,
      'texts missing (worker w1)',
    ]);
    const mapped = workerFailure('inference_failed', 'shape mismatch', 'w2');
    expect([mapped.code, mapped.status, mapped.message]).toEqual([
      'worker_error',
      502,
      'inference_failed: shape mismatch (worker w2)',
    ]);
    // Regression (issue 9): 503 with a Retry-After, as the worker's side always said, not 502 worker_error.
    const down = workerFailure('model_server_unavailable', '', 'w3');
    expect([down.code, down.status, down.retryAfterS]).toEqual(['model_server_unavailable', 503, 5]);
    expect(workerFailure('label_not_found', '', 'w4').message).toBe(
      DISPATCHER_ERRORS.label_not_found.message,
    );
  });
});

describe('README error tables', () => {
  it('lists every task error code with what it means for the task and the producer', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const retried = {
      fail: 'no',
      reroute: 'yes, as the same attempt',
      next_attempt: 'yes, as the next attempt',
    };
    for (const code of taskCodes) {
      const r = TASK_ERROR_TABLE[code];
      const row = `| \`${code}\` | ${r.ran ? 'yes' : 'no'} | ${retried[r.retry]} | ${r.status} \`${r.producerCode}\` |`;
      expect(readme, code).toContain(row);
    }
  });
});
