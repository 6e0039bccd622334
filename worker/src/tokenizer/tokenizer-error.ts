/** A `tokenizer.json` this reader cannot use: malformed, or a component it does not implement. */
export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

/** A JSON object from `tokenizer.json`, read field by field. */
export type JsonObject = Record<string, unknown>;

/** `value` as an object, or a `TokenizerError` naming `where`. */
export function asObject(value: unknown, where: string): JsonObject {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new TokenizerError(`${where}: expected an object`);
  return value as JsonObject;
}

/** An optional boolean field (null and absent give the fallback). */
export function boolField(obj: JsonObject, key: string, fallback: boolean, where: string): boolean {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new TokenizerError(`${where}.${key}: expected a boolean`);
  return v;
}

/** An optional string field (null and absent give the fallback). */
export function stringField<F extends string | undefined>(
  obj: JsonObject,
  key: string,
  fallback: F,
  where: string,
): string | F {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') throw new TokenizerError(`${where}.${key}: expected a string`);
  return v;
}

/** An optional non-negative integer field (null and absent give the fallback). */
export function intField<F extends number | undefined>(
  obj: JsonObject,
  key: string,
  fallback: F,
  where: string,
): number | F {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw new TokenizerError(`${where}.${key}: expected a non-negative integer`);
  return v;
}
