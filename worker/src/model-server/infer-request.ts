import { MODEL_SERVER_ERRORS, type ModelServerError } from './errors.js';
import type { LoadedModel } from './model-store.js';
import type { ThreadTensor } from './session-thread.js';
import { elementCount, flattenData, kserveToOrtType, toThreadTensor } from './tensors.js';

/**
 * KServe v2 infer request validation: everything about the body is checked against the model
 * before the model sees it, and each failure is a 400 whose message names the offending input
 * (Triton's wording where Triton has one).
 */

/** A validated infer request, ready for the session. */
export interface ValidInferRequest {
  id?: string;
  feeds: Record<string, ThreadTensor>;
  /** Requested outputs, in order, without repeats; all outputs when the request names none. */
  outputNames: string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validates a KServe v2 JSON infer request body for model `m`.
 * @throws ModelServerError (400) with a message naming the offending input.
 */
export function validateInferRequest(m: LoadedModel, body: unknown): ValidInferRequest {
  const bad = (msg: string): ModelServerError => MODEL_SERVER_ERRORS.badRequest(msg);
  if (!isObject(body)) throw bad('the request body must be a JSON object');
  if (body.id !== undefined && typeof body.id !== 'string') throw bad("'id' must be a string");
  if (!Array.isArray(body.inputs) || body.inputs.length === 0) {
    throw bad("Unable to parse 'inputs': the request must have a non-empty 'inputs' array");
  }
  const feeds: Record<string, ReturnType<typeof toThreadTensor>> = {};
  let batch: number | undefined;
  for (const [i, raw] of (body.inputs as unknown[]).entries()) {
    if (!isObject(raw)) throw bad(`inputs[${i}] must be an object`);
    const { name: inputName, datatype, shape, data } = raw;
    if (typeof inputName !== 'string') throw bad(`inputs[${i}] has no 'name' string`);
    if (typeof datatype !== 'string') throw bad(`input '${inputName}' has no 'datatype' string`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw bad(`input '${inputName}': 'shape' must be an array of non-negative integers`);
    }
    if (isObject(raw.parameters) && raw.parameters.binary_data_size !== undefined) {
      throw bad(`input '${inputName}': binary tensor data is not supported, send JSON 'data'`);
    }
    if (!Array.isArray(data)) throw bad(`input '${inputName}': 'data' must be an array`);
    const spec = m.inputs.get(inputName);
    if (!spec) throw bad(`unexpected inference input '${inputName}' for model '${m.name}'`);
    if (feeds[inputName]) throw bad(`input '${inputName}' is given more than once`);
    if (datatype !== spec.datatype) {
      throw bad(
        `inference input '${inputName}' data-type is '${datatype}', but model '${m.name}' expects '${spec.datatype}'`,
      );
    }
    const dims = shape as number[];
    const fits = dims.length === spec.shape.length && spec.shape.every((d, j) => d === -1 || d === dims[j]);
    if (!fits) {
      throw bad(
        `unexpected shape for input '${inputName}' for model '${m.name}'. Expected [${spec.shape.join(',')}], got [${dims.join(',')}]`,
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
        throw bad(
          `input '${inputName}' batch size ${b} does not match other inputs (${batch}) for '${m.name}'`,
        );
      }
      batch = b;
    }
    const ortType = kserveToOrtType(datatype);
    if (!ortType) throw bad(`input '${inputName}': datatype '${datatype}' is not supported in JSON requests`);
    const flat = flattenData(data);
    const expected = elementCount(dims);
    if (flat.length !== expected) {
      throw bad(
        `unexpected number of elements for input '${inputName}' of model '${m.name}': shape [${dims.join(',')}] needs ${expected}, 'data' has ${flat.length}`,
      );
    }
    feeds[inputName] = toThreadTensor(inputName, ortType, dims, flat);
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
  if (body.outputs !== undefined) {
    if (!Array.isArray(body.outputs)) throw bad("'outputs' must be an array");
    if (body.outputs.length > 0) {
      outputNames = (body.outputs as unknown[]).map((o, i) => {
        if (!isObject(o) || typeof o.name !== 'string') throw bad(`outputs[${i}] has no 'name' string`);
        if (!m.outputs.has(o.name))
          throw bad(`unexpected inference output '${o.name}' for model '${m.name}'`);
        return o.name;
      });
      outputNames = [...new Set(outputNames)];
    }
  }

  const request: ValidInferRequest = { feeds, outputNames };
  if (typeof body.id === 'string') request.id = body.id;
  return request;
}
