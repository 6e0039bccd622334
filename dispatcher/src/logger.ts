import type { Logger } from 'pino';
import { createServiceLogger } from '@smart-routing/service-kit';

/**
 * The default logger: pino JSON to stderr at `level` (default LOG_LEVEL or 'info'), every record
 * tagged `service: "dispatcher"`, secrets redacted (the shared service logger without a collector).
 */
export function createLogger(level?: string): Logger {
  return createServiceLogger({ service: 'dispatcher', level }).logger;
}

/** A caller's logger, tagged `service: "dispatcher"` unless it already names a service. */
export function serviceLogger(logger: Logger | undefined): Logger {
  if (!logger) return createLogger();
  return 'service' in logger.bindings() ? logger : logger.child({ service: 'dispatcher' });
}
