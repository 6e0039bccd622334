import type { Logger } from 'pino';
import { createServiceLogger } from '@smart-routing/service-kit';

/**
 * The default logger: pino JSON to stderr at `level` (default LOG_LEVEL or 'info'), every record
 * tagged `service: "uploader"`, secrets (tokens, authorization headers) redacted.
 */
export function createLogger(level?: string): Logger {
  return createServiceLogger({ service: 'uploader', level }).logger;
}

/** A caller's logger, tagged `service: "uploader"` unless it already names a service. */
export function serviceLogger(logger: Logger | undefined): Logger {
  if (!logger) return createLogger();
  return 'service' in logger.bindings() ? logger : logger.child({ service: 'uploader' });
}
