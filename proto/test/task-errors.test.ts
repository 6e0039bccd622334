import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { PROTO_PATH, TASK_ERROR_TABLE, taskErrorRule, type TaskErrorCode } from '@smart-routing/proto';

const codes = Object.keys(TASK_ERROR_TABLE) as TaskErrorCode[];

describe('TASK_ERROR_TABLE', () => {
  it('has a rule for every TaskErrorCode value in the .proto, and nothing else', async () => {
    const proto = await readFile(PROTO_PATH, 'utf8');
    const declared = [...proto.matchAll(/TASK_ERROR_CODE_([A-Z_]+) = \d+;/g)].map((m) => m[1]!.toLowerCase());
    expect(declared.length).toBeGreaterThan(5);
    expect([...codes].sort()).toEqual([...declared].sort());
  });

  it('never re-routes a task that may have run, and fails or retries only where the code allows', () => {
    for (const code of codes) {
      const rule = TASK_ERROR_TABLE[code];
      if (rule.retry !== 'fail') expect(rule.ran, code).toBe(false);
      expect(rule.status, code).toBeGreaterThanOrEqual(400);
      expect(rule.status, code).toBeLessThan(600);
      expect(rule.message.length, code).toBeGreaterThan(0);
    }
    // Exactly the codes the worker documents as safe to retry elsewhere.
    expect(codes.filter((c) => TASK_ERROR_TABLE[c].retry !== 'fail').sort()).toEqual(
      ['draining', 'label_load_failed', 'model_server_unavailable', 'no_slot', 'stale_leader'].sort(),
    );
  });

  it('pins the answers both sides agreed on', () => {
    // Regression (issue 9): model_server_unavailable was 503 on the worker side, 502 worker_error for the producer.
    expect(TASK_ERROR_TABLE.model_server_unavailable).toMatchObject({
      status: 503,
      producerCode: 'model_server_unavailable',
      retry: 'next_attempt',
      worker: 'blocked',
    });
    expect(TASK_ERROR_TABLE.label_load_failed).toMatchObject({
      status: 502,
      producerCode: 'worker_error',
      worker: 'label_failing',
    });
    expect(TASK_ERROR_TABLE.bad_parameters).toMatchObject({
      status: 400,
      producerCode: 'bad_parameters',
      ran: true,
    });
    expect(TASK_ERROR_TABLE.label_not_found).toMatchObject({ status: 404, producerCode: 'label_not_found' });
    expect(TASK_ERROR_TABLE.draining).toMatchObject({
      retry: 'reroute',
      worker: 'draining',
      logLevel: 'info',
    });
  });

  it('reads a code it does not know as unspecified', () => {
    expect(taskErrorRule('no_such_code' as TaskErrorCode)).toBe(TASK_ERROR_TABLE.unspecified);
    expect(taskErrorRule('no_slot')).toBe(TASK_ERROR_TABLE.no_slot);
  });
});
