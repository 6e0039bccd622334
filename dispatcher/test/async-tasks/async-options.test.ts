import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  ASYNC_ENV_VARS,
  asyncTaskEnv,
  resolveAsyncTaskOptions,
} from '../../src/async-tasks/async-options.js';
import { signCallback } from '../../src/async-tasks/callbacks.js';

describe('asyncTaskEnv', () => {
  it('reads the variables it names and leaves the rest to the defaults', () => {
    const options = asyncTaskEnv({
      CALLBACK_ATTEMPTS: '3',
      PERSIST_SYNC_TASKS: 'false',
      CALLBACK_SECRET: 's',
    });
    expect(options).toEqual({ callbackAttempts: 3, persistSyncResults: false, callbackSecret: 's' });
    const resolved = resolveAsyncTaskOptions(options);
    expect(resolved.resultTtlS).toBe(86_400);
    expect(resolved.maxResults).toBe(100_000);
    expect(Object.isFrozen(resolved)).toBe(true);
  });

  it('names the variable at fault', () => {
    expect(() => asyncTaskEnv({ CALLBACK_ATTEMPTS: '0' })).toThrow(/CALLBACK_ATTEMPTS/);
    expect(() => asyncTaskEnv({ PERSIST_SYNC_TASKS: 'maybe' })).toThrow(/PERSIST_SYNC_TASKS/);
    expect(() => resolveAsyncTaskOptions({ maxAdmitted: 0 })).toThrow(/maxAdmitted/);
  });

  it('is documented in the README, with TASK_STORE', async () => {
    const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const name of [...ASYNC_ENV_VARS, 'TASK_STORE']) expect(readme, name).toContain(`\`${name}\``);
  });
});

describe('signCallback', () => {
  it('matches an HMAC-SHA256 computed by Python\'s hmac module over "<t>.<body>"', () => {
    const body = '{"task_id":"t1","status":"completed"}';
    // An implementation we did not write: CPython's hmac + hashlib.
    const python = execFileSync('python3', [
      '-c',
      'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())',
      'callback-secret',
      `1700000000.${body}`,
    ])
      .toString()
      .trim();
    expect(signCallback('callback-secret', 1700000000, body)).toBe(`t=1700000000,v1=${python}`);
  });
});
