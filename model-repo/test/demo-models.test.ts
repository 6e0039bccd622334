import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import protobuf from 'protobufjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BERT_SPECIAL_IDS,
  demoVocabSize,
  demoVocabulary,
  generateDemoModels,
  listModels,
  modelPaths,
  parseModelConfig,
  readOnnxSignature,
} from '../src/index.js';

const modelType = protobuf
  .loadSync(fileURLToPath(new URL('../proto/onnx-subset.proto', import.meta.url)))
  .lookupType('onnx.ModelProto');

/** The embedding table stored in a model file, decoded independently of the writer. */
function readTable(bytes: Uint8Array): { dims: number[]; values: Float32Array } {
  const model = modelType.toObject(modelType.decode(bytes), { longs: Number }) as {
    graph: { initializer: { dims: number[]; rawData: Uint8Array }[] };
  };
  const t = model.graph.initializer[0]!;
  const raw = Uint8Array.from(t.rawData);
  return { dims: t.dims, values: new Float32Array(raw.buffer, 0, raw.byteLength / 4) };
}

describe('generateDemoModels', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sr-demo-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes Triton-layout models whose Gather output is the table rows', async () => {
    const names = await generateDemoModels({ dir, count: 2, sizeMb: 0.25, hiddenSize: 8, seed: 7 });
    expect(names).toEqual(['label-1', 'label-2']);
    expect(await listModels(dir)).toEqual(['label-1', 'label-2']);
    expect((await readdir(dir)).filter((n) => n.startsWith('.'))).toEqual([]);

    const paths = modelPaths(dir, 'label-1');
    const bytes = await readFile(paths.modelPath);
    const vocabSize = demoVocabSize(0.25, 8);
    expect(vocabSize).toBe(8192);
    const table = readTable(bytes);
    expect(table.dims).toEqual([vocabSize, 8]);
    expect(table.values.every((v) => v >= -1 && v < 1)).toBe(true);

    const session = await ort.InferenceSession.create(paths.modelPath);
    try {
      expect(session.inputNames).toEqual(['input_ids', 'attention_mask']);
      expect(session.outputNames).toEqual(['last_hidden_state']);
      const ids = [101, 0, vocabSize - 1, 102, 5, 5];
      const out = await session.run({
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [2, 3]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(6).fill(1n), [2, 3]),
      });
      const hidden = out['last_hidden_state']!;
      expect(hidden.dims).toEqual([2, 3, 8]);
      const expected = ids.flatMap((id) => Array.from(table.values.subarray(id * 8, id * 8 + 8)));
      expect(Array.from(hidden.data as Float32Array)).toEqual(expected);
    } finally {
      await session.release();
    }
  });

  it('writes a config and an ONNX signature that agree', async () => {
    await generateDemoModels({ dir, count: 1, sizeMb: 0.1, hiddenSize: 4 });
    const paths = modelPaths(dir, 'label-1');
    expect(parseModelConfig(await readFile(paths.configPath, 'utf8'))).toEqual({
      name: 'label-1',
      platform: 'onnxruntime_onnx',
      maxBatchSize: 8,
      input: [
        { name: 'input_ids', dataType: 'TYPE_INT64', dims: [-1] },
        { name: 'attention_mask', dataType: 'TYPE_INT64', dims: [-1] },
      ],
      output: [{ name: 'last_hidden_state', dataType: 'TYPE_FP32', dims: [-1, 4] }],
    });
    const sig = readOnnxSignature(await readFile(paths.modelPath));
    expect(sig.inputs).toEqual([
      { name: 'input_ids', elemType: 7, dims: ['batch', 'seq'] },
      { name: 'attention_mask', elemType: 7, dims: ['batch', 'seq'] },
    ]);
    expect(sig.outputs).toEqual([{ name: 'last_hidden_state', elemType: 1, dims: ['batch', 'seq', 4] }]);
  });

  it('gives every label distinct weights and is deterministic per seed', async () => {
    await generateDemoModels({ dir, count: 2, sizeMb: 0.1, hiddenSize: 4, seed: 1 });
    const a = await readFile(modelPaths(dir, 'label-1').modelPath);
    const b = await readFile(modelPaths(dir, 'label-2').modelPath);
    expect(Buffer.compare(a, b)).not.toBe(0);
    await generateDemoModels({ dir, count: 1, sizeMb: 0.1, hiddenSize: 4, seed: 1, overwrite: true });
    expect(Buffer.compare(await readFile(modelPaths(dir, 'label-1').modelPath), a)).toBe(0);
    await generateDemoModels({ dir, count: 1, sizeMb: 0.1, hiddenSize: 4, seed: 2, overwrite: true });
    expect(Buffer.compare(await readFile(modelPaths(dir, 'label-1').modelPath), a)).not.toBe(0);
  });

  it('keeps existing models unless overwrite', async () => {
    await generateDemoModels({ dir, count: 1, sizeMb: 0.1, hiddenSize: 4 });
    const { configPath } = modelPaths(dir, 'label-1');
    await writeFile(configPath, 'name: "edited"');
    const events: string[] = [];
    await generateDemoModels({
      dir,
      count: 2,
      sizeMb: 0.1,
      hiddenSize: 4,
      onModel: (e) => events.push(e.status),
    });
    expect(events).toEqual(['kept', 'written']);
    expect(await readFile(configPath, 'utf8')).toBe('name: "edited"');
    await generateDemoModels({ dir, count: 1, sizeMb: 0.1, hiddenSize: 4, overwrite: true });
    expect(parseModelConfig(await readFile(configPath, 'utf8')).name).toBe('label-1');
    expect((await readdir(dir)).sort()).toEqual(['label-1', 'label-2']);
  });

  it('sizes the table from sizeMb', async () => {
    await generateDemoModels({ dir, count: 1, sizeMb: 1, hiddenSize: 16 });
    const size = (await stat(modelPaths(dir, 'label-1').modelPath)).size;
    expect(size).toBeGreaterThan(2 ** 20);
    expect(size).toBeLessThan(2 ** 20 + 4096);
  });

  it('gives models heterogeneous sizes from sizesMb, cycling through the list', async () => {
    await generateDemoModels({ dir, count: 4, sizesMb: [0.25, 1, 0.5], hiddenSize: 16 });
    const mib = async (name: string) => (await stat(modelPaths(dir, name).modelPath)).size / 2 ** 20;
    const sizes = await Promise.all(['label-1', 'label-2', 'label-3', 'label-4'].map(mib));
    for (const [got, want] of sizes.map((s, i) => [s, [0.25, 1, 0.5, 0.25][i]!]))
      expect(got).toBeCloseTo(want!, 1);
  });

  it('rejects bad options', async () => {
    await expect(generateDemoModels({ dir, sizeMb: 0 })).rejects.toThrow(/sizeMb must be > 0/);
    await expect(generateDemoModels({ dir, sizesMb: [1, -1] })).rejects.toThrow(/sizesMb must be > 0/);
    await expect(generateDemoModels({ dir, sizesMb: [] })).rejects.toThrow(/sizesMb must name/);
    await expect(generateDemoModels({ dir, count: 1.5 })).rejects.toThrow(/count must be an integer/);
    await expect(generateDemoModels({ dir, hiddenSize: 0 })).rejects.toThrow(/hiddenSize/);
  });

  it('writes a BERT-layout WordPiece tokenizer.json and tokenizer_config.json', async () => {
    await generateDemoModels({ dir, count: 1, sizeMb: 0.1, hiddenSize: 4 });
    const tok = JSON.parse(await readFile(modelPaths(dir, 'label-1').tokenizerPath, 'utf8')) as {
      normalizer: { type: string; lowercase: boolean };
      pre_tokenizer: { type: string };
      truncation: null;
      padding: null;
      post_processor: { type: string; single: unknown[]; special_tokens: Record<string, { ids: number[] }> };
      model: {
        type: string;
        unk_token: string;
        continuing_subword_prefix: string;
        max_input_chars_per_word: number;
        vocab: Record<string, number>;
      };
      added_tokens: { id: number; content: string; special: boolean }[];
    };
    expect(tok.normalizer).toMatchObject({ type: 'BertNormalizer', lowercase: true });
    expect(tok.pre_tokenizer.type).toBe('BertPreTokenizer');
    expect(tok.truncation).toBeNull();
    expect(tok.padding).toBeNull();
    expect(tok.model).toMatchObject({
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
    });
    const vocab = tok.model.vocab;
    expect(vocab['[PAD]']).toBe(0);
    expect(vocab['[unused0]']).toBe(1);
    expect(vocab['[UNK]']).toBe(100);
    expect(vocab['[CLS]']).toBe(101);
    expect(vocab['[SEP]']).toBe(102);
    expect(vocab['[MASK]']).toBe(103);
    expect(vocab['the']).toBeGreaterThan(103);
    expect(vocab['##s']).toBeGreaterThan(103);
    const ids = Object.values(vocab);
    expect(new Set(ids).size).toBe(ids.length);
    expect(Math.max(...ids)).toBe(ids.length - 1);
    expect(ids.length).toBe(demoVocabulary().size);
    expect(ids.length).toBeGreaterThan(400);
    expect(Math.max(...ids)).toBeLessThan(demoVocabSize(0.1, 4));
    expect(tok.post_processor.type).toBe('TemplateProcessing');
    expect(tok.post_processor.single).toEqual([
      { SpecialToken: { id: '[CLS]', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '[SEP]', type_id: 0 } },
    ]);
    expect(tok.post_processor.special_tokens['[CLS]']!.ids).toEqual([101]);
    expect(tok.added_tokens.map((t) => [t.content, t.id])).toEqual(Object.entries(BERT_SPECIAL_IDS));
    const config = JSON.parse(await readFile(join(dir, 'label-1', 'tokenizer_config.json'), 'utf8'));
    expect(config).toEqual({ model_max_length: 128, do_lower_case: true });
  });
});
