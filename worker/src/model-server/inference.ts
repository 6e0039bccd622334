import {
  KServeProtocolError,
  decodeInferRequest,
  encodeInferResponse,
  wantsBinaryOutput,
  type EncodedInferMessage,
} from '@smart-routing/kserve';
import { MODEL_SERVER_ERRORS, ModelServerError } from './errors.js';
import { validateInferRequest } from './infer-request.js';
import type { ModelStore } from './model-store.js';
import { nowNs } from './statistics.js';
import { tensorFromOrt } from './tensors.js';

/**
 * One infer request through a model, timed for the statistics extension:
 *
 *   body bytes ─ decode (JSON or binary) ─ validate against the model ─ run (batcher or direct)
 *              ─ results as typed tensors ─ encode (binary outputs as views) ─ size bound
 *
 * The typed arrays made from the request bytes are the session's feeds; the session's result
 * arrays are the response bytes. No number[] in between unless the client asked for JSON.
 */

/** Options of `inferHttp`. */
export interface InferHttpOptions {
  model: string;
  version?: string;
  /** The `Inference-Header-Content-Length` request header. */
  headerLength?: string | string[];
  /** Largest encoded response, in bytes. */
  maxResponseBytes: number;
}

/**
 * Runs one HTTP infer request body and returns the encoded response.
 * @throws ModelServerError (Triton's message and status) for every failure, after counting it.
 */
export async function inferHttp(
  store: ModelStore,
  body: Buffer,
  options: InferHttpOptions,
): Promise<EncodedInferMessage> {
  const m = store.model(options.model, options.version);
  const start = nowNs();
  try {
    if (body.length === 0) throw MODEL_SERVER_ERRORS.badJson('the request body is empty');
    let request;
    try {
      request = decodeInferRequest(body, { headerLength: options.headerLength, model: m.name });
    } catch (err) {
      if (err instanceof KServeProtocolError) throw MODEL_SERVER_ERRORS.badRequest(err.message);
      throw err;
    }
    const valid = validateInferRequest(m, request);
    const inputNs = nowNs() - start;
    const result = await store.run(m, { feeds: valid.feeds, outputs: valid.outputNames, batch: valid.batch });
    const outputStart = nowNs();
    const response = encodeInferResponse(
      {
        model_name: m.name,
        model_version: String(m.version),
        ...(request.id === undefined ? {} : { id: request.id }),
        outputs: valid.outputNames.map((n) => tensorFromOrt(n, result.outputs[n]!)),
      },
      (name) => wantsBinaryOutput(request, name),
    );
    if (response.byteLength > options.maxResponseBytes) {
      throw MODEL_SERVER_ERRORS.responseTooLarge(m.name, response.byteLength, options.maxResponseBytes);
    }
    const end = nowNs();
    m.stats.recordSuccess(valid.batch, {
      totalNs: end - start,
      queueNs: result.queueNs,
      inputNs: inputNs + result.inputNs,
      inferNs: result.inferNs,
      outputNs: result.outputNs + (end - outputStart),
    });
    return response;
  } catch (err) {
    m.stats.recordFailure(nowNs() - start);
    if (err instanceof ModelServerError) throw err;
    if (err instanceof KServeProtocolError) throw MODEL_SERVER_ERRORS.badRequest(err.message);
    throw err;
  }
}
