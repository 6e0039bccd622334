/**
 * The bytes of KServe v2 infers a standby forwards (issue 13): request and response bodies live in
 * Redis keys of their own, beside the task's JSON-only record in the task store, each with a TTL.
 *
 *   standby: SET <prefix>infer-request:<id> (PX deadline + grace) ─> store.create ─> XADD
 *   leader:  GET request ─> route ─> SET <prefix>infer-response:<id> (PX) ─> store.finish ─> PUBLISH
 *   standby: GET response, DEL both ─> answers its client with the bytes as the worker sent them
 *
 * A value is 4 bytes of the inference header length (big-endian; 0 = all JSON), then the body.
 * Read with GETBUFFER (ioredis `getBuffer`), so nothing is decoded as UTF-8.
 */
import type { Redis } from 'ioredis';

/** A v2 body and how many bytes of JSON header start it (0: all JSON). */
export interface InferBody {
  readonly body: Uint8Array;
  readonly headerLength: number;
}

const PREFIX_BYTES = 4;

/** The request and response keys of forwarded v2 infers. */
export class InferBytes {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
  ) {}

  /** Stores a forwarded request for `ttlMs` (its deadline and a grace: a new leader may adopt it). */
  async putRequest(taskId: string, infer: InferBody, ttlMs: number): Promise<void> {
    await this.redis.set(this.requestKey(taskId), frame(infer), 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  /** The forwarded request, or undefined when its key expired or was dropped. */
  async getRequest(taskId: string): Promise<InferBody | undefined> {
    return unframe(await this.redis.getBuffer(this.requestKey(taskId)));
  }

  /** Stores the worker's answer for the standby that waits (read once, within `ttlMs`). */
  async putResponse(taskId: string, infer: InferBody, ttlMs: number): Promise<void> {
    await this.redis.set(this.responseKey(taskId), frame(infer), 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  /** The answer, or undefined; both keys of the task are dropped (its client has its answer). */
  async takeResponse(taskId: string): Promise<InferBody | undefined> {
    const key = this.responseKey(taskId);
    const [[err, value]] = (await this.redis
      .multi()
      .getBuffer(key)
      .del(key, this.requestKey(taskId))
      .exec()) as [[Error | null, Buffer | null], [Error | null, number]];
    if (err) throw err;
    return unframe(value);
  }

  /** Drops a request that is no longer needed (its task ended). */
  async dropRequest(taskId: string): Promise<void> {
    await this.redis.del(this.requestKey(taskId));
  }

  private requestKey(taskId: string): string {
    return `${this.keyPrefix}infer-request:${taskId}`;
  }

  private responseKey(taskId: string): string {
    return `${this.keyPrefix}infer-response:${taskId}`;
  }
}

function frame(infer: InferBody): Buffer {
  const out = Buffer.allocUnsafe(PREFIX_BYTES + infer.body.byteLength);
  out.writeUInt32BE(infer.headerLength, 0);
  out.set(infer.body, PREFIX_BYTES);
  return out;
}

function unframe(value: Buffer | null | undefined): InferBody | undefined {
  if (!value || value.length < PREFIX_BYTES) return undefined;
  const headerLength = value.readUInt32BE(0);
  const body = value.subarray(PREFIX_BYTES);
  return headerLength > body.length ? undefined : { body, headerLength };
}
