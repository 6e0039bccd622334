import { z } from 'zod';

/*
 * One way every service reads its settings:
 *
 *   env vars ──┐
 *              ├─> pick per variable (a given flag wins; '' = unset) ─> zod schema ─> frozen result
 *   CLI flags ─┘        (flags are keyed by the variable they override)   │
 *                                                                         └─ bad value: ConfigError naming it
 *
 * and a CLI that gets a ConfigError prints `<program>: <message>` and exits 2 (exitOnConfigError).
 */

/**
 * Thrown for a bad setting; the message names the variable (or option). The kit never puts the value
 * in it (a schema's own message may), so a bad token does not reach a log.
 */
export class ConfigError extends Error {
  /** The variable (or option) that failed, e.g. `PORT`. */
  readonly variable: string;
  /** What is wrong with it, without the variable's name in front. */
  readonly detail: string;

  constructor(variable: string, detail: string) {
    // A message that already names the variable is not prefixed again.
    super(detail.includes(variable) ? detail : `invalid ${variable}: ${detail}`);
    this.name = 'ConfigError';
    this.variable = variable;
    this.detail = detail;
  }
}

/** The {@link ConfigError} for the first issue of a failed zod parse, naming its top-level field. */
export function configErrorFrom(error: z.ZodError): ConfigError {
  const issue = error.issues[0];
  const variable = issue && issue.path.length > 0 ? String(issue.path[0]) : 'config';
  return new ConfigError(variable, issue?.message ?? 'invalid value');
}

/**
 * Validates `value` with `schema` once and returns the result frozen (shallowly).
 * @throws ConfigError naming the first field that failed.
 */
export function parseConfig<S extends z.ZodType>(schema: S, value: unknown): Readonly<z.output<S>> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw configErrorFrom(parsed.error);
  const data = parsed.data as z.output<S>;
  return typeof data === 'object' && data !== null ? Object.freeze(data) : data;
}

/** Options of {@link loadEnv}. */
export interface LoadEnvOptions<K extends string> {
  /** Where variables are read; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** CLI flag values by the variable they override; undefined or '' = not given. Default none. */
  flags?: Partial<Record<K, string | number | undefined>>;
  /** Trim values, so whitespace-only counts as unset; default false. */
  trim?: boolean;
}

/**
 * Reads the variables named by the keys of `schema` (a zod object over env var names): a given flag
 * wins over the environment, empty strings count as unset, then the whole set is validated once and
 * returned frozen. Variables not in the schema are not read.
 * @throws ConfigError naming the variable.
 */
export function loadEnv<S extends z.ZodObject>(
  schema: S,
  options: LoadEnvOptions<Extract<keyof S['shape'], string>> = {},
): Readonly<z.output<S>> {
  const env = options.env ?? process.env;
  const flags = (options.flags ?? {}) as Record<string, string | number | undefined>;
  const clean = (value: string | number | undefined): string | number | undefined => {
    if (typeof value === 'number') return value;
    const text = options.trim ? value?.trim() : value;
    return text === undefined || text === '' ? undefined : text;
  };
  const raw: Record<string, string | number> = {};
  for (const name of Object.keys(schema.shape)) {
    const value = clean(flags[name]) ?? clean(env[name]);
    if (value !== undefined) raw[name] = value;
  }
  return parseConfig(schema, raw);
}

/**
 * For a CLI: runs `load` and returns its result; on a {@link ConfigError} writes
 * `<program>: <message>` (or `describe(err)` in place of the message) to stderr and exits with code 2.
 * Other errors are rethrown.
 */
export function exitOnConfigError<T>(
  program: string,
  load: () => T,
  describe: (err: ConfigError) => string = (err) => err.message,
): T {
  try {
    return load();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Synchronous on purpose: the process exits on the next line.
    process.stderr.write(`${program}: ${describe(err)}\n`);
    process.exit(2);
  }
}

/** Options of {@link loadSettings}: as {@link LoadEnvOptions}, with flags keyed by setting name. */
export interface LoadSettingsOptions<F extends string> {
  /** Where variables are read; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** CLI flag values by setting name; undefined or '' = not given. Default none. */
  flags?: Partial<Record<F, string | number | undefined>>;
  /** Trim values, so whitespace-only counts as unset; default false. */
  trim?: boolean;
}

/**
 * {@link loadEnv} for a service whose settings have their own names: `names` maps each setting to
 * its variable (`{ port: 'PORT' }`); flags come keyed by setting and the frozen result is keyed by
 * setting too.
 * @throws ConfigError naming the variable.
 */
export function loadSettings<
  S extends z.ZodObject,
  const N extends Record<string, Extract<keyof S['shape'], string>>,
>(
  schema: S,
  names: N,
  options: LoadSettingsOptions<Extract<keyof N, string>> = {},
): Readonly<{ -readonly [K in keyof N]: z.output<S>[N[K]] }> {
  const flags: Record<string, string | number | undefined> = {};
  for (const [setting, value] of Object.entries(options.flags ?? {})) {
    const name = names[setting];
    if (name !== undefined) flags[name] = value as string | number | undefined;
  }
  const env = loadEnv(schema, { env: options.env, flags, trim: options.trim }) as Record<string, unknown>;
  const settings: Record<string, unknown> = {};
  for (const [setting, name] of Object.entries(names)) settings[setting] = env[name];
  return Object.freeze(settings) as { -readonly [K in keyof N]: z.output<S>[N[K]] };
}
