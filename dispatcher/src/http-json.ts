import type { ServerResponse } from 'node:http';
import { DispatcherError } from './errors.js';

/** Writes a JSON answer with Node's own response API (Express's `res` is one too). */
export function writeJson(res: ServerResponse, status: number, text: string, retryAfterS?: number): void {
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  };
  if (retryAfterS !== undefined) headers['Retry-After'] = String(retryAfterS);
  res.writeHead(status, headers).end(text);
}

/** Writes `err` as `{"error": {"code", "message"}}` with its status (and Retry-After). */
export function sendError(res: ServerResponse, err: DispatcherError): void {
  writeJson(res, err.status, JSON.stringify(err.toBody()), err.retryAfterS);
}

/** Maps anything thrown while serving a request (body-parser's errors included) to a catalog error. */
export function toDispatcherError(err: unknown, maxBodyBytes: number): DispatcherError {
  if (err instanceof DispatcherError) return err;
  const e = err as { type?: string; status?: number; message?: string };
  switch (e.type) {
    case 'entity.parse.failed':
      return new DispatcherError('invalid_request', `the body is not valid JSON: ${e.message}`);
    case 'entity.too.large':
      return new DispatcherError('payload_too_large', `the body is larger than ${maxBodyBytes} bytes`);
    default:
      if (typeof e.status === 'number' && e.status >= 400 && e.status < 500)
        return new DispatcherError('invalid_request', e.message ?? 'bad request');
      return new DispatcherError('internal');
  }
}

/** The `invalid_request` error for a failed zod check, naming the first field at fault. */
export function invalidRequest(error: {
  issues: readonly { path: PropertyKey[]; message: string }[];
}): DispatcherError {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : 'body: ';
  return new DispatcherError('invalid_request', `${where}${issue?.message ?? 'invalid'}`);
}
