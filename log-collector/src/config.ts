import { z } from 'zod';

/** Run ids become a folder name under the log dir, so no separators or dot-only names. */
export const RUN_ID_PATTERN = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,128}$/;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Log level names accepted by LOG_LEVEL. */
export type LogLevel = (typeof LOG_LEVELS)[number];

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8001),
  HOST: z.string().min(1).default('0.0.0.0'),
  LOG_DIR: z.string().min(1).default('./logs'),
  RUN_ID: z.string().regex(RUN_ID_PATTERN, 'letters, digits, ".", "_" or "-" only').optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
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

/** Thrown for a bad env var or flag; the message names the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
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
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: ConfigOverrides = {},
): LogCollectorConfig {
  const pick = (flag: string | number | undefined, name: string): string | number | undefined => {
    if (flag !== undefined && flag !== '') return flag;
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const raw = {
    PORT: pick(overrides.port, 'PORT'),
    HOST: pick(overrides.host, 'HOST'),
    LOG_DIR: pick(overrides.dir, 'LOG_DIR'),
    RUN_ID: pick(overrides.runId, 'RUN_ID'),
    LOG_LEVEL: pick(overrides.logLevel, 'LOG_LEVEL'),
  };
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`invalid ${String(issue?.path[0] ?? 'config')}: ${issue?.message ?? 'invalid'}`);
  }
  const { PORT, HOST, LOG_DIR, RUN_ID, LOG_LEVEL } = parsed.data;
  return Object.freeze({ port: PORT, host: HOST, dir: LOG_DIR, runId: RUN_ID, logLevel: LOG_LEVEL });
}
