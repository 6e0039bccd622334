// The worker package's public surface: start a worker, add task types, talk to a Triton server.
// Internals (the dispatcher link, the task runner, label bookkeeping, tokenizers) stay unexported.
export { loadWorkerConfig, randomWorkerId, WORKER_ENV, WorkerConfigError } from './config.js';
export type { WorkerConfig } from './config.js';
export { TASK_ERRORS, TaskError } from './errors.js';
export { HandlerPluginError, loadHandlerPlugins } from './handler-plugins.js';
export type { WorkerTaskErrorCode } from './errors.js';
export type { EmbedResult } from './handlers/embed-texts.js';
export type { ModelCache, ModelInfo } from './handlers/model-cache.js';
export type { InferResult } from './handlers/infer.js';
export { binaryTaskResult, isBinaryTaskResult, parseWith } from './handlers/types.js';
export type { BinaryTaskResult, HandlerContext, TaskHandler } from './handlers/types.js';
export { GrpcInferTransport } from './grpc-infer-transport.js';
export type { GrpcInferTransportOptions } from './grpc-infer-transport.js';
export type { InferBody, InferCallOptions, InferTransport, TritonProtocol } from './infer-transport.js';
export { DEFAULT_SESSION_OPTIONS, startEmbeddedModelServer, startModelServer } from './model-server/index.js';
export type { EmbeddedModelServer, ModelServerHandle, ModelServerOptions } from './model-server/index.js';
export { TritonClient, ModelServerUnreachableError, TritonError } from './triton-client.js';
export type {
  InferRequest,
  InferResponse,
  InferTensor,
  ModelMetadata,
  RepositoryIndexEntry,
  TensorMetadata,
  TritonClientOptions,
} from './triton-client.js';
export { startWorker } from './worker.js';
export type { WorkerHandle, WorkerOptions } from './worker.js';
