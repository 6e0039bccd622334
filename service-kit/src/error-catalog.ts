/** One catalog row: the HTTP status a code is answered with and its default message. */
export interface CatalogEntry {
  readonly status: number;
  readonly message: string;
}

/** The JSON body of every error a service sends. */
export interface ErrorBody<C extends string = string> {
  error: { code: C; message: string };
}

/** Options of {@link defineErrorCatalog}. */
export interface ErrorCatalogOptions {
  /**
   * What a detail given to an error does to the catalog message: `append` gives
   * `<catalog message>: <detail>`, `replace` gives the detail alone. Default `append`.
   */
  detail?: 'append' | 'replace';
}

/** A validated, frozen catalog: code -> status -> default message. */
export interface ErrorCatalog<C extends string = string> {
  /** The rows, as given (frozen). */
  readonly entries: Readonly<Record<C, CatalogEntry>>;
  /** Every code, in the order given. */
  readonly codes: readonly C[];
  /** The message an error with `code` and an optional `detail` carries. */
  message(code: C, detail?: string): string;
}

/**
 * Builds a package's error catalog from its rows. Throws at once (caller misuse) when a code is not
 * snake_case, a status is not 4xx/5xx or a message is empty, so a bad row fails at import time.
 */
export function defineErrorCatalog<C extends string>(
  entries: Record<C, CatalogEntry>,
  options: ErrorCatalogOptions = {},
): ErrorCatalog<C> {
  const detailMode = options.detail ?? 'append';
  const codes = Object.keys(entries) as C[];
  for (const code of codes) {
    const { status, message } = entries[code];
    if (!/^[a-z][a-z0-9_]*$/.test(code))
      throw new TypeError(`defineErrorCatalog: code ${code} is not snake_case`);
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new TypeError(`defineErrorCatalog: ${code} has status ${status}, not 4xx or 5xx`);
    }
    if (typeof message !== 'string' || message.length === 0) {
      throw new TypeError(`defineErrorCatalog: ${code} has no message`);
    }
  }
  return Object.freeze({
    entries: Object.freeze(entries),
    codes: Object.freeze(codes),
    message(code: C, detail?: string): string {
      const base = entries[code].message;
      if (!detail) return base;
      return detailMode === 'replace' ? detail : `${base}: ${detail}`;
    },
  });
}

/** Options of a {@link CatalogError}. */
export interface CatalogErrorOptions {
  /** The error that caused this one. */
  cause?: unknown;
  /** Seconds for a `Retry-After` header; default none. */
  retryAfterS?: number;
}

/**
 * An error with a catalog code. Each package subclasses it once, binding its own catalog:
 *
 *   class UploaderError extends CatalogError<UploaderErrorCode> {
 *     constructor(code: UploaderErrorCode, detail?: string) { super(UPLOADER_CATALOG, code, detail); }
 *   }
 *
 * `name` is the subclass's name.
 */
export class CatalogError<C extends string = string> extends Error {
  readonly code: C;
  /** The HTTP status from the catalog. */
  readonly status: number;
  /** Seconds for a `Retry-After` header, when the error carries one. */
  readonly retryAfterS: number | undefined;

  constructor(catalog: ErrorCatalog<C>, code: C, detail?: string, options: CatalogErrorOptions = {}) {
    super(catalog.message(code, detail), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = catalog.entries[code].status;
    this.retryAfterS = options.retryAfterS;
  }

  /** The JSON body sent to the client. */
  toBody(): ErrorBody<C> {
    return { error: { code: this.code, message: this.message } };
  }
}
