import { pino, type Logger } from 'pino';

/**
 * The default logger: pino JSON to stderr at `level` (default LOG_LEVEL or 'info'), asynchronous so
 * logging never waits on the terminal, every record tagged `service: "dispatcher"`.
 */
export function createLogger(level: string = process.env.LOG_LEVEL || 'info'): Logger {
  return pino(
    {
      level,
      base: { service: 'dispatcher' },
      redact: { paths: ['token', 'authorization'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** A caller's logger, tagged `service: "dispatcher"` unless it already names a service. */
export function serviceLogger(logger: Logger | undefined): Logger {
  if (!logger) return createLogger();
  return 'service' in logger.bindings() ? logger : logger.child({ service: 'dispatcher' });
}
