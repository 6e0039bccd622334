import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { demoTokenizerConfig, demoTokenizerJson, demoVocabulary } from './demo-tokenizer.js';
import { formatModelConfig, type ModelConfig } from './model-config.js';
import { OnnxDataType, encodeOnnxModel, floatTensor } from './onnx.js';
import { CONFIG_FILE, MODEL_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, modelPaths } from './repository.js';

/**
 * Demo embedding models `label-1` ... `label-N`: Gather(E[V, H], input_ids) -> last_hidden_state
 * [batch, seq, H], with inputs `input_ids` and `attention_mask` like a sentence-transformers export
 * (the mask is declared but unused by the graph). E is sized so that loading the model costs real
 * time; rows past the tokenizer's vocabulary are simply never looked up.
 */

/**
 * Default size of the embedding table in MiB, for a load of ~0.5 s. Measured on this 2-core
 * machine (ORT 1.30, H=384, file in page cache). InferenceSession.create alone, 3 runs each:
 * 64 MiB 0.18-0.27 s, 128 MiB 0.21-0.34 s, 192 MiB 0.40-0.76 s, 256 MiB 0.53-1.33 s. Through the
 * embedded model server's load endpoint (thread start included), with other jobs on the CPUs:
 * 128 MiB 0.27-0.40 s, 192 MiB 0.45-1.2 s.
 */
export const DEFAULT_DEMO_SIZE_MB = 192;
/** Default hidden size (all-MiniLM-L6-v2's). */
export const DEFAULT_DEMO_HIDDEN_SIZE = 384;
/** Default number of demo models. */
export const DEFAULT_DEMO_COUNT = 5;
/** Default PRNG seed; label i uses a seed derived from it and i. */
export const DEFAULT_DEMO_SEED = 42;
/** max_batch_size written to the demo configs. */
export const DEMO_MAX_BATCH_SIZE = 8;

/** Options of `generateDemoModels`. */
export interface DemoModelOptions {
  /** Repository folder; created if missing. */
  dir: string;
  /** Number of models, `label-1` ... `label-<count>`. Default 5. */
  count?: number;
  /** Size of each model's embedding table in MiB (2^20 bytes). Default `DEFAULT_DEMO_SIZE_MB`. */
  sizeMb?: number;
  /**
   * Heterogeneous sizes: model i gets `sizesMb[(i - 1) % sizesMb.length]` MiB (so load times and
   * footprints differ), instead of `sizeMb` for all. Default unset (every model `sizeMb`).
   */
  sizesMb?: readonly number[];
  /** Embedding width H. Default 384. */
  hiddenSize?: number;
  /** Base seed of the weights; the same seed writes the same files. Default 42. */
  seed?: number;
  /** Replace models that already exist. Default false (existing models are kept). */
  overwrite?: boolean;
  /** Called after each model with what was done to it. */
  onModel?: (event: { name: string; status: 'written' | 'kept'; bytes: number; ms: number }) => void;
}

/** Name of demo model i (1-based). */
export function demoModelName(i: number): string {
  return `label-${i}`;
}

/** Vocabulary rows V for a table of `sizeMb` MiB with `hiddenSize` columns (at least the tokenizer's). */
export function demoVocabSize(
  sizeMb: number,
  hiddenSize: number,
  tokenizerSize = demoVocabulary().size,
): number {
  return Math.max(tokenizerSize, Math.floor((sizeMb * 1024 * 1024) / (hiddenSize * 4)));
}

/** The Triton config of a demo model. */
export function demoModelConfig(name: string, hiddenSize: number): ModelConfig {
  return {
    name,
    platform: 'onnxruntime_onnx',
    maxBatchSize: DEMO_MAX_BATCH_SIZE,
    input: [
      { name: 'input_ids', dataType: 'TYPE_INT64', dims: [-1] },
      { name: 'attention_mask', dataType: 'TYPE_INT64', dims: [-1] },
    ],
    output: [{ name: 'last_hidden_state', dataType: 'TYPE_FP32', dims: [-1, hiddenSize] }],
  };
}

/**
 * Fills `out` with uniform values in [-1, 1) from xorshift32 seeded with `seed`. One tight loop:
 * hundreds of MiB take well under a second.
 */
export function fillDemoWeights(out: Float32Array, seed: number): void {
  // Mix the seed (splitmix-like) so nearby seeds give unrelated streams; xorshift needs x != 0.
  let x = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  if (x === 0) x = 0x6d2b79f5;
  const scale = 2 / 4294967296;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) * scale - 1;
  }
}

/** Seed of demo model i derived from the base seed. */
export function demoModelSeed(seed: number, i: number): number {
  return (Math.imul(seed, 1000003) + i * 7919) | 0;
}

