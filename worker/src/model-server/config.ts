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
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
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

/** Thrown when a setting is invalid; the message names the variable. */
export class ModelServerConfigError extends Error {
  override name = 'ModelServerConfigError';
}

/** Reads PORT, HOST, MODEL_REPOSITORY, LOG_LEVEL, MAX_BODY_BYTES, MAX_RESPONSE_BYTES and GRPC_PORT (empty strings count as unset). */
export function loadModelServerConfig(env: NodeJS.ProcessEnv = process.env): ModelServerConfig {
  const picked = Object.fromEntries(
    [
      'PORT',
      'HOST',
      'MODEL_REPOSITORY',
      'LOG_LEVEL',
      'MAX_BODY_BYTES',
      'MAX_RESPONSE_BYTES',
      'GRPC_PORT',
    ].map((k) => [k, env[k] === '' ? undefined : env[k]]),
  );
  const parsed = schema.safeParse(picked);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ModelServerConfigError(`${issue.path.join('.')}: ${issue.message}`);
  }
  const c = parsed.data;
  return Object.freeze({
    port: c.PORT,
    host: c.HOST,
    repository: c.MODEL_REPOSITORY,
    logLevel: c.LOG_LEVEL,
    maxBodyBytes: c.MAX_BODY_BYTES,
    maxResponseBytes: c.MAX_RESPONSE_BYTES,
    ...(c.GRPC_PORT === undefined ? {} : { grpcPort: c.GRPC_PORT }),
  });
}
