import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer, type TokenizerOptions } from './tokenizer.js';
import { TokenizerError } from './tokenizer-error.js';

// transformers writes 1e30 ("VERY_LARGE_INTEGER") when a model has no limit.
const NO_LIMIT = 1_000_000;

/**
 * Loads a tokenizer from a `tokenizer.json` file, or from a directory holding one. The sequence
 * limit comes from, in order: `options.maxLength`; `sentence_bert_config.json` `max_seq_length`;
 * the file's own `truncation.max_length`; `tokenizer_config.json` `model_max_length`; else 512.
 * Limits read from files are capped at `options.maxLengthCap` (default 512). Throws
 * `TokenizerError` with `reason: 'missing'` when there is no `tokenizer.json`, `'invalid'` when it
 * cannot be used.
 */
export async function loadTokenizer(file: string, options: TokenizerOptions = {}): Promise<Tokenizer> {
  const jsonPath = (await isDirectory(file)) ? path.join(file, 'tokenizer.json') : file;
  const dir = path.dirname(jsonPath);
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new TokenizerError(
      missing ? `${jsonPath} does not exist` : `${jsonPath}: ${(err as Error).message}`,
      missing ? 'missing' : 'invalid',
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TokenizerError(`${jsonPath}: not valid JSON (${(err as Error).message})`);
  }
  const modelMaxLength =
    options.modelMaxLength ?? (await sideLimit(path.join(dir, 'tokenizer_config.json'), 'model_max_length'));
  const maxSeqLength =
    options.maxSeqLength ?? (await sideLimit(path.join(dir, 'sentence_bert_config.json'), 'max_seq_length'));
  return Tokenizer.fromJSON(json, { ...options, modelMaxLength, maxSeqLength });
}

async function isDirectory(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isDirectory();
  } catch {
    return false; // readFile reports the missing file
  }
}

/** A positive integer field of an optional side file; anything unusable counts as absent. */
async function sideLimit(file: string, key: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const value = (JSON.parse(text) as Record<string, unknown>)[key];
    return typeof value === 'number' && Number.isInteger(value) && value > 0 && value < NO_LIMIT
      ? value
      : undefined;
  } catch {
    return undefined;
  }
}
