import {
  INFERENCE_HEADER_CONTENT_LENGTH,
  KServeProtocolError,
  decodeInferResponse,
  encodeInferRequest,
  parseHeaderLength,
  type InferRequest as TensorInferRequest,
  type InferResponse as TensorInferResponse,
} from '@smart-routing/kserve';
import { binaryPost, PostAgents, type BinaryAnswer } from './binary-post.js';
import { readBoundedText, ResponseTooLargeError } from './bounded-body.js';
import { errorMessage, withTimeout } from './errors.js';
import type { InferBody, InferCallOptions, InferTransport, TritonProtocol } from './infer-transport.js';

/**
 * A small client for Triton's HTTP/REST API (KServe v2 + the model-repository extension), the
 * only way the worker talks to its model server, embedded or real. Inferences go binary (Triton's
 * binary tensor data extension) by default, or through another transport (gRPC) when one is given;
 * health, repository and metadata calls are always HTTP.
 */

/** A KServe v2 tensor description (metadata). */
export interface TensorMetadata {
  name: string;
  datatype: string;
  /** -1 for a variable dimension (the batch dimension too when max_batch_size > 0). */
  shape: number[];
}

/** `GET /v2/models/{m}`. */
export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform?: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

/** One entry of `POST /v2/repository/index`. */
export interface RepositoryIndexEntry {
  name: string;
  version?: string;
  /** `READY`, `UNAVAILABLE`, `LOADING`, `UNLOADING`; absent when never loaded. */
  state?: string;
  reason?: string;
}

/** A KServe v2 JSON tensor (request input or response output). */
export interface InferTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
  parameters?: Record<string, unknown>;
}

/** A requested output. */
export interface InferRequestedOutput {
  name: string;
  parameters?: Record<string, unknown>;
}

/** `POST /v2/models/{m}/infer` body. */
export interface InferRequest {
  id?: string;
  inputs: InferTensor[];
  outputs?: InferRequestedOutput[];
  parameters?: Record<string, unknown>;
}

/** `POST /v2/models/{m}/infer` answer. */
export interface InferResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  outputs: InferTensor[];
  parameters?: Record<string, unknown>;
}

/** Per-call options of `TritonClient.infer` (a deadline; `inferTensors` and `inferBody` also take a signal). */
/** Per-call options of `TritonClient.infer`: the same as the binary calls (deadline, signal). */
export type InferOptions = InferCallOptions;

/** The timeout of a call: `limitMs`, or less when `deadlineUnixMs` comes sooner (at least 1 ms). */
export function callTimeoutMs(limitMs: number, deadlineUnixMs: number | undefined): number {
  if (!deadlineUnixMs || deadlineUnixMs <= 0) return limitMs;
  return Math.max(1, Math.min(limitMs, deadlineUnixMs - Date.now()));
}

/** A non-2xx answer from the model server, with Triton's `{"error": "..."}` message. */
export class TritonError extends Error {
  override name = 'TritonError';
  /** HTTP status of the answer. */
  readonly status: number;
  /** The server's own message (`error` field), or the raw body when it had none. */
  readonly serverMessage: string;

  constructor(method: string, path: string, status: number, serverMessage: string) {
    super(`${method} ${path} -> ${status}: ${serverMessage}`);
    this.status = status;
    this.serverMessage = serverMessage;
  }
}

/** The model server could not be reached at all (refused, reset, gone): the task may run elsewhere. */
export class ModelServerUnreachableError extends Error {
  override name = 'ModelServerUnreachableError';
}

/** Options of `TritonClient`. */
export interface TritonClientOptions {
  /**
   * Base URL, e.g. `http://127.0.0.1:8000`, or a function giving the current one (the embedded
   * model server gets a new port when it restarts).
   */
  url: string | (() => string);
  /** Per-call limit for quick calls (health, metadata, index, unload). Default 10 000 ms. */
  timeoutMs?: number;
  /** Per-call limit for a model load. Default 600 000 ms (big models load slowly). */
  loadTimeoutMs?: number;
  /** Per-call limit for an inference. Default 120 000 ms. */
  inferTimeoutMs?: number;
  /**
   * Where `inferTensors` and `inferBody` go instead of binary HTTP on `url` (e.g. a
   * `GrpcInferTransport`); closed by `close()`. Default none (binary HTTP).
   */
  transport?: InferTransport;
  /** Largest answer body read (bytes); a larger one is refused unread (`ResponseTooLargeError`). Default 64 MiB. */
  maxResponseBytes?: number;
}

const DEFAULTS = {
  timeoutMs: 10_000,
  loadTimeoutMs: 600_000,
  inferTimeoutMs: 120_000,
  maxResponseBytes: 64 * 1024 * 1024,
};

/** Triton HTTP client. Every call has its own timeout and rejects with `TimeoutError` past it. */
export class TritonClient {
  private readonly urlSource: () => string;
  private readonly options: Required<Omit<TritonClientOptions, 'url' | 'transport'>>;
  private readonly transport: InferTransport | undefined;
  /** Keep-alive connections of the binary infer calls. */
  private readonly agents = new PostAgents();

