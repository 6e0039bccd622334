import { z } from 'zod';

/** The log levels every service accepts in LOG_LEVEL and `--log-level`: pino's, most severe first. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The zod schema of a LOG_LEVEL value; `message` replaces zod's default error text. */
export function logLevelSchema(message?: string): z.ZodEnum<{ [K in LogLevel]: K }> {
  return z.enum(LOG_LEVELS, message === undefined ? undefined : { error: message });
}
