import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const digest = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * Whether a request carries one of `apiKeys` (`Authorization: Bearer <key>` or `x-api-key`);
 * always true when none are configured.
 */
export function createAuthorizer(apiKeys: readonly string[]): (headers: IncomingHttpHeaders) => boolean {
  const keyDigests = new Set(apiKeys.map(digest));
  return (headers) => {
    if (keyDigests.size === 0) return true;
    const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1]?.trim();
    const key = bearer ?? headers['x-api-key'];
    // Comparing digests keeps the set lookup from leaking how much of a key matched.
    return typeof key === 'string' && keyDigests.has(digest(key));
  };
}
