import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const digest = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * The tenant name of a key configured without a name: a digest prefix, so logs and fair-queueing
 * state never hold the key itself.
 */
export function unnamedKeyTenant(key: string): string {
  return `key-${digest(key).slice(0, 8)}`;
}

/**
 * Who sent a request: the name of the API key it carries (`Authorization: Bearer <key>` or
 * `x-api-key`), null when it carries none of them; undefined (one shared tenant) when no keys are
 * configured. Named keys (`namedApiKeys`, name -> key) give their name; keys in `apiKeys` that
 * have none are named by {@link unnamedKeyTenant}. The name is the producer's tenant for fair
 * queueing (TaskSpec.tenant).
 */
export function createKeyIdentifier(
  apiKeys: readonly string[],
  namedApiKeys: Readonly<Record<string, string>> = {},
): (headers: IncomingHttpHeaders) => string | undefined | null {
  const names = new Map<string, string>();
  for (const key of apiKeys) names.set(digest(key), unnamedKeyTenant(key));
  for (const [name, key] of Object.entries(namedApiKeys)) names.set(digest(key), name);
  return (headers) => {
    if (names.size === 0) return undefined;
    const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1]?.trim();
    const key = bearer ?? headers['x-api-key'];
    // Looking up digests keeps the map lookup from leaking how much of a key matched.
    return typeof key === 'string' ? (names.get(digest(key)) ?? null) : null;
  };
}

/**
 * Whether a request carries one of `apiKeys` (`Authorization: Bearer <key>` or `x-api-key`);
 * always true when none are configured.
 */
export function createAuthorizer(apiKeys: readonly string[]): (headers: IncomingHttpHeaders) => boolean {
  const identify = createKeyIdentifier(apiKeys);
  return (headers) => identify(headers) !== null;
}
