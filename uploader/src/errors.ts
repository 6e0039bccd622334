import { CatalogError, defineErrorCatalog } from '@smart-routing/service-kit';

/**
 * The uploader's error catalog: code -> HTTP status -> message. Every error the uploader sends is
 * `{"error": {"code", "message"}}` with one of these codes; the README lists them all.
 */
export const UPLOADER_ERRORS = {
  invalid_request: { status: 400, message: 'the request is invalid' },
  invalid_model_id: {
    status: 400,
    message: "model_id must look like 'name' or 'owner/name' (letters, digits, '_', '.', '-'; no '..')",
  },
  unauthorized: {
    status: 401,
    message: 'missing or wrong API key (Authorization: Bearer <key> or x-api-key)',
  },
  local_import_disabled: { status: 403, message: 'local imports are off on this uploader' },
  local_path_forbidden: { status: 403, message: 'the local path is not allowed' },
  not_found: { status: 404, message: 'no such route' },
  model_not_found: { status: 404, message: 'the model does not exist' },
  hub_unauthorized: {
    status: 403,
    message:
      'the hub refused access; the model may be private or gated (set HF_TOKEN to a token with access)',
  },
  model_exists: {
    status: 409,
    message: 'the model is already in the repository (send overwrite: true to replace it)',
  },
  upload_in_progress: { status: 409, message: 'an upload of this model is already in progress' },
  payload_too_large: { status: 413, message: 'the request body is too large' },
  no_onnx_export: { status: 422, message: 'the model has no ONNX export' },
  invalid_onnx: { status: 422, message: 'the model is not a valid ONNX model' },
  internal: { status: 500, message: 'internal error' },
  hub_error: { status: 502, message: 'the hub failed' },
  shutting_down: { status: 503, message: 'the uploader is shutting down' },
} as const satisfies Record<string, { status: number; message: string }>;

/** A code from {@link UPLOADER_ERRORS}. */
export type UploaderErrorCode = keyof typeof UPLOADER_ERRORS;

const CATALOG = defineErrorCatalog(UPLOADER_ERRORS);

/** An error with a catalog code; `message` is the catalog message plus an optional detail. */
export class UploaderError extends CatalogError<UploaderErrorCode> {
  constructor(code: UploaderErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(CATALOG, code, detail, options);
  }
}
