import { DispatcherError } from './errors.js';

/** The uploader's answer, relayed as is. */
export interface UploaderAnswer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * The `Authorization` header for the uploader, which takes the same API keys: the producer's own
 * key when it sent one, else the dispatcher's first key; none when no keys are set.
 */
export function uploaderAuth(
  producer: { authorization?: string | undefined; 'x-api-key'?: string | string[] | undefined },
  apiKeys: readonly string[],
): Record<string, string> {
  const bearer = /^Bearer\s+(.+)$/i.exec(producer.authorization ?? '')?.[1]?.trim();
  const header = producer['x-api-key'];
  const key = bearer ?? (typeof header === 'string' ? header : undefined) ?? apiKeys[0];
  return key ? { authorization: `Bearer ${key}` } : {};
}

/**
 * Forwards an upload request to the uploader's POST /upload-model and returns its status and JSON
 * body. Network failures, timeouts and non-JSON answers become `uploader_unreachable` (502).
 * `auth` is sent as is (see {@link uploaderAuth}).
 */
export async function forwardUpload(
  baseUrl: string,
  body: unknown,
  timeoutMs: number,
  auth: Record<string, string> = {},
): Promise<UploaderAnswer> {
  let res: Response;
  try {
    res = await fetch(`${baseUrl}/upload-model`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const reason =
      (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err as Error).message;
    throw new DispatcherError(
      'uploader_unreachable',
      `the uploader at ${baseUrl} could not be reached: ${reason}`,
    );
  }
  const text = await res.text().catch(() => '');
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch {
    throw new DispatcherError(
      'uploader_unreachable',
      `the uploader at ${baseUrl} answered ${res.status} with a body that is not JSON`,
    );
  }
}

/** Model names the uploader's GET /models lists (throws on any failure; callers decide). */
export async function listUploaderModels(
  baseUrl: string,
  timeoutMs: number,
  auth: Record<string, string> = {},
): Promise<string[]> {
  const res = await fetch(`${baseUrl}/models`, { headers: auth, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET /models answered ${res.status}`);
  const body = (await res.json()) as { models?: { name?: unknown }[] };
  return (body.models ?? []).map((m) => m.name).filter((n): n is string => typeof n === 'string');
}
