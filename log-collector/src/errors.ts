import { CatalogError, defineErrorCatalog } from '@smart-routing/service-kit';

/**
 * The log collector's error catalog: code -> HTTP status -> message. Every error the collector sends
 * is `{"error": {"code", "message"}}` with one of these codes; the README lists them all.
 */
export const COLLECTOR_ERRORS = {
  invalid_json: { status: 400, message: 'the body is not valid JSON' },
  invalid_record: { status: 400, message: 'every record must be a JSON object' },
  body_too_large: { status: 413, message: 'the body is larger than the collector accepts' },
  batch_too_large: { status: 413, message: 'the batch has more records than the collector buffers' },
  unsupported_media_type: {
    status: 415,
    message: 'content-type must be application/json (an array of records) or application/x-ndjson',
  },
  not_found: { status: 404, message: 'no such route' },
  method_not_allowed: { status: 405, message: 'method not allowed on this route' },
  buffer_full: { status: 503, message: 'the collector buffer is full; retry later' },
  shutting_down: { status: 503, message: 'the collector is shutting down' },
  internal: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

/** A code from {@link COLLECTOR_ERRORS}. */
export type CollectorErrorCode = keyof typeof COLLECTOR_ERRORS;

const CATALOG = defineErrorCatalog(COLLECTOR_ERRORS);

/** An error with a catalog code; `message` is the catalog message plus an optional detail. */
export class CollectorError extends CatalogError<CollectorErrorCode> {
  constructor(code: CollectorErrorCode, detail?: string) {
    super(CATALOG, code, detail);
  }
}
