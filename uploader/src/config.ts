import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Log level names accepted by LOG_LEVEL. */
export type LogLevel = (typeof LOG_LEVELS)[number];

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8002),
  HOST: z.string().min(1).default('127.0.0.1'),
  MODEL_REPOSITORY: z.string().min(1).default('./models'),
  HF_ENDPOINT: httpUrl.default('https://huggingface.co'),
  HF_TOKEN: z.string().min(1).optional(),
  LOG_COLLECTOR_URL: httpUrl.optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  API_KEYS: z
    .string()
    .transform((v) => v.split(',').map((k) => k.trim()))
    .refine((keys) => keys.every((k) => k.length > 0), 'keys must not be empty')
    .optional(),
  LOCAL_IMPORT_ROOT: z.string().min(1).optional(),
});

/** The uploader's process configuration (env vars, then CLI flags on top). */
export interface UploaderConfig {
  /** PORT, default 8002 (0 = any free port). */
  readonly port: number;
  /** HOST, default `127.0.0.1` (loopback; set `0.0.0.0` to serve other hosts). */
  readonly host: string;
  /** MODEL_REPOSITORY, default `./models`: the local folder models are written to. */
  readonly repository: string;
  /** HF_ENDPOINT, default `https://huggingface.co` (no trailing slash). */
  readonly hfEndpoint: string;
  /** HF_TOKEN, default unset: sent as `Authorization: Bearer` to the hub. Never logged. */
  readonly hfToken?: string;
  /** LOG_COLLECTOR_URL, default unset. */
  readonly logCollectorUrl?: string;
  /** LOG_LEVEL, default `info`. */
  readonly logLevel: LogLevel;
  /** API_KEYS, comma-separated, default none (no auth): the same keys as the dispatcher's. Never logged. */
  readonly apiKeys: readonly string[];
  /** LOCAL_IMPORT_ROOT, default unset: `source: "local"` over HTTP is refused unless set. */
  readonly localImportRoot?: string;
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
  repository?: string;
  logLevel?: string;
}

/**
 * Reads PORT, HOST, MODEL_REPOSITORY, HF_ENDPOINT, HF_TOKEN, LOG_COLLECTOR_URL, LOG_LEVEL, API_KEYS
 * and LOCAL_IMPORT_ROOT from
 * `env` (empty strings count as unset), applies `overrides` (CLI flags) on top, validates once and
 * returns a frozen config.
 * @throws ConfigError naming the variable.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: ConfigOverrides = {},
): UploaderConfig {
  const pick = (flag: string | number | undefined, name: string): string | number | undefined => {
    if (flag !== undefined && flag !== '') return flag;
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const raw = {
    PORT: pick(overrides.port, 'PORT'),
    HOST: pick(overrides.host, 'HOST'),
    MODEL_REPOSITORY: pick(overrides.repository, 'MODEL_REPOSITORY'),
    HF_ENDPOINT: pick(undefined, 'HF_ENDPOINT'),
    HF_TOKEN: pick(undefined, 'HF_TOKEN'),
    LOG_COLLECTOR_URL: pick(undefined, 'LOG_COLLECTOR_URL'),
    LOG_LEVEL: pick(overrides.logLevel, 'LOG_LEVEL'),
    API_KEYS: pick(undefined, 'API_KEYS'),
    LOCAL_IMPORT_ROOT: pick(undefined, 'LOCAL_IMPORT_ROOT'),
  };
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    // Never echo the value: it could be the token.
    throw new ConfigError(`invalid ${String(issue?.path[0] ?? 'config')}: ${issue?.message ?? 'invalid'}`);
  }
  const d = parsed.data;
  const config: UploaderConfig = {
    port: d.PORT,
    host: d.HOST,
    repository: d.MODEL_REPOSITORY,
    hfEndpoint: d.HF_ENDPOINT.replace(/\/+$/, ''),
    logLevel: d.LOG_LEVEL,
    apiKeys: Object.freeze(d.API_KEYS ?? []),
    ...(d.LOCAL_IMPORT_ROOT !== undefined ? { localImportRoot: d.LOCAL_IMPORT_ROOT } : {}),
    ...(d.HF_TOKEN !== undefined ? { hfToken: d.HF_TOKEN } : {}),
    ...(d.LOG_COLLECTOR_URL !== undefined ? { logCollectorUrl: d.LOG_COLLECTOR_URL } : {}),
  };
  return Object.freeze(config);
}
