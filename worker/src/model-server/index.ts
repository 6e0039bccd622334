export {
  startModelServer,
  defaultModelServerLogger,
  MODEL_SERVER_NAME,
  MODEL_SERVER_VERSION,
} from './server.js';
export type { ModelServerHandle, ModelServerOptions } from './server.js';
export { startEmbeddedModelServer, defaultModelServerCliPath } from './embedded.js';
export type { EmbeddedModelServer, EmbeddedModelServerOptions } from './embedded.js';
export { loadModelServerConfig, ModelServerConfigError } from './config.js';
export type { ModelServerConfig } from './config.js';
export { ModelServerError } from './errors.js';
export type { ModelState, RepositoryIndexEntry } from './model-store.js';
export type { InferResponseBody, InferOutputTensor } from './infer-response.js';
export { DEFAULT_SESSION_OPTIONS } from './session-thread.js';
