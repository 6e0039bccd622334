import { loadSettings, logLevelSchema, type LogLevel } from '@smart-routing/service-kit';
import { z } from 'zod';

export { ConfigError } from '@smart-routing/service-kit';
export type { LogLevel } from '@smart-routing/service-kit';

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8002),
  HOST: z.string().min(1).default('127.0.0.1'),
  MODEL_REPOSITORY: z.string().min(1).default('./models'),
  HF_ENDPOINT: httpUrl.default('https://huggingface.co'),
  HF_TOKEN: z.string().min(1).optional(),
  LOG_COLLECTOR_URL: httpUrl.optional(),
  LOG_LEVEL: logLevelSchema().default('info'),
  API_KEYS: z
    .string()
    .transform((v) => v.split(',').map((k) => k.trim()))
    .refine((keys) => keys.every((k) => k.length > 0), 'keys must not be empty')
    .optional(),
  LOCAL_IMPORT_ROOT: z.string().min(1).optional(),
});

/** The variable behind each setting. */
const UPLOADER_ENV = {
  port: 'PORT',
  host: 'HOST',
  repository: 'MODEL_REPOSITORY',
  hfEndpoint: 'HF_ENDPOINT',
  hfToken: 'HF_TOKEN',
  logCollectorUrl: 'LOG_COLLECTOR_URL',
  logLevel: 'LOG_LEVEL',
  apiKeys: 'API_KEYS',
  localImportRoot: 'LOCAL_IMPORT_ROOT',
} as const;

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
  // HF_ENDPOINT, HF_TOKEN and LOG_COLLECTOR_URL come from the environment only (no flags).
  const { hfToken, logCollectorUrl, apiKeys, localImportRoot, ...d } = loadSettings(envSchema, UPLOADER_ENV, {
    env,
    flags: overrides,
  });
  const config: UploaderConfig = {
    ...d,
    apiKeys: Object.freeze(apiKeys ?? []),
    ...(localImportRoot !== undefined ? { localImportRoot } : {}),
    hfEndpoint: d.hfEndpoint.replace(/\/+$/, ''),
    ...(hfToken !== undefined ? { hfToken } : {}),
    ...(logCollectorUrl !== undefined ? { logCollectorUrl } : {}),
  };
  return Object.freeze(config);
}
