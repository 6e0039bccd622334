import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BERT_SPECIAL_IDS,
  OnnxAttributeType,
  bertVocabulary,
  OnnxDataType,
  encodeOnnxModel,
  demoTokenizerJson,
  floatTensor,
  int64Tensor,
} from '@smart-routing/model-repo';

/**
 * A small sentence-transformers-like model for tests, reusable by other packages' tests:
 *
 *   input_ids [batch, seq] ──Gather(embeddings)──┐
 *   attention_mask [batch, seq] ──Cast──Unsqueeze──Mul──> last_hidden_state [batch, seq, hidden]
 *
 * so `last_hidden_state[b][s] = embeddings[input_ids[b][s]] * attention_mask[b][s]`, plus a WordPiece
 * `tokenizer.json` in BERT's vocabulary layout ([PAD]=0, [unused0..98], [UNK]=100, [CLS]=101,
 * [SEP]=102, [MASK]=103). With the returned embedding table a test computes expected sentence
 * embeddings independently: token ids -> rows -> mean over the mask -> L2 normalise.
 */

/** Options of {@link buildEmbeddingFixture}. */
export interface EmbeddingFixtureOptions {
  /** Embedding width, default 8. */
  hiddenSize?: number;
  /** PRNG seed for the embedding table, default 1. */
  seed?: number;
  /** Extra vocabulary after the built-in words, default none. */
  extraTokens?: string[];
  /** `model_max_length` in tokenizer_config.json, default 128. */
  maxLength?: number;
}

/** A generated model and tokenizer. */
export interface EmbeddingFixture {
  /** ONNX model bytes. */
  onnx: Uint8Array;
  /** tokenizer.json text. */
  tokenizerJson: string;
  /** tokenizer_config.json text. */
  tokenizerConfigJson: string;
  /** token -> id. */
  vocab: Map<string, number>;
  hiddenSize: number;
  /** Row-major [vocab size, hiddenSize] table the model gathers from. */
  embeddings: Float32Array;
  /** Row `id` of the table. */
  row(id: number): Float32Array;
}

/** Ids of BERT's special tokens in the fixture vocabulary. */
export const FIXTURE_SPECIAL_IDS = BERT_SPECIAL_IDS;

const WORDS = [
  'the',
  'a',
  'quick',
  'brown',
  'fox',
  'jumps',
  'over',
  'lazy',
  'dog',
  'hello',
  'world',
  'cat',
  'sat',
  'on',
  'mat',
  'token',
  'model',
  'upload',
  'embed',
  '##ding',
  '##izer',
  '##s',
  '##ed',
  '##ing',
];

function fixtureVocabulary(extra: string[]): Map<string, number> {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  return bertVocabulary([...("!,.?'-" + letters), ...WORDS, ...[...letters].map((c) => `##${c}`), ...extra]);
}

// mulberry32: small, seedable, identical everywhere.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The same WordPiece tokenizer.json layout the demo models ship (BERT special ids). */
function tokenizerJson(vocab: Map<string, number>): string {
  return JSON.stringify(demoTokenizerJson(vocab));
}

