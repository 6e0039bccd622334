/**
 * Paging for `TaskStore.list`, shared by every store so their cursors mean the same thing.
 * Listing is newest first by (queuedAt, taskId); a cursor is the last row of a page, opaque to
 * callers (base64url JSON), so a page never shifts when tasks are added in front of it.
 */

/** `TaskStore.list`'s `limit` when none is given. */
export const DEFAULT_LIST_LIMIT = 50;
/** The largest `limit` `TaskStore.list` honours; larger ones are clamped. */
export const MAX_LIST_LIMIT = 500;

/** A `cursor` that no store handed out (the API answers it with a 400). */
export class InvalidCursorError extends Error {
  constructor(cursor: string) {
    super(`invalid cursor ${JSON.stringify(cursor.slice(0, 64))}: pass back a nextCursor unchanged`);
    this.name = 'InvalidCursorError';
  }
}

/** Where a page starts: strictly after (older than) this row. */
export interface PagePosition {
  readonly queuedAt: number;
  readonly taskId: string;
}

/** The cursor for a page that ends at `row`. */
export function encodeCursor(row: PagePosition): string {
  return Buffer.from(JSON.stringify([row.queuedAt, row.taskId])).toString('base64url');
}

/** Reads a cursor back. @throws InvalidCursorError when it is not one of ours. */
export function decodeCursor(cursor: string): PagePosition {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError(cursor);
  }
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    !Number.isSafeInteger(value[0]) ||
    typeof value[1] !== 'string'
  ) {
    throw new InvalidCursorError(cursor);
  }
  return { queuedAt: value[0] as number, taskId: value[1] };
}

/** `limit` clamped to 1..{@link MAX_LIST_LIMIT}, {@link DEFAULT_LIST_LIMIT} when unset. */
export function pageLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_LIST_LIMIT;
  return Math.min(MAX_LIST_LIMIT, Math.max(1, Math.floor(limit)));
}

/** Newest first: a before b when a is newer (then the larger id first, as the stores' indexes). */
export function compareNewestFirst(a: PagePosition, b: PagePosition): number {
  if (a.queuedAt !== b.queuedAt) return b.queuedAt - a.queuedAt;
  // By UTF-8 bytes, as SQLite's BINARY collation and Redis's lex order compare them.
  return Buffer.compare(Buffer.from(b.taskId), Buffer.from(a.taskId));
}
