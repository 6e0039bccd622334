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
  /** pino level. Default info. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Validated model server settings. */
export interface ModelServerConfig {
  port: number;
  host: string;
  repository: string;
  logLevel: string;
}

/** Thrown when a setting is invalid; the message names the variable. */
export class ModelServerConfigError extends Error {
  override name = 'ModelServerConfigError';
}

/** Reads PORT, HOST, MODEL_REPOSITORY and LOG_LEVEL (empty strings count as unset). */
export function loadModelServerConfig(env: NodeJS.ProcessEnv = process.env): ModelServerConfig {
  const picked = Object.fromEntries(
    ['PORT', 'HOST', 'MODEL_REPOSITORY', 'LOG_LEVEL'].map((k) => [k, env[k] === '' ? undefined : env[k]]),
  );
  const parsed = schema.safeParse(picked);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ModelServerConfigError(`${issue.path.join('.')}: ${issue.message}`);
  }
  const c = parsed.data;
  return Object.freeze({ port: c.PORT, host: c.HOST, repository: c.MODEL_REPOSITORY, logLevel: c.LOG_LEVEL });
}
