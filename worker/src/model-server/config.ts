import { ConfigError, loadSettings, logLevelSchema } from '@smart-routing/service-kit';
import { z } from 'zod';

/**
 * Settings of the standalone model server (`smart-routing-model-server`), from the environment;
 * CLI flags override them.
 */

const schema = z.object({
  /** Port to listen on; 0 picks a free one. Default 8000. */
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  /** Interface to listen on. Default 127.0.0.1. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Model repository folder. Default ./models. */
  MODEL_REPOSITORY: z.string().min(1).default('./models'),
  /** Largest request body, in bytes (413 above). Default 64 MiB. */
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(64 * 1024 * 1024),
  /** Largest infer response, in bytes (an error above). Default 64 MiB. */
  MAX_RESPONSE_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(64 * 1024 * 1024),
  /** Port of the KServe v2 gRPC front; unset = no gRPC front. */
  GRPC_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** pino level. Default info. */
  LOG_LEVEL: logLevelSchema().default('info'),
});

/** Validated model server settings. */
export interface ModelServerConfig {
  port: number;
  host: string;
  repository: string;
  logLevel: string;
  maxBodyBytes: number;
  maxResponseBytes: number;
  /** Undefined when the gRPC front is off. */
  grpcPort?: number;
}

/** Thrown when a setting is invalid; the message names the variable (the kit's ConfigError). */
export const ModelServerConfigError = ConfigError;
/** The type of {@link ModelServerConfigError}. */
export type ModelServerConfigError = ConfigError;

/** CLI flag values that override the environment (undefined = not given). */
export interface ModelServerOverrides {
  port?: string | number;
  host?: string;
  repository?: string;
}

/**
 * Reads PORT, HOST, MODEL_REPOSITORY, LOG_LEVEL, MAX_BODY_BYTES, MAX_RESPONSE_BYTES and GRPC_PORT
 * (empty strings count as unset), with `overrides` (CLI flags) on top; validated once, returned frozen.
 * @throws ModelServerConfigError naming the variable.
 */
export function loadModelServerConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: ModelServerOverrides = {},
): ModelServerConfig {
  return loadSettings(
    schema,
    {
      port: 'PORT',
      host: 'HOST',
      repository: 'MODEL_REPOSITORY',
      logLevel: 'LOG_LEVEL',
      maxBodyBytes: 'MAX_BODY_BYTES',
      maxResponseBytes: 'MAX_RESPONSE_BYTES',
      grpcPort: 'GRPC_PORT',
    },
    { env, flags: overrides },
  );
}