/** The ONNX bytes of one demo model. */
export function encodeDemoModel(options: {
  vocabSize: number;
  hiddenSize: number;
  seed: number;
}): Uint8Array {
  const { vocabSize, hiddenSize, seed } = options;
  const table = new Float32Array(vocabSize * hiddenSize);
  fillDemoWeights(table, seed);
  return encodeOnnxModel({
    name: 'demo_embedding',
    node: [
      { opType: 'Gather', input: ['embeddings', 'input_ids'], output: ['last_hidden_state'], name: 'lookup' },
    ],
    initializer: [floatTensor('embeddings', [vocabSize, hiddenSize], table)],
    input: [
      { name: 'input_ids', elemType: OnnxDataType.INT64, dims: ['batch', 'seq'] },
      { name: 'attention_mask', elemType: OnnxDataType.INT64, dims: ['batch', 'seq'] },
    ],
    output: [{ name: 'last_hidden_state', elemType: OnnxDataType.FLOAT, dims: ['batch', 'seq', hiddenSize] }],
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes `label-1` ... `label-<count>` into `dir` (config.pbtxt, 1/model.onnx, tokenizer.json,
 * tokenizer_config.json). Each model is written into a hidden temp folder and renamed into place,
 * so readers never see half a model. Existing complete models are kept unless `overwrite`.
 * @returns the model names, in order, whether written or kept.
 */
export async function generateDemoModels(options: DemoModelOptions): Promise<string[]> {
  const count = options.count ?? DEFAULT_DEMO_COUNT;
  const sizeMb = options.sizeMb ?? DEFAULT_DEMO_SIZE_MB;
  const hiddenSize = options.hiddenSize ?? DEFAULT_DEMO_HIDDEN_SIZE;
  const seed = options.seed ?? DEFAULT_DEMO_SEED;
  if (!Number.isInteger(count) || count < 0)
    throw new RangeError(`count must be an integer >= 0, got ${count}`);
  if (!(sizeMb > 0) || !Number.isFinite(sizeMb)) throw new RangeError(`sizeMb must be > 0, got ${sizeMb}`);
  const sizes = options.sizesMb ?? [sizeMb];
  if (sizes.length === 0) throw new RangeError('sizesMb must name at least one size');
  for (const size of sizes)
    if (!(size > 0) || !Number.isFinite(size)) throw new RangeError(`sizesMb must be > 0, got ${size}`);
  if (!Number.isInteger(hiddenSize) || hiddenSize < 1) {
    throw new RangeError(`hiddenSize must be an integer >= 1, got ${hiddenSize}`);
  }
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);

  const vocab = demoVocabulary();
  const tokenizerJson = JSON.stringify(demoTokenizerJson(vocab), null, 2) + '\n';
  const tokenizerConfig = JSON.stringify(demoTokenizerConfig(), null, 2) + '\n';
  await mkdir(options.dir, { recursive: true });

  const names: string[] = [];
  for (let i = 1; i <= count; i++) {
    const started = performance.now();
    const name = demoModelName(i);
    names.push(name);
    const paths = modelPaths(options.dir, name);
    if (!options.overwrite && (await exists(paths.configPath)) && (await exists(paths.modelPath))) {
      options.onModel?.({ name, status: 'kept', bytes: 0, ms: performance.now() - started });
      continue;
    }
    const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmp = join(options.dir, `.${name}.tmp-${suffix}`);
    try {
      await mkdir(join(tmp, '1'), { recursive: true });
      const vocabSize = demoVocabSize(sizes[(i - 1) % sizes.length]!, hiddenSize, vocab.size);
      const bytes = encodeDemoModel({ vocabSize, hiddenSize, seed: demoModelSeed(seed, i) });
      await writeFile(join(tmp, '1', MODEL_FILE), bytes);
      await writeFile(join(tmp, CONFIG_FILE), formatModelConfig(demoModelConfig(name, hiddenSize)));
      await writeFile(join(tmp, TOKENIZER_FILE), tokenizerJson);
      await writeFile(join(tmp, TOKENIZER_CONFIG_FILE), tokenizerConfig);
      // rename() cannot replace a non-empty folder: move the old one aside first.
      const old = join(options.dir, `.${name}.old-${suffix}`);
      const hadOld = await exists(paths.dir);
      if (hadOld) await rename(paths.dir, old);
      await rename(tmp, paths.dir);
      if (hadOld) await rm(old, { recursive: true, force: true });
      options.onModel?.({
        name,
        status: 'written',
        bytes: bytes.byteLength,
        ms: performance.now() - started,
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  return names;
}
