import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { DISPATCHER_ERRORS, ENV_VARS } from '@smart-routing/dispatcher';
import { WORKER_ENV } from '@smart-routing/worker';

const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
const ci = await readFile(new URL('../../.ci/run', import.meta.url), 'utf8');

describe('README', () => {
  it('lists every dispatcher error code with its status', () => {
    for (const [code, { status }] of Object.entries(DISPATCHER_ERRORS)) {
      expect(readme, code).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
    }
  });

  it('documents every environment variable the dispatcher and the worker read', () => {
    for (const name of [...ENV_VARS, ...Object.values(WORKER_ENV)])
      expect(readme, name).toContain(`\`${name}\``);
  });

  it('shows the two quick-start commands, and CI runs the test command it shows', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
    expect(ci).toMatch(/^npm test$/m);
  });

  it('has no unfilled result placeholders', () => {
    // A placeholder is a whole word such as `SIM_RESULTS`; a setting like `PENDING_RESULTS_MAX` is not one.
    expect(readme).not.toMatch(/\b[A-Z]+_RESULTS\b/);
  });
});
