import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Finding the `redis-server` binary that `npm start -- --dispatchers N` runs when no REDIS_URL is
 * given. Looked up on PATH like a shell would, so a user's own build in ~/bin works as well as
 * Debian's /usr/bin/redis-server.
 */

/** `redis-server` is not on PATH and no REDIS_URL was given. */
export class RedisMissingError extends Error {
  override name = 'RedisMissingError';
  constructor() {
    super(
      'several dispatchers share a Redis: redis-server is not on PATH. Install it ' +
        '(Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL to a Redis you run (redis://host:port)',
    );
  }
}

/** The first executable `name` in the folders of `path` (default `$PATH`), or undefined. */
export function findOnPath(name: string, path: string = process.env.PATH ?? ''): string | undefined {
  for (const folder of path.split(delimiter)) {
    if (folder === '') continue;
    const candidate = join(folder, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The path of `redis-server` on PATH; throws RedisMissingError when there is none. */
export function redisServerBinary(path?: string): string {
  const found = findOnPath('redis-server', path);
  if (!found) throw new RedisMissingError();
  return found;
}
