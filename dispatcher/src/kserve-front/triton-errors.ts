import * as grpc from '@grpc/grpc-js';
import type { ServerResponse } from 'node:http';
import type { DispatcherError } from '../errors.js';

/**
 * Errors on the KServe v2 fronts, in Triton's shape: HTTP `{"error": "<message>"}` with the
 * catalog's status (and Retry-After on 503s), gRPC a status code with the message as details.
 * The dispatcher's own routes keep `{"error": {"code", "message"}}`.
 */

/** Writes `{"error": message}` with `status` (and Retry-After). */
export function sendTritonError(
  res: ServerResponse,
  status: number,
  message: string,
  retryAfterS?: number,
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify({ error: message });
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  };
  if (retryAfterS !== undefined) headers['Retry-After'] = String(retryAfterS);
  res.writeHead(status, headers).end(text);
}

/** Writes a catalog error in Triton's shape. */
export function sendTritonDispatcherError(res: ServerResponse, err: DispatcherError): void {
  sendTritonError(res, err.status, err.message, err.retryAfterS);
}

/** gRPC code for an HTTP status (as Triton maps its own errors). */
export function grpcCodeOfStatus(status: number): grpc.status {
  switch (status) {
    case 400:
      return grpc.status.INVALID_ARGUMENT;
    case 401:
      return grpc.status.UNAUTHENTICATED;
    case 404:
      return grpc.status.NOT_FOUND;
    case 409:
      return grpc.status.ALREADY_EXISTS;
    case 413:
      return grpc.status.RESOURCE_EXHAUSTED;
    case 503:
      return grpc.status.UNAVAILABLE;
    case 504:
      return grpc.status.DEADLINE_EXCEEDED;
    default:
      return grpc.status.INTERNAL;
  }
}

/** A catalog error as a gRPC error (Retry-After, when there is one, as `retry-after` trailing metadata). */
export function grpcErrorOf(err: DispatcherError): Partial<grpc.ServiceError> {
  const out: Partial<grpc.ServiceError> = {
    code: grpcCodeOfStatus(err.status),
    details: err.message,
    message: err.message,
  };
  if (err.retryAfterS !== undefined) {
    const metadata = new grpc.Metadata();
    metadata.set('retry-after', String(err.retryAfterS));
    out.metadata = metadata;
  }
  return out;
}
