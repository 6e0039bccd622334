import { describe, expect, it } from 'vitest';
import { CatalogError, defineErrorCatalog } from '../src/error-catalog.js';

const ROWS = {
  bad_input: { status: 400, message: 'the input is bad' },
  busy: { status: 503, message: 'busy; retry later' },
} as const;
type Code = keyof typeof ROWS;

const APPEND = defineErrorCatalog(ROWS);
const REPLACE = defineErrorCatalog(ROWS, { detail: 'replace' });

class AppendError extends CatalogError<Code> {
  constructor(code: Code, detail?: string, retryAfterS?: number) {
    super(APPEND, code, detail, { retryAfterS });
  }
}
class ReplaceError extends CatalogError<Code> {
  constructor(code: Code, detail?: string) {
    super(REPLACE, code, detail);
  }
}

describe('defineErrorCatalog', () => {
  it('keeps the rows and their order, frozen', () => {
    expect(APPEND.codes).toEqual(['bad_input', 'busy']);
    expect(APPEND.entries.busy).toEqual({ status: 503, message: 'busy; retry later' });
    expect(Object.isFrozen(APPEND.entries)).toBe(true);
  });

  it('appends or replaces with a detail', () => {
    expect(APPEND.message('bad_input')).toBe('the input is bad');
    expect(APPEND.message('bad_input', 'no id')).toBe('the input is bad: no id');
    expect(REPLACE.message('bad_input', 'no id')).toBe('no id');
    expect(REPLACE.message('bad_input')).toBe('the input is bad');
  });

  it('refuses a bad row at once', () => {
    expect(() => defineErrorCatalog({ ok: { status: 200, message: 'fine' } })).toThrow(/not 4xx or 5xx/);
    expect(() => defineErrorCatalog({ BadCode: { status: 400, message: 'x' } })).toThrow(/snake_case/);
    expect(() => defineErrorCatalog({ empty: { status: 400, message: '' } })).toThrow(/no message/);
  });
});

describe('CatalogError', () => {
  it('carries code, status, message and the {"error": {code, message}} body', () => {
    const err = new AppendError('busy', 'queue full', 3);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('AppendError');
    expect(err.status).toBe(503);
    expect(err.retryAfterS).toBe(3);
    expect(err.toBody()).toEqual({ error: { code: 'busy', message: 'busy; retry later: queue full' } });
    expect(new ReplaceError('bad_input', 'task_id: too long').toBody()).toEqual({
      error: { code: 'bad_input', message: 'task_id: too long' },
    });
    expect(new ReplaceError('bad_input').retryAfterS).toBeUndefined();
  });

  it('keeps the cause', () => {
    const cause = new Error('root');
    expect(new CatalogError(APPEND, 'bad_input', undefined, { cause }).cause).toBe(cause);
  });
});
