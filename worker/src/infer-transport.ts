import type { InferRequest, InferResponse } from '@smart-routing/kserve';

/**
 * How the worker sends inferences to its model server. Two shapes of call, both without JSON
 * numbers on the way:
 *
 *   inferTensors: typed tensors ─ binary HTTP body | ModelInferRequest.raw_input_contents ─▶ server
 *                 typed tensors ◀─ binary outputs   | raw_output_contents ──────────────────┘
 *   inferBody:    a KServe v2 HTTP body (Triton's binary layout) passed on as it is (HTTP) or
 *                 converted to ModelInferRequest (gRPC); the answer comes back in the same layout.
 *
 * `TritonClient` speaks binary HTTP itself; `GrpcInferTransport` is the gRPC one
 * (`TRITON_PROTOCOL=grpc`).
 */

/** Wire protocol of the worker's infer calls (`TRITON_PROTOCOL`). */
export type TritonProtocol = 'http' | 'grpc';

/** A KServe v2 HTTP infer body: `headerLength` bytes of JSON, then binary tensors; 0 = all JSON. */
export interface InferBody {
  body: Uint8Array;
  headerLength: number;
}

/** Per-call options. */
export interface InferCallOptions {
  /** Aborts the call (the call rejects with the signal's reason). Default none. */
  signal?: AbortSignal;
  /** Wall-clock deadline (ms since the epoch; 0 or unset: none), e.g. `RunTask.deadline_unix_ms`. */
  deadlineUnixMs?: number;
}

/** One way of running inferences on the model server. */
export interface InferTransport {
  /** Which protocol it speaks. */
  readonly protocol: TritonProtocol;
  /** Runs typed tensors; every output comes back typed (asked for binary). */
  inferTensors(model: string, request: InferRequest, options?: InferCallOptions): Promise<InferResponse>;
  /** Runs one HTTP-layout body and answers in that layout (binary where the body asked for it). */
  inferBody(model: string, request: InferBody, options?: InferCallOptions): Promise<InferBody>;
  /** Releases connections. Safe to call twice. */
  close(): void;
}