/** Builds the model bytes, tokenizer files and embedding table in memory. */
export function buildEmbeddingFixture(options: EmbeddingFixtureOptions = {}): EmbeddingFixture {
  const hiddenSize = options.hiddenSize ?? 8;
  const vocab = fixtureVocabulary(options.extraTokens ?? []);
  const rand = prng(options.seed ?? 1);
  const embeddings = new Float32Array(vocab.size * hiddenSize);
  for (let i = 0; i < embeddings.length; i++) embeddings[i] = rand() * 2 - 1;
  const onnx = encodeOnnxModel({
    name: 'fixture-embedding',
    node: [
      { opType: 'Gather', input: ['embeddings', 'input_ids'], output: ['gathered'], name: 'gather' },
      {
        opType: 'Cast',
        input: ['attention_mask'],
        output: ['mask_float'],
        name: 'cast',
        attribute: [{ name: 'to', type: OnnxAttributeType.INT, i: OnnxDataType.FLOAT }],
      },
      {
        opType: 'Unsqueeze',
        input: ['mask_float', 'unsqueeze_axes'],
        output: ['mask_3d'],
        name: 'unsqueeze',
      },
      { opType: 'Mul', input: ['gathered', 'mask_3d'], output: ['last_hidden_state'], name: 'mask' },
    ],
    initializer: [
      floatTensor('embeddings', [vocab.size, hiddenSize], embeddings),
      int64Tensor('unsqueeze_axes', [1], BigInt64Array.from([-1n])),
    ],
    input: [
      { name: 'input_ids', elemType: OnnxDataType.INT64, dims: ['batch_size', 'sequence_length'] },
      { name: 'attention_mask', elemType: OnnxDataType.INT64, dims: ['batch_size', 'sequence_length'] },
    ],
    output: [
      {
        name: 'last_hidden_state',
        elemType: OnnxDataType.FLOAT,
        dims: ['batch_size', 'sequence_length', hiddenSize],
      },
    ],
  });
  const tokenizerConfigJson = JSON.stringify({
    do_lower_case: true,
    model_max_length: options.maxLength ?? 128,
    cls_token: '[CLS]',
    sep_token: '[SEP]',
    pad_token: '[PAD]',
    unk_token: '[UNK]',
    mask_token: '[MASK]',
    tokenizer_class: 'BertTokenizer',
  });
  return {
    onnx,
    tokenizerJson: tokenizerJson(vocab),
    tokenizerConfigJson,
    vocab,
    hiddenSize,
    embeddings,
    row: (id) => embeddings.slice(id * hiddenSize, (id + 1) * hiddenSize),
  };
}

/** Where {@link writeEmbeddingFixture} put the files. */
export interface WrittenEmbeddingFixture extends EmbeddingFixture {
  modelPath: string;
  tokenizerPath: string;
  tokenizerConfigPath: string;
}

/**
 * Writes a fixture into `dir`: `onnx/model.onnx` (layout `hub`, the default, as a
 * sentence-transformers ONNX export has it) or `model.onnx` (layout `flat`), plus `tokenizer.json`
 * and `tokenizer_config.json`.
 */
export async function writeEmbeddingFixture(
  dir: string,
  options: EmbeddingFixtureOptions & { layout?: 'hub' | 'flat' } = {},
): Promise<WrittenEmbeddingFixture> {
  const fixture = buildEmbeddingFixture(options);
  const modelPath = options.layout === 'flat' ? join(dir, 'model.onnx') : join(dir, 'onnx', 'model.onnx');
  await mkdir(join(modelPath, '..'), { recursive: true });
  await writeFile(modelPath, fixture.onnx);
  const tokenizerPath = join(dir, 'tokenizer.json');
  const tokenizerConfigPath = join(dir, 'tokenizer_config.json');
  await writeFile(tokenizerPath, fixture.tokenizerJson);
  await writeFile(tokenizerConfigPath, fixture.tokenizerConfigJson);
  return { ...fixture, modelPath, tokenizerPath, tokenizerConfigPath };
}

/**
 * The expected sentence embedding for token ids (with [CLS]/[SEP] already added): mean of the
 * rows, L2-normalised, as sentence-transformers' mean pooling + Normalize computes it.
 */
export function expectedEmbedding(fixture: EmbeddingFixture, ids: number[]): number[] {
  const sum = new Array<number>(fixture.hiddenSize).fill(0);
  for (const id of ids) {
    const r = fixture.row(id);
    for (let j = 0; j < fixture.hiddenSize; j++) sum[j]! += r[j]!;
  }
  const mean = sum.map((v) => v / ids.length);
  const norm = Math.sqrt(mean.reduce((s, v) => s + v * v, 0)) || 1;
  return mean.map((v) => v / norm);
}
