import { bf16ToNumber, halfToNumber, type Tensor } from '@smart-routing/kserve';
import { z } from 'zod';
import { errorMessage, modelServerFailure, TaskError } from '../errors.js';
import type { TensorMetadata } from '../triton-client.js';
import type { BatchEncoding } from '../tokenizer/tokenizer.js';
import { parseWith, type TaskHandler } from './types.js';

/** Most texts in one `embed_texts` task. */
export const MAX_TEXTS = 256;
/** Longest text in characters (the tokenizer truncates tokens anyway; this bounds the CPU spent). */
export const MAX_TEXT_CHARS = 100_000;
/** Rows per inference request when the model sets no batch limit of its own. */
const DEFAULT_CHUNK = 32;

const schema = z.object({
  texts: z
    .array(
      z
        .string({ error: 'must be a string' })
        .min(1, 'must not be empty')
        .max(MAX_TEXT_CHARS, `must be at most ${MAX_TEXT_CHARS} characters`),
      { error: 'must be a list of strings' },
    )
    .min(1, 'must hold at least one text')
    .max(MAX_TEXTS, `must hold at most ${MAX_TEXTS} texts`),
});

type EmbedParameters = z.infer<typeof schema>;

/** `embed_texts` result. */
export interface EmbedResult {
  embeddings: number[][];
  dimensions: number;
}

/**
 * `embed_texts`: tokenizes with the model's own `tokenizer.json`, runs the model, and returns one
 * L2-normalised vector per text: the model's `sentence_embedding` output when it has one, else the
 * attention-masked mean of `last_hidden_state` (sentence-transformers' mean pooling). Token ids go
 * to the model as the tokenizer's typed arrays and the pooling reads the model's typed output: the
 * only number[] is the JSON answer.
 */
export const embedTextsHandler: TaskHandler<EmbedParameters> = {
  taskType: 'embed_texts',
  labelFree: false,
  parse: (parameters) => parseWith(schema, parameters, 'embed_texts'),
  async run({ texts }, { client, label, models, deadlineUnixMs, signal }): Promise<EmbedResult> {
    if (!client) throw new TaskError('internal', 'embed_texts needs a model server');
    const [{ metadata, maxBatchSize }, tokenizer] = await Promise.all([
      models.modelInfo(label),
      models.tokenizer(label),
    ]);
    const plan = planIo(label, metadata.inputs, metadata.outputs);
    const chunk = maxBatchSize > 0 ? maxBatchSize : DEFAULT_CHUNK;
    const embeddings: number[][] = [];
    let dimensions = 0;
    for (let start = 0; start < texts.length; start += chunk) {
      const batch = tokenizer.encodeBatch(texts.slice(start, start + chunk));
      let output: Tensor | undefined;
      try {
        const res = await client.inferTensors(
          label,
          {
            inputs: plan.inputs(batch),
            outputs: [{ name: plan.output }],
          },
          { deadlineUnixMs, signal },
        );
        output = res.outputs.find((o) => o.name === plan.output);
      } catch (err) {
        throw modelServerFailure(
          err,
          'inference_failed',
          `embed_texts on ${label} failed: ${errorMessage(err)}`,
        );
      }
      if (!output) throw new TaskError('inference_failed', `${label} returned no ${plan.output} output`);
      const rows = pool(output, batch, label);
      dimensions = rows[0]?.length ?? 0;
      for (const row of rows) embeddings.push(Array.from(row));
    }
    return { embeddings, dimensions };
  },
};

interface IoPlan {
  output: string;
  inputs: (batch: BatchEncoding) => Tensor[];
}

