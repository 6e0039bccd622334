import { pino, type Logger } from 'pino';

/**
 * The default logger of a component that was given none: JSON to stderr at LOG_LEVEL (default
 * `info`), asynchronous so logging never waits on the terminal; pino flushes it on exit.
 */
export function defaultLogger(name: string): Logger {
  const level = process.env.LOG_LEVEL || 'info';
  return pino({ name, level }, pino.destination({ fd: 2, sync: false }));
}
