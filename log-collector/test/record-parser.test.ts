import { describe, expect, it } from 'vitest';
import { CollectorError } from '../src/errors.js';
import { ingestFormat, parseIngestBody } from '../src/record-parser.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof CollectorError ? err.code : 'not a CollectorError';
  }
  return undefined;
}

describe('ingestFormat', () => {
  it('maps content types', () => {
    expect(ingestFormat('application/json')).toBe('json');
    expect(ingestFormat('Application/JSON; charset=utf-8')).toBe('json');
    expect(ingestFormat('application/x-ndjson')).toBe('ndjson');
    expect(ingestFormat('application/jsonl')).toBe('ndjson');
    expect(ingestFormat('text/plain')).toBeUndefined();
    expect(ingestFormat(undefined)).toBeUndefined();
  });
});

describe('parseIngestBody', () => {
  it('stamps each record of a JSON array with received_at, in order', () => {
    const lines = parseIngestBody('[{"a":1},{"b":{"c":2}}]', 'json', 42);
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      { a: 1, received_at: 42 },
      { b: { c: 2 }, received_at: 42 },
    ]);
  });

  it('reads NDJSON, skipping blank lines and CRLF', () => {
    const lines = parseIngestBody('{"a":1}\r\n\n  \n{"a":2}\n', 'ndjson', 7);
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      { a: 1, received_at: 7 },
      { a: 2, received_at: 7 },
    ]);
  });

  it('accepts empty batches', () => {
    expect(parseIngestBody('[]', 'json', 1)).toEqual([]);
    expect(parseIngestBody('', 'ndjson', 1)).toEqual([]);
  });

  it('rejects bad JSON and non-objects with a coded error', () => {
    expect(codeOf(() => parseIngestBody('[{"a":1}', 'json', 1))).toBe('invalid_json');
    expect(codeOf(() => parseIngestBody('{"a":1}', 'json', 1))).toBe('invalid_json');
    expect(codeOf(() => parseIngestBody('[{"a":1}, 3]', 'json', 1))).toBe('invalid_record');
    expect(codeOf(() => parseIngestBody('[null]', 'json', 1))).toBe('invalid_record');
    expect(codeOf(() => parseIngestBody('{"a":1}\nnope\n', 'ndjson', 1))).toBe('invalid_json');
    expect(codeOf(() => parseIngestBody('{"a":1}\n[1]\n', 'ndjson', 1))).toBe('invalid_record');
  });

  it('names the offending line', () => {
    expect(() => parseIngestBody('{"a":1}\n"x"\n', 'ndjson', 1)).toThrow(/line 2 is not an object/);
  });
});