  constructor(options: TritonClientOptions) {
    const url = options.url;
    if (typeof url === 'string') {
      checkUrl(url);
      const fixed = url.replace(/\/+$/, '');
      this.urlSource = () => fixed;
    } else this.urlSource = () => url().replace(/\/+$/, '');
    this.options = {
      timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
      loadTimeoutMs: options.loadTimeoutMs ?? DEFAULTS.loadTimeoutMs,
      inferTimeoutMs: options.inferTimeoutMs ?? DEFAULTS.inferTimeoutMs,
      maxResponseBytes: options.maxResponseBytes ?? DEFAULTS.maxResponseBytes,
    };
    this.transport = options.transport;
  }

  /** The protocol inferences use: `http` (binary), or the transport's. */
  get protocol(): TritonProtocol {
    return this.transport?.protocol ?? 'http';
  }

  /** Base URL now, without a trailing slash. */
  get url(): string {
    return this.urlSource();
  }

  /** `GET /v2/health/live`: false on any error or non-200. */
  async isLive(): Promise<boolean> {
    return this.probe('/v2/health/live');
  }

  /** `GET /v2/health/ready`: false on any error or non-200. */
  async isReady(): Promise<boolean> {
    return this.probe('/v2/health/ready');
  }

  /** `POST /v2/repository/index`: every model of the repository, with its state. */
  async repositoryIndex(options: { ready?: boolean } = {}): Promise<RepositoryIndexEntry[]> {
    const body = options.ready === undefined ? {} : { ready: options.ready };
    const res = await this.request<unknown>('POST', '/v2/repository/index', body, this.options.timeoutMs);
    if (!Array.isArray(res))
      throw new TritonError('POST', '/v2/repository/index', 200, 'answer is not a list');
    return res as RepositoryIndexEntry[];
  }

  /** `POST /v2/repository/models/{m}/load`: resolves when the model is ready. */
  async loadModel(name: string): Promise<void> {
    await this.request('POST', `/v2/repository/models/${enc(name)}/load`, {}, this.options.loadTimeoutMs);
  }

  /** `POST /v2/repository/models/{m}/unload`. */
  async unloadModel(name: string): Promise<void> {
    await this.request('POST', `/v2/repository/models/${enc(name)}/unload`, {}, this.options.loadTimeoutMs);
  }

  /** `GET /v2/models/{m}/ready`: true on 200, false on 4xx; other failures throw. */
  async isModelReady(name: string): Promise<boolean> {
    try {
      await this.request('GET', `/v2/models/${enc(name)}/ready`, undefined, this.options.timeoutMs);
      return true;
    } catch (err) {
      if (err instanceof TritonError && err.status >= 400 && err.status < 500) return false;
      throw err;
    }
  }

  /** `GET /v2/models/{m}`: inputs and outputs of a loaded model. */
  async modelMetadata(name: string): Promise<ModelMetadata> {
    return this.request<ModelMetadata>('GET', `/v2/models/${enc(name)}`, undefined, this.options.timeoutMs);
  }

  /** `GET /v2/models/{m}/config`: the model configuration as JSON (Triton's field names). */
  async modelConfig(name: string): Promise<Record<string, unknown>> {
    return this.request<Record<string, unknown>>(
      'GET',
      `/v2/models/${enc(name)}/config`,
      undefined,
      this.options.timeoutMs,
    );
  }

  /**
   * `POST /v2/models/{m}/infer` with JSON tensors, always over HTTP. Not on the worker's task path
   * (tensors as JSON numbers); kept for tools and for comparing against the binary calls. With
   * `deadlineUnixMs` (the task's deadline) the call gives up then, if that is sooner than
   * `inferTimeoutMs`: no one waits for a later answer; `signal` aborts the call (a cancelled task).
   */
  async infer(name: string, request: InferRequest, options: InferOptions = {}): Promise<InferResponse> {
    return this.request<InferResponse>(
      'POST',
      `/v2/models/${enc(name)}/infer`,
      request,
      callTimeoutMs(this.options.inferTimeoutMs, options.deadlineUnixMs),
      options.signal,
    );
  }

  /**
   * Runs typed tensors and returns typed outputs: Triton's binary tensor extension both ways over
   * HTTP (every output asked for binary), or the transport's protocol. No JSON numbers on the way.
   * @throws TritonError (a 4xx: the tensors do not fit the model), ModelServerUnreachableError, TimeoutError.
   */
  async inferTensors(
    name: string,
    request: TensorInferRequest,
    options: InferCallOptions = {},
  ): Promise<TensorInferResponse> {
    if (this.transport) return this.transport.inferTensors(name, request, options);
    const message = encodeInferRequest(binaryOutputs(request));
    const path = `/v2/models/${enc(name)}/infer`;
    const answer = await this.postInfer(
      path,
      { body: Buffer.concat(message.chunks, message.byteLength), headerLength: message.headerLength ?? 0 },
      options,
    );
    try {
      return decodeInferResponse(answer.body, answer.headerLength > 0 ? answer.headerLength : undefined);
    } catch (err) {
      if (err instanceof KServeProtocolError)
        throw new TritonError('POST', path, 200, `the answer breaks the protocol: ${err.message}`);
      throw err;
    }
  }

