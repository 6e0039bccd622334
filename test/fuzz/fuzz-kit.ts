/**
 * Shared pieces of the fuzz tests: a seeded PRNG and generators (bytes, unicode strings, JSON
 * values), frame mutators, a bounded-concurrency runner and an in-memory log sink.
 *
 * Every test file picks its seed from FUZZ_SEED (or a fresh random one) and names it in every
 * failure message, so `FUZZ_SEED=<seed> npx vitest run test/fuzz` replays the same corpus.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** The seed of this run: FUZZ_SEED when set, else a random 32-bit value. */
export function fuzzSeed(): number {
  const fromEnv = process.env.FUZZ_SEED;
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED must be an integer, got ${fromEnv}`);
    return n >>> 0;
  }
  return Math.floor(Math.random() * 2 ** 32);
}

/** How to replay a failure. */
export const replay = (seed: number): string => `FUZZ_SEED=${seed} npx vitest run test/fuzz`;

/** A small, fast, seeded PRNG (mulberry32) with the generators the fuzz tests need. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** Picks by weight: `[[weight, value], ...]`. */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    const total = items.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of items) if ((r -= w) < 0) return v;
    return items[items.length - 1]![1];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }

  /** A string of `n` code points drawn from ASCII, Latin, CJK, RTL, combining marks, emoji and controls. */
  unicode(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) {
      const cp = this.weighted<() => number>([
        [6, () => this.int(0x20, 0x7e)],
        [1, () => this.int(0x00, 0x1f)],
        [1, () => this.int(0xa0, 0x24f)],
        [1, () => this.int(0x4e00, 0x4fff)],
        [1, () => this.int(0x590, 0x6ff)],
        [1, () => this.int(0x300, 0x36f)],
        [1, () => this.int(0x1f300, 0x1f64f)],
        [0.3, () => this.pick([0xfeff, 0x200b, 0x202e, 0xfffd, 0x2028, 0x2029, 0x10ffff])],
      ])();
      s += String.fromCodePoint(cp);
    }
    return s;
  }

  /** A string with a lone surrogate somewhere (not well-formed UTF-16). */
  loneSurrogate(n: number): string {
    const points = Array.from(this.unicode(n));
    // At a code point boundary the neighbours are never the other half of a pair: it stays lone.
    const lone = String.fromCharCode(this.bool() ? this.int(0xd800, 0xdbff) : this.int(0xdc00, 0xdfff));
    points.splice(this.int(0, points.length), 0, lone);
    return points.join('');
  }

  /** A random JSON value, at most `depth` levels deep. */
  json(depth = 4): unknown {
    const leaf = (): unknown =>
      this.weighted<() => unknown>([
        [2, () => this.unicode(this.int(0, 12))],
        [1, () => this.int(-1e6, 1e6)],
        [1, () => (this.next() - 0.5) * 10 ** this.int(-5, 300)],
        [0.5, () => this.pick([0, -1, 2 ** 53, -(2 ** 53), Number.MAX_VALUE, Number.MIN_VALUE])],
        [1, () => this.bool()],
        [1, () => null],
      ])();
    if (depth <= 0) return leaf();
    return this.weighted<() => unknown>([
      [3, leaf],
      [1, () => Array.from({ length: this.int(0, 5) }, () => this.json(depth - 1))],
      [
        1,
        () => {
          const obj: Record<string, unknown> = {};
          for (let i = this.int(0, 5); i > 0; i--) {
            const key = this.bool(0.2)
              ? this.pick(['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'])
              : this.unicode(this.int(0, 8));
            // defineProperty: a plain assignment to __proto__ would set the prototype instead.
            Object.defineProperty(obj, key, {
              value: this.json(depth - 1),
              enumerable: true,
              writable: true,
              configurable: true,
            });
          }
          return obj;
        },
      ],
    ])();
  }

  /** A JSON value that is not a string (for retyping a string field). */
  nonString(): unknown {
    return this.weighted<() => unknown>([
      [1, () => this.int(-1e9, 1e9)],
      [1, () => this.next() * 1e308],
      [1, () => this.bool()],
      [1, () => null],
      [1, () => Array.from({ length: this.int(0, 3) }, () => this.json(1))],
      [1, () => ({ [this.pick(['a', '__proto__', 'constructor'])]: this.json(1) })],
      [0.5, () => [this.unicode(5)]],
      [0.5, () => ({ toString: 'x', valueOf: 1 })],
    ])();
  }
}

/** Frame mutations: bit flips, truncation, appended garbage, spliced garbage, repeated bytes. */
export function mutateBytes(rng: Rng, input: Uint8Array): Buffer {
  const buf = Buffer.from(input);
  switch (
    rng.pick(['flip', 'flip', 'truncate', 'append', 'splice', 'duplicate', 'zero', 'set-byte'] as const)
  ) {
    case 'flip': {
      if (buf.length === 0) return rng.bytes(rng.int(1, 8));
      for (let n = rng.int(1, 4); n > 0; n--) buf[rng.int(0, buf.length - 1)]! ^= 1 << rng.int(0, 7);
      return buf;
    }
    case 'truncate':
      return buf.subarray(0, rng.int(0, Math.max(0, buf.length - 1)));
    case 'append':
      return Buffer.concat([buf, rng.bytes(rng.int(1, 32))]);
    case 'splice': {
      const at = rng.int(0, buf.length);
      return Buffer.concat([buf.subarray(0, at), rng.bytes(rng.int(1, 16)), buf.subarray(at)]);
    }
    case 'duplicate': {
      // Repeating a run of bytes duplicates fields (protobuf merges or repeats them).
      if (buf.length === 0) return buf;
      const from = rng.int(0, buf.length - 1);
      const to = rng.int(from + 1, buf.length);
      return Buffer.concat([buf.subarray(0, to), buf.subarray(from, to), buf.subarray(to)]);
    }
    case 'zero': {
      if (buf.length > 0) buf.fill(0, rng.int(0, buf.length - 1), rng.int(0, buf.length));
      return buf;
    }
    case 'set-byte': {
      if (buf.length > 0) buf[rng.int(0, buf.length - 1)] = rng.pick([0x00, 0x7f, 0x80, 0xff, 0x0a, 0x12]);
      return buf;
    }
  }
}

/** Runs `fn` over `items` with at most `concurrency` in flight; resolves when all settled. */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  });
  await Promise.all(lanes);
}

/** A pino logger that keeps its records in memory (to assert that nothing logged an internal error). */
export function captureLogger(level: pino.Level = 'warn'): {
  logger: Logger;
  records: Record<string, unknown>[];
} {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n'))
        if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, sink), records };
}

/** Counts occurrences of each key, for the run summaries. */
export class Tally {
  private readonly counts = new Map<string, number>();

  add(key: string | number): void {
    const k = String(key);
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }

  get(key: string | number): number {
    return this.counts.get(String(key)) ?? 0;
  }

  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  toString(): string {
    return [...this.counts.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
  }
}
