/**
 * The embedded model server's error catalog. It mimics Triton, whose HTTP errors are
 * `{"error": "<message>"}`; the messages below are Triton's own wording (core
 * model_repository_manager.cc / model_lifecycle.cc) so a client written against Triton reads
 * both servers the same way. Status: 400 for every client-visible failure, as Triton's HTTP
 * frontend answered for these cases (newer Triton releases answer some of them 404/500/503; a
 * client should key on the message, e.g. "failed to poll from model repository" = no such model).
 */

/** An error answered as `{"error": message}` with `status`. */
export class ModelServerError extends Error {
  override name = 'ModelServerError';
  constructor(
    /** HTTP status. */
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Message builders, one per situation. */
export const MODEL_SERVER_ERRORS = {
  /** Load of a model the repository does not have (no folder or no config.pbtxt). */
  notInRepository: (model: string) =>
    new ModelServerError(400, `failed to load '${model}', failed to poll from model repository`),
  /** config.pbtxt exists but cannot be parsed. */
  badConfig: (model: string, reason: string) =>
    new ModelServerError(
      400,
      `failed to load '${model}', Poll failed for model directory '${model}': ${reason}`,
    ),
  /** No numeric version folder holds a model file. */
  noVersion: (model: string) =>
    new ModelServerError(400, `failed to load '${model}', no version is available`),
  /** The runtime refused the model (bad ONNX, config and graph disagree, thread died). */
  loadFailed: (model: string, version: number, reason: string) =>
    new ModelServerError(
      400,
      `load failed for model '${model}': version ${version} is at UNAVAILABLE state: ${reason}`,
    ),
  /** Request for a model that was never loaded and is not known. */
  unknownModel: (model: string) =>
    new ModelServerError(400, `Request for unknown model: '${model}' is not found`),
  /** Request for a known model with no ready version (not loaded yet, unloaded, failed). */
  noAvailableVersions: (model: string) =>
    new ModelServerError(400, `Request for unknown model: '${model}' has no available versions`),
  /** Request for a version that is not the loaded one. */
  unknownVersion: (model: string, version: string) =>
    new ModelServerError(400, `Request for unknown model: '${model}' version ${version} is not found`),
  /** The request body is not JSON. */
  badJson: (reason: string) =>
    new ModelServerError(400, `failed to parse the request JSON buffer: ${reason}`),
  /** The request body is valid JSON but not a valid request. */
  badRequest: (message: string) => new ModelServerError(400, message),
  /** The body exceeds the limit. */
  bodyTooLarge: (limit: number) =>
    new ModelServerError(413, `request body is larger than the limit of ${limit} bytes`),
  /** The encoded response would exceed the server's response bound. */
  responseTooLarge: (model: string, size: number, limit: number) =>
    new ModelServerError(
      400,
      `the response of model '${model}' would be ${size} bytes, more than the server's limit of ${limit} bytes (MAX_RESPONSE_BYTES)`,
    ),
  /** The runtime failed while running the model. */
  inferenceFailed: (model: string, reason: string) =>
    new ModelServerError(400, `inference failed for model '${model}': ${reason}`),
  /** No such endpoint. */
  notFound: (method: string, path: string) => new ModelServerError(404, `Not Found: ${method} ${path}`),
  /** Known path, wrong method. */
  methodNotAllowed: (method: string, path: string) =>
    new ModelServerError(405, `Method Not Allowed: ${method} ${path}`),
  /** The server is closing. */
  shuttingDown: () => new ModelServerError(503, 'Server is shutting down'),
  /** A bug: never expected, logged. */
  internal: (reason: string) => new ModelServerError(500, `internal error: ${reason}`),
} as const;