  /**
   * Sends a KServe v2 HTTP infer body as it is (HTTP) or converted (the transport's protocol) and
   * returns the answer's body in the same layout, untouched over HTTP.
   */
  async inferBody(name: string, request: InferBody, options: InferCallOptions = {}): Promise<InferBody> {
    if (this.transport) return this.transport.inferBody(name, request, options);
    return this.postInfer(`/v2/models/${enc(name)}/infer`, request, options);
  }

  /** Closes the inference transport, if any, and the kept infer connections. Safe to call twice. */
  close(): void {
    this.transport?.close();
    this.agents.destroy();
  }

  /** One binary-layout POST; the answer's header length is checked against its body. */
  private async postInfer(path: string, request: InferBody, options: InferCallOptions): Promise<InferBody> {
    const base = this.url;
    const what = `POST ${base}${path}`;
    const timeoutMs = callTimeoutMs(this.options.inferTimeoutMs, options.deadlineUnixMs);
    return withTimeout(what, timeoutMs, async (timeout) => {
      const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
      const headers: Record<string, string> =
        request.headerLength > 0
          ? {
              'content-type': 'application/octet-stream',
              [INFERENCE_HEADER_CONTENT_LENGTH]: String(request.headerLength),
            }
          : { 'content-type': 'application/json' };
      let res: BinaryAnswer;
      try {
        res = await binaryPost(new URL(base + path), {
          headers,
          body: request.body,
          signal,
          limitBytes: this.options.maxResponseBytes,
          what,
          agents: this.agents,
        });
      } catch (err) {
        if (signal.aborted) throw signal.reason ?? err;
        if (err instanceof ResponseTooLargeError) throw err;
        throw new ModelServerUnreachableError(`${what}: ${errorMessage(err)}`, { cause: err });
      }
      const body = res.body;
      if (res.status < 200 || res.status > 299)
        throw new TritonError('POST', path, res.status, serverMessage(body.toString('utf8'), res.statusText));
      let headerLength: number | undefined;
      try {
        headerLength = parseHeaderLength(
          res.headers[INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase()],
          body.length,
        );
      } catch (err) {
        throw new TritonError('POST', path, res.status, errorMessage(err));
      }
      return { body, headerLength: headerLength ?? 0 };
    });
  }

  private async probe(path: string): Promise<boolean> {
    try {
      await this.request('GET', path, undefined, this.options.timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  private async request<T>(
    method: string,
    path: string,
    body: unknown,
    timeoutMs: number,
    cancel?: AbortSignal,
  ): Promise<T> {
    const base = this.url;
    return withTimeout(`${method} ${base}${path}`, timeoutMs, async (timeout) => {
      const signal = cancel ? AbortSignal.any([timeout, cancel]) : timeout;
      let res: Response;
      let text: string;
      try {
        res = await fetch(base + path, {
          method,
          signal,
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        // Bounded before anything parses it (issue 11: a small request with a huge output).
        text = await readBoundedText(res, this.options.maxResponseBytes, `${method} ${path}`);
      } catch (err) {
        if (signal.aborted || err instanceof ResponseTooLargeError) throw err;
        throw new ModelServerUnreachableError(`${method} ${base}${path}: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      if (!res.ok) throw new TritonError(method, path, res.status, serverMessage(text, res.statusText));
      if (text.length === 0) return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new TritonError(method, path, res.status, `answer is not JSON: ${text.slice(0, 200)}`);
      }
    });
  }
}

function checkUrl(url: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    // reported below
  }
  if (parsed?.protocol !== 'http:' && parsed?.protocol !== 'https:')
    throw new TypeError(`TritonClient: url must be an http(s) URL, got ${JSON.stringify(url)}`);
}

/** The request with every output asked for binary (the worker never wants JSON numbers back). */
function binaryOutputs(request: TensorInferRequest): TensorInferRequest {
  const out: TensorInferRequest = {
    ...request,
    parameters: { ...request.parameters, binary_data_output: true },
  };
  if (request.outputs) {
    out.outputs = request.outputs.map((o) => {
      if (o.parameters?.binary_data === undefined) return o;
      const { binary_data: _binary, ...rest } = o.parameters;
      return Object.keys(rest).length > 0 ? { name: o.name, parameters: rest } : { name: o.name };
    });
  }
  return out;
}

function enc(name: string): string {
  return encodeURIComponent(name);
}

function serverMessage(text: string, fallback: string): string {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed !== null && typeof parsed === 'object' && 'error' in parsed) {
      const error = (parsed as { error: unknown }).error;
      if (typeof error === 'string') return error;
      // Our own services answer {"error": {"code", "message"}}; accept that shape too.
      if (error !== null && typeof error === 'object' && 'message' in error)
        return String((error as { message: unknown }).message);
    }
  } catch {
    // Not JSON: fall through to the raw body.
  }
  return text.length > 0 ? text.slice(0, 500) : fallback;
}
