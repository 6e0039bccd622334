/**
 * @smart-routing/service-kit — the plumbing every smart-routing service shares: settings from env
 * vars and flags, log levels, the service logger and its log shipper, error catalogs, a bounded
 * body reader, and listen/close with the advertised URL.
 */
export {
  BodyAbortedError,
  BodyTooLargeError,
  readBody,
  readJsonBody,
  tooLargeDetail,
} from './body-reader.js';
export type { BodyTooLargeInfo, ReadBodyOptions, ReadJsonBodyOptions } from './body-reader.js';
export {
  ConfigError,
  configErrorFrom,
  exitOnConfigError,
  loadEnv,
  loadSettings,
  parseConfig,
} from './env-config.js';
export type { LoadEnvOptions, LoadSettingsOptions } from './env-config.js';
export { CatalogError, defineErrorCatalog } from './error-catalog.js';
export type {
  CatalogEntry,
  CatalogErrorOptions,
  ErrorBody,
  ErrorCatalog,
  ErrorCatalogOptions,
} from './error-catalog.js';
export { advertisedHost, advertisedUrl, listen } from './listen.js';
export type { ListenOptions, ListeningServer } from './listen.js';
export { LOG_LEVELS, logLevelSchema } from './log-levels.js';
export type { LogLevel } from './log-levels.js';
export { createLogShipper } from './log-shipper.js';
export type { DropReason, LogShipper, LogShipperOptions } from './log-shipper.js';
export { createServiceLogger } from './service-logger.js';
export type { ServiceLogger, ServiceLoggerOptions } from './service-logger.js';
