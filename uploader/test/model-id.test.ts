import { describe, expect, it } from 'vitest';
import { UploaderError } from '../src/errors.js';
import { modelNameFromId, validateModelId, validateRevision } from '../src/model-id.js';

describe('modelNameFromId', () => {
  it('turns owner/name into owner--name', () => {
    expect(modelNameFromId('sentence-transformers/all-MiniLM-L6-v2')).toBe(
      'sentence-transformers--all-MiniLM-L6-v2',
    );
    expect(modelNameFromId('gpt2')).toBe('gpt2');
    expect(modelNameFromId('BAAI/bge-small-en-v1.5')).toBe('BAAI--bge-small-en-v1.5');
  });
});

describe('validateModelId', () => {
  it.each([
    '',
    '.',
    '..',
    '../x',
    'a/..',
    'a/../b',
    'a/b/c',
    '_x',
    '-x',
    '.x',
    'a b',
    'a/b c',
    'a\\b',
    'a/',
    '/a',
    'é/x',
  ])('rejects %j with invalid_model_id', (id) => {
    expect(() => validateModelId(id)).toThrow(UploaderError);
    try {
      validateModelId(id);
    } catch (err) {
      expect((err as UploaderError).code).toBe('invalid_model_id');
      expect((err as UploaderError).status).toBe(400);
    }
  });

  it('accepts hub-style ids', () => {
    for (const id of ['a', 'org/model', 'Org_1/model.v2-x', 'x/_private', '0/1'])
      expect(validateModelId(id)).toBe(id);
  });
});

describe('validateRevision', () => {
  it('accepts branches, tags, commits and PR refs, rejects traversal', () => {
    for (const rev of ['main', 'v1.0', 'refs/pr/1', 'a'.repeat(40)]) expect(validateRevision(rev)).toBe(rev);
    for (const rev of ['', '..', 'a/../b', '/main', 'main/', 'a b'])
      expect(() => validateRevision(rev)).toThrow(UploaderError);
  });
});
