export { startLogCollector, defaultRunId } from './collector.js';
export type { CollectorStats, LogCollectorHandle, LogCollectorOptions } from './collector.js';
export { ConfigError, loadConfig } from './config.js';
export type { ConfigOverrides, LogCollectorConfig, LogLevel } from './config.js';
export { COLLECTOR_ERRORS, CollectorError } from './errors.js';
export type { CollectorErrorCode } from './errors.js';
