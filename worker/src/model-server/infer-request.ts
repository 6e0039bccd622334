import type { InferRequest } from '@smart-routing/kserve';
import { MODEL_SERVER_ERRORS } from './errors.js';
import type { LoadedModel } from './model-store.js';
import type { ThreadTensor } from './session-thread.js';
import { tensorToOrt } from './tensors.js';

/**
 * An infer request (already decoded from JSON or binary by `@smart-routing/kserve`) checked
 * against the model before the model sees it: input names, datatypes, shapes, batch sizes and
 * outputs. Each failure is a 400 whose message names the offending input, in Triton's wording.
 */

/** A validated infer request, ready for the session. */
export interface ValidInferRequest {
  feeds: Record<string, ThreadTensor>;
  /** Requested outputs, in order, without repeats; all outputs when the request names none. */
  outputNames: string[];
  /** The request's batch size (dimension 0) when the model batches; 1 otherwise. */
  batch: number;
}

/**
 * Validates a decoded infer request for model `m` and turns its tensors into session feeds
 * (typed arrays passed through, not copied).
 * @throws ModelServerError (400) with a message naming the offending input.
 */
export function validateInferRequest(m: LoadedModel, request: InferRequest): ValidInferRequest {
  const bad = MODEL_SERVER_ERRORS.badRequest;
  const feeds: Record<string, ThreadTensor> = {};
  let batch: number | undefined;
  for (const t of request.inputs) {
    const spec = m.inputs.get(t.name);
    if (!spec) throw bad(`unexpected inference input '${t.name}' for model '${m.name}'`);
    if (feeds[t.name]) throw bad(`input '${t.name}' is given more than once`);
    if (t.datatype !== spec.datatype) {
      throw bad(
        `inference input '${t.name}' data-type is '${t.datatype}', but model '${m.name}' expects '${spec.datatype}'`,
      );
    }
    const dims = t.shape;
    const fits = dims.length === spec.shape.length && spec.shape.every((d, j) => d === -1 || d === dims[j]);
    if (!fits) {
      throw bad(
        `unexpected shape for input '${t.name}' for model '${m.name}'. Expected [${spec.shape.join(',')}], got [${dims.join(',')}]`,
      );
    }
    if (m.config.maxBatchSize > 0) {
      const b = dims[0]!;
      if (b < 1 || b > m.config.maxBatchSize) {
        throw bad(
          `inference request batch-size must be <= ${m.config.maxBatchSize} for '${m.name}', got ${b}`,
        );
      }
      if (batch !== undefined && b !== batch) {
        throw bad(`input '${t.name}' batch size ${b} does not match other inputs (${batch}) for '${m.name}'`);
      }
      batch = b;
    }
    feeds[t.name] = tensorToOrt(t);
  }
  const missing = [...m.inputs.keys()].filter((n) => !feeds[n]);
  if (missing.length > 0) {
    throw bad(
      `expected ${m.inputs.size} inputs but got ${Object.keys(feeds).length} inputs for model '${m.name}'. ` +
        `Got input(s) [${Object.keys(feeds)
          .map((n) => `'${n}'`)
          .join(', ')}], but missing required input(s) ` +
        `[${missing.map((n) => `'${n}'`).join(', ')}]. Please provide all required input(s).`,
    );
  }
  let outputNames = [...m.outputs.keys()];
  if (request.outputs && request.outputs.length > 0) {
    for (const o of request.outputs) {
      if (!m.outputs.has(o.name)) throw bad(`unexpected inference output '${o.name}' for model '${m.name}'`);
    }
    outputNames = [...new Set(request.outputs.map((o) => o.name))];
  }
  return { feeds, outputNames, batch: batch ?? 1 };
}
