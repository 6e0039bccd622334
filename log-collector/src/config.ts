import { loadSettings, logLevelSchema, type LogLevel } from '@smart-routing/service-kit';
import { z } from 'zod';

/** Run ids become a folder name under the log dir, so no separators or dot-only names. */
export const RUN_ID_PATTERN = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,128}$/;

export { ConfigError } from '@smart-routing/service-kit';
export type { LogLevel } from '@smart-routing/service-kit';

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8001),
  HOST: z.string().min(1).default('0.0.0.0'),
  LOG_DIR: z.string().min(1).default('./logs'),
  RUN_ID: z.string().regex(RUN_ID_PATTERN, 'letters, digits, ".", "_" or "-" only').optional(),
  LOG_LEVEL: logLevelSchema().default('info'),
});

/** The collector's process configuration (env vars, then CLI flags on top). */
export interface LogCollectorConfig {
  /** PORT, default 8001 (0 = any free port). */
  readonly port: number;
  /** HOST, default `0.0.0.0`. */
  readonly host: string;
  /** LOG_DIR, default `./logs`; the file is `<dir>/<runId>/collector.log`. */
  readonly dir: string;
  /** RUN_ID, default: a timestamp chosen at start. */
  readonly runId?: string;
  /** LOG_LEVEL of the collector's own logs, default `info`. */
  readonly logLevel: LogLevel;
}

/** CLI flag values that override the environment (undefined = not given). */
export interface ConfigOverrides {
  port?: string | number;
  host?: string;
  dir?: string;
  runId?: string;
  logLevel?: string;
}

/**
 * Reads PORT, HOST, LOG_DIR, RUN_ID and LOG_LEVEL from `env` (empty strings count as unset), applies
 * `overrides` (CLI flags) on top, validates once and returns a frozen config.
 * @throws ConfigError naming the variable.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: ConfigOverrides = {},
): LogCollectorConfig {
  return loadSettings(
    envSchema,
    { port: 'PORT', host: 'HOST', dir: 'LOG_DIR', runId: 'RUN_ID', logLevel: 'LOG_LEVEL' },
    { env, flags: overrides },
  );
}
