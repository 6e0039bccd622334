import { createServiceLogger } from '@smart-routing/service-kit';
import type { Logger } from 'pino';

/**
 * The default logger of a component that was given none: the service logger (JSON to stderr at
 * LOG_LEVEL, default `info`, `service: <name>`), never shipped: the collector must not log to itself.
 */
export function defaultLogger(name: string): Logger {
  return createServiceLogger({ service: name }).logger;
}
