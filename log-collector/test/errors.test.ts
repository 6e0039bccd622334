import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { COLLECTOR_ERRORS, CollectorError } from '../src/errors.js';

describe('COLLECTOR_ERRORS', () => {
  it('lists every code with its status in the README', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    for (const [code, { status }] of Object.entries(COLLECTOR_ERRORS)) {
      // Table row `| code | status | ...`, whatever padding the formatter gives the columns.
      expect(readme, code).toMatch(new RegExp(`\\| \`${code}\` +\\| ${status} +\\|`));
    }
  });

  it('builds the JSON body from the catalog', () => {
    const err = new CollectorError('buffer_full', 'detail');
    expect(err.status).toBe(503);
    expect(err.toBody()).toEqual({
      error: { code: 'buffer_full', message: 'the collector buffer is full; retry later: detail' },
    });
  });
});