/** Which model inputs to feed from the tokenizer and which output to read. */
function planIo(label: string, inputs: TensorMetadata[], outputs: TensorMetadata[]): IoPlan {
  const sources: Record<string, keyof Pick<BatchEncoding, 'inputIds' | 'attentionMask' | 'tokenTypeIds'>> = {
    input_ids: 'inputIds',
    attention_mask: 'attentionMask',
    token_type_ids: 'tokenTypeIds',
  };
  const unknown = inputs.filter((i) => !(i.name in sources)).map((i) => i.name);
  if (!inputs.some((i) => i.name === 'input_ids') || unknown.length > 0)
    throw new TaskError(
      'bad_parameters',
      `label ${label} is not a text embedding model: it takes ${inputs.map((i) => i.name).join(', ') || 'no inputs'}, ` +
        'embed_texts feeds input_ids, attention_mask and token_type_ids',
    );
  const names = outputs.map((o) => o.name);
  const output =
    names.find((n) => n === 'sentence_embedding') ??
    names.find((n) => n === 'last_hidden_state') ??
    (outputs.length === 1 ? outputs[0]!.name : undefined);
  if (output === undefined)
    throw new TaskError(
      'bad_parameters',
      `label ${label} has no sentence_embedding or last_hidden_state output (it has ${names.join(', ')})`,
    );
  return {
    output,
    inputs: (batch) =>
      inputs.map((i): Tensor => {
        const data = batch[sources[i.name]!];
        const shape = [batch.batchSize, batch.sequenceLength];
        // The tokenizer's BigInt64Array goes as it is; an INT32 model gets its ids narrowed once.
        if (i.datatype === 'INT32')
          return { name: i.name, datatype: 'INT32', shape, data: Int32Array.from(data, Number) };
        return { name: i.name, datatype: 'INT64', shape, data };
      }),
  };
}

/** The output's elements as floats (FP16/BF16 widened once); undefined for other datatypes. */
function floats(output: Tensor): Float32Array | Float64Array | undefined {
  const d = output.data;
  if (d instanceof Float32Array || d instanceof Float64Array) return d;
  if (output.datatype === 'FP16') return Float32Array.from(d as Uint16Array, halfToNumber);
  if (output.datatype === 'BF16') return Float32Array.from(d as Uint16Array, bf16ToNumber);
  return undefined;
}

/** Rows of `[batch, hidden]` (already pooled) or `[batch, seq, hidden]` (mean-pooled here), normalised. */
function pool(output: Tensor, batch: BatchEncoding, label: string): Float64Array[] {
  const data = floats(output);
  const shape = output.shape;
  const n = batch.batchSize;
  const bad = () =>
    new TaskError(
      'inference_failed',
      `${label}'s ${output.name} is ${output.datatype} [${shape.join(', ')}], expected floats of [${n}, hidden] or [${n}, ${batch.sequenceLength}, hidden]`,
    );
  if (shape[0] !== n || !data) throw bad();
  const rows: Float64Array[] = [];
  if (shape.length === 2) {
    const h = shape[1]!;
    if (data.length !== n * h) throw bad();
    for (let r = 0; r < n; r++) rows.push(normalize(Float64Array.from(data.subarray(r * h, (r + 1) * h))));
    return rows;
  }
  if (shape.length !== 3 || shape[1] !== batch.sequenceLength) throw bad();
  const seq = shape[1];
  const h = shape[2]!;
  if (data.length !== n * seq * h) throw bad();
  for (let r = 0; r < n; r++) {
    const sum = new Float64Array(h);
    let count = 0;
    for (let t = 0; t < seq; t++) {
      if (batch.attentionMask[r * seq + t] === 0n) continue;
      count++;
      const base = (r * seq + t) * h;
      for (let k = 0; k < h; k++) sum[k]! += data[base + k]!;
    }
    // sentence-transformers clamps the token count at 1e-9.
    const denom = Math.max(count, 1e-9);
    for (let k = 0; k < h; k++) sum[k]! /= denom;
    rows.push(normalize(sum));
  }
  return rows;
}

/** v / max(|v|, 1e-12) in place, as torch's F.normalize. */
function normalize(v: Float64Array): Float64Array {
  let sq = 0;
  for (const x of v) sq += x * x;
  const norm = Math.max(Math.sqrt(sq), 1e-12);
  for (let k = 0; k < v.length; k++) v[k]! /= norm;
  return v;
}
