import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/tokenizer/load.js';

/**
 * The worker's tokenizer against Hugging Face's Python `tokenizers` (the Rust crate) on real
 * tokenizer.json files: one per model family (WordPiece, byte-level BPE, SentencePiece Unigram).
 * The files and where each was taken from, and the ids Python produced for them, are in
 * fixtures/tokenizers/ (reference-ids.json, written by generate-reference.py, which names the
 * Python `tokenizers` version it ran).
 */

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tokenizers');

interface Reference {
  python_tokenizers_version: string;
  tokenizers: Record<
    string,
    {
      family: string;
      source: string;
      max_length: number;
      texts: { text: string; ids: number[]; type_ids: number[] }[];
      batches: {
        texts: string[];
        input_ids: number[][];
        attention_mask: number[][];
        token_type_ids: number[][];
      }[];
    }
  >;
}

const reference = JSON.parse(readFileSync(path.join(FIXTURES, 'reference-ids.json'), 'utf8')) as Reference;

/** Rows of a flat [batch, seq] tensor, as plain numbers. */
function rows(data: BigInt64Array, seq: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < data.length; i += seq) out.push(Array.from(data.subarray(i, i + seq), Number));
  return out;
}

describe(`tokenizer ids = Python tokenizers ${reference.python_tokenizers_version}`, () => {
  it('covers WordPiece, byte-level BPE and Unigram', () => {
    expect(Object.keys(reference.tokenizers).sort()).toEqual([
      'all-distilroberta-v1',
      'all-minilm-l6-v2',
      'xlnet-base-cased',
    ]);
  });

  for (const [name, ref] of Object.entries(reference.tokenizers)) {
    describe(`${name}: ${ref.family}`, () => {
      let loaded: ReturnType<typeof loadTokenizer> | undefined;
      const tokenizer = () => (loaded ??= loadTokenizer(path.join(FIXTURES, name)));

      it('takes the sequence limit Python was given', async () => {
        expect((await tokenizer()).maxLength).toBe(ref.max_length);
      });

      for (const [i, c] of ref.texts.entries()) {
        it(`encodes text ${i} (${JSON.stringify(c.text.slice(0, 40))}, ${c.ids.length} tokens)`, async () => {
          const e = (await tokenizer()).encode(c.text);
          expect(e.ids).toEqual(c.ids);
          expect(e.typeIds).toEqual(c.type_ids);
        });
      }

      for (const [i, b] of ref.batches.entries()) {
        it(`pads batch ${i} (${b.texts.length} texts of different lengths)`, async () => {
          const batch = (await tokenizer()).encodeBatch(b.texts);
          const seq = b.input_ids[0]!.length;
          expect(batch.batchSize).toBe(b.texts.length);
          expect(batch.sequenceLength).toBe(seq);
          expect(rows(batch.inputIds, seq)).toEqual(b.input_ids);
          expect(rows(batch.attentionMask, seq)).toEqual(b.attention_mask);
          expect(rows(batch.tokenTypeIds, seq)).toEqual(b.token_type_ids);
          expect(batch.lengths).toEqual(b.attention_mask.map((r) => r.reduce((n, v) => n + v, 0)));
        });
      }
    });
  }
});
