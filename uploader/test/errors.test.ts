import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { UPLOADER_ERRORS, UploaderError } from '../src/errors.js';

describe('UPLOADER_ERRORS', () => {
  it('gives every code a 4xx/5xx status and a message, and the README documents each', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    for (const [code, entry] of Object.entries(UPLOADER_ERRORS)) {
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.status).toBeLessThan(600);
      expect(entry.message.length).toBeGreaterThan(0);
      expect(readme, code).toContain(`\`${code}\``);
    }
  });

  it('builds the JSON body with the catalog message and detail', () => {
    const err = new UploaderError('model_exists', 'org--m');
    expect(err.status).toBe(409);
    expect(err.toBody()).toEqual({
      error: { code: 'model_exists', message: `${UPLOADER_ERRORS.model_exists.message}: org--m` },
    });
  });
});
