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
 * Limits read from files are capped at `options.maxLengthCap` (default 512).
 */
export async function loadTokenizer(file: string, options: TokenizerOptions = {}): Promise<Tokenizer> {
  let jsonPath = file;
  if ((await stat(file)).isDirectory()) jsonPath = path.join(file, 'tokenizer.json');
  const dir = path.dirname(jsonPath);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
    throw new TokenizerError(`${jsonPath}: not valid JSON (${(err as Error).message})`);
  }
  const modelMaxLength =
    options.modelMaxLength ?? (await sideLimit(path.join(dir, 'tokenizer_config.json'), 'model_max_length'));
  const maxSeqLength =
    options.maxSeqLength ?? (await sideLimit(path.join(dir, 'sentence_bert_config.json'), 'max_seq_length'));
  return Tokenizer.fromJSON(json, { ...options, modelMaxLength, maxSeqLength });
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
