export { ConfigError, loadConfig } from './config.js';
export type { ConfigOverrides, LogLevel, UploaderConfig } from './config.js';
export { UPLOADER_ERRORS, UploaderError } from './errors.js';
export type { UploaderErrorCode } from './errors.js';
export {
  HubAuthError,
  HubClient,
  HubError,
  HubNetworkError,
  HubNotFoundError,
  HubServerError,
  TruncatedDownloadError,
} from './hub-client.js';
export type { DownloadResult, HubClientOptions, HubMissing } from './hub-client.js';
export { createLogger } from './logger.js';
export { modelNameFromId, validateModelId, validateRevision } from './model-id.js';
export { HUB_ONNX_PATH, copyFromLocal, fetchFromHub } from './model-source.js';
export type { FetchedFiles } from './model-source.js';
export { InvalidOnnxError, checkOnnxModel } from './onnx-check.js';
export type { OnnxCheckOptions, OnnxCheckResult } from './onnx-check.js';
export { RepositoryWriter } from './repository-writer.js';
export type { Staging } from './repository-writer.js';
export { startUploader } from './server.js';
export type { UploaderHandle, UploaderOptions } from './server.js';
export { MAX_BATCH_SIZE_LIMIT, buildModelConfig, validateMaxBatchSize } from './triton-config.js';
export { UPLOAD_DEFAULTS, createUploader } from './uploader.js';
export type { ModelSummary, UploadRequest, UploadResult, Uploader, UploaderCoreOptions } from './uploader.js';
