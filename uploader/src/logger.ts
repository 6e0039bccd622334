import pino, { type Logger } from 'pino';

/** Keys whose values are never written, wherever a caller puts them. */
const REDACT = ['token', 'hfToken', 'hf_token', 'authorization', 'headers.authorization', '*.authorization'];

/**
 * The default logger: pino JSON to stderr at `level` (default LOG_LEVEL or 'info'), every record
 * tagged `service: "uploader"`.
 */
export function createLogger(level: string = process.env.LOG_LEVEL || 'info'): Logger {
  return pino(
    { level, base: { service: 'uploader' }, redact: { paths: REDACT, censor: '[redacted]' } },
    pino.destination(2),
  );
}

/** A caller's logger, tagged `service: "uploader"` unless it already names a service. */
export function serviceLogger(logger: Logger | undefined): Logger {
  if (!logger) return createLogger();
  return 'service' in logger.bindings() ? logger : logger.child({ service: 'uploader' });
}
