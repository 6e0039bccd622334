import {
  KServeProtocolError,
  decodeInferRequest,
  encodeInferResponse,
  wantsBinaryOutput,
  type EncodedInferMessage,
  type InferRequest,
  type Tensor,
} from '@smart-routing/kserve';
import { MODEL_SERVER_ERRORS, ModelServerError } from './errors.js';
import { validateInferRequest } from './infer-request.js';
import type { LoadedModel, ModelStore } from './model-store.js';
import { nowNs } from './statistics.js';
import { tensorFromOrt } from './tensors.js';

/**
 * One infer request through a model, timed for the statistics extension:
 *
 *   request (HTTP body or gRPC message) ─ decode ─ validate against the model ─ run (batcher or
 *   direct) ─ results as typed tensors ─ encode (binary outputs as views) ─ size bound
 *
 * The typed arrays made from the request bytes are the session's feeds; the session's result
 * arrays are the response bytes. No number[] in between unless the client asked for JSON.
 */

/** How a front end decodes its request and encodes its answer. */
export interface InferCodec<T> {
  decode(m: LoadedModel): InferRequest;
  encode(m: LoadedModel, request: InferRequest, outputs: Tensor[]): T;
  /** Encoded size, checked against the response bound. */
  byteLength(encoded: T): number;
}

/**
 * Runs one request through model `m` and returns the encoded answer.
 * @throws ModelServerError (Triton's message and status) for every failure, after counting it.
 */
export async function runInference<T>(
  store: ModelStore,
  m: LoadedModel,
  codec: InferCodec<T>,
  maxResponseBytes: number,
): Promise<T> {
  const start = nowNs();
  try {
    const request = codec.decode(m);
    const valid = validateInferRequest(m, request);
    const inputNs = nowNs() - start;
    const result = await store.run(m, { feeds: valid.feeds, outputs: valid.outputNames, batch: valid.batch });
    const outputStart = nowNs();
    const encoded = codec.encode(
      m,
      request,
      valid.outputNames.map((n) => tensorFromOrt(n, result.outputs[n]!)),
    );
    const size = codec.byteLength(encoded);
    if (size > maxResponseBytes) throw MODEL_SERVER_ERRORS.responseTooLarge(m.name, size, maxResponseBytes);
    const end = nowNs();
    m.stats.recordSuccess(valid.batch, {
      totalNs: end - start,
      queueNs: result.queueNs,
      inputNs: inputNs + result.inputNs,
      inferNs: result.inferNs,
      outputNs: result.outputNs + (end - outputStart),
    });
    return encoded;
  } catch (err) {
    m.stats.recordFailure(nowNs() - start);
    if (err instanceof ModelServerError) throw err;
    if (err instanceof KServeProtocolError) throw MODEL_SERVER_ERRORS.badRequest(err.message);
    throw err;
  }
}

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
 * Runs one HTTP infer request body (JSON or Triton binary) and returns the encoded response.
 * `body` must sit in an ArrayBuffer of its own (see `readInferBody`): its binary tensors are
 * viewed in place and may be transferred to the session thread.
 * @throws ModelServerError for every failure.
 */
export function inferHttp(
  store: ModelStore,
  body: Buffer,
  options: InferHttpOptions,
): Promise<EncodedInferMessage> {
  const m = store.model(options.model, options.version);
  return runInference<EncodedInferMessage>(
    store,
    m,
    {
      decode: (model) => {
        if (body.length === 0) throw MODEL_SERVER_ERRORS.badJson('the request body is empty');
        // The body is ours alone (readInferBody): its tensors are used in place, not copied.
        return decodeInferRequest(body, {
          headerLength: options.headerLength,
          model: model.name,
          viewTensors: true,
        });
      },
      encode: (model, request, outputs) =>
        encodeInferResponse(
          {
            model_name: model.name,
            model_version: String(model.version),
            ...(request.id === undefined ? {} : { id: request.id }),
            outputs,
          },
          (name) => wantsBinaryOutput(request, name),
        ),
      byteLength: (e) => e.byteLength,
    },
    options.maxResponseBytes,
  );
}
