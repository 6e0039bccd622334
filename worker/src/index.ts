export { loadWorkerConfig, randomWorkerId, WORKER_ENV, WorkerConfigError } from './config.js';
export type { WorkerConfig } from './config.js';
export { WorkerConnection, workerListenUrl } from './connection.js';
export type { WorkerConnectionOptions } from './connection.js';
export { TASK_ERRORS, TaskError, TimeoutError, withTimeout } from './errors.js';
export type { WorkerTaskErrorCode } from './errors.js';
export { MAX_TEXT_CHARS, MAX_TEXTS } from './handlers/embed-texts.js';
export type { EmbedResult } from './handlers/embed-texts.js';
export { ModelCache } from './handlers/model-cache.js';
export { ALL_HANDLERS, createHandlerRegistry } from './handlers/registry.js';
export type { HandlerContext, TaskHandler } from './handlers/types.js';
export { LabelManager } from './label-manager.js';
export type { EnsureResult, LabelChange, LabelManagerOptions } from './label-manager.js';
export { createWorkerLogger } from './logger.js';
export { startEmbeddedModelServer, startModelServer } from './model-server/index.js';
export type { EmbeddedModelServer, ModelServerHandle, ModelServerOptions } from './model-server/index.js';
export { loadTokenizer } from './tokenizer/load.js';
export { DEFAULT_MAX_LENGTH, Tokenizer } from './tokenizer/tokenizer.js';
export type { BatchEncoding, Encoding, TokenizerOptions } from './tokenizer/tokenizer.js';
export { TokenizerError } from './tokenizer/tokenizer-error.js';
export type { TokenizerErrorReason } from './tokenizer/tokenizer-error.js';
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
