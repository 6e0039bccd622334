/**
 * Fuzz of the dispatcher's HTTP API (issue 5, part 6): a real dispatcher on 127.0.0.1:0 with one
 * real worker connection (EchoWorker), a model repository (label-1..3) and a fake uploader, hit by
 * a seeded corpus of a few thousand requests on every route: random bytes, truncated JSON, every
 * field retyped / dropped / duplicated, oversized and unicode strings, lone surrogates,
 * prototype-pollution keys, non-JSON and wrong-shape parameters_json, unknown labels and task
 * types, content types, charsets and encodings, bodies over the limit (sized and chunked),
 * unknown routes, wrong methods and malformed raw HTTP.
 *
 * Each request's expected status comes from an oracle written from the README's API section (not from the
 * code), per input class. Every answer must arrive in bounded time, carry an expected status,
 * and every error must be `{"error": {"code", "message"}}` with a code from DISPATCHER_ERRORS
 * whose catalog status is the one sent. At the end the dispatcher must still serve a task and
 * /health, hold no queued task, have logged no internal error, and Object.prototype is untouched.
 *
 * Replay a failure with the seed it prints: FUZZ_SEED=<seed> npx vitest run test/fuzz
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DISPATCHER_ERRORS,
  seededRandom,
  startDispatcher,
  type DispatcherHandle,
} from '@smart-routing/dispatcher';
import { EchoWorker } from './echo-worker.js';
import { Rng, Tally, captureLogger, fuzzSeed, replay, runPool } from './fuzz-kit.js';

const SEED = fuzzSeed();
/** The dispatcher's default maxBodyBytes. */
const LIMIT = 1024 * 1024;
const REPO_LABELS = ['label-1', 'label-2', 'label-3'];
const SERVED_TYPES = ['echo', 'embed_texts'];
const WORKER_ID = 'echo-1';
/**
 * How long one request may take before it counts as unanswered: a stall (a slow body held for the
 * server's 5-minute default, a hung route) is far longer; 8 s was hit by gzip-bomb cases on a machine
 * at load 18 (the whole test 6x slower than quiet).
 */
const ANSWER_TIMEOUT_MS = 20_000;
const CONCURRENCY = 12;
const ROUTES: Record<string, string[]> = {
  '/run-task': ['POST'],
  '/upload-model': ['POST'],
  '/health': ['GET', 'HEAD'],
  '/workers': ['GET', 'HEAD'],
  '/labels': ['GET', 'HEAD'],
  '/metrics': ['GET', 'HEAD'],
};

// ---------------------------------------------------------------- corpus

interface Answer {
  status: number;
  header(name: string): string | undefined;
  text: string;
}

/** What the contract says an input must get. */
interface Outcome {
  statuses: number[];
  /** Allowed error codes (when the status is an error). */
  codes?: string[];
  /** Extra checks of a successful answer; returns a complaint or undefined. */
  check?: (a: Answer) => string | undefined;
}

interface Case extends Outcome {
  kind: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Send the body as a chunked stream (no Content-Length). */
  chunked?: boolean;
  /** A raw HTTP request written to a TCP socket instead of fetch. */
  raw?: Buffer;
}

const err = (status: number, ...codes: string[]): Outcome => ({ statuses: [status], codes });
const INVALID = err(400, 'invalid_request');
const TOO_LARGE = err(413, 'payload_too_large');

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
/** No lone surrogates: with the `u` flag a proper pair never matches the range. */
const wellFormed = (s: string): boolean => !/[\uD800-\uDFFF]/u.test(s);

/** A body as the JSON body parser sees it (strict: an object or array), or undefined. */
function parseJsonBody(text: string): { value: unknown } | undefined {
  if (text.length === 0) return { value: {} };
  const first = /^[ \t\n\r]*(.)/s.exec(text)?.[1];
  if (first !== '{' && first !== '[') return undefined;
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

/** The contract of POST /run-task for a parsed body (README, "API"). */
function runTaskOutcome(value: unknown): Outcome {
  if (!isObject(value)) return INVALID;
  const fields = ['task_id', 'task_type', 'label', 'parameters_json'] as const;
  for (const f of fields) {
    const v = value[f];
    if (typeof v !== 'string' || !wellFormed(v)) return INVALID;
    // Lengths count code points, as zod does ("1..200 chars").
    if (f !== 'parameters_json' && (v.length < 1 || [...v].length > 200)) return INVALID;
  }
  const taskId = value.task_id as string;
  const taskType = value.task_type as string;
  const label = value.label as string;
  const params = value.parameters_json as string;
  let parsed: unknown;
  try {
    parsed = JSON.parse(params);
  } catch {
    return err(400, 'invalid_parameters_json');
  }
  if (!SERVED_TYPES.includes(taskType)) return err(400, 'unknown_task_type');
  if (taskType !== 'echo' && !REPO_LABELS.includes(label)) return err(404, 'label_not_found');
  if (taskType === 'embed_texts') {
    const texts = isObject(parsed) ? parsed.texts : undefined;
    if (!Array.isArray(texts) || texts.length === 0 || !texts.every((t) => typeof t === 'string'))
      return err(400, 'bad_parameters');
  }
  // The echo worker answers `{"echo":<parameters_json>}` and the dispatcher splices that text into
  // its answer unparsed, so the parameters come back byte for byte, however deep they nest.
  const resultTail = `,"result":{"echo":${params}}}`;
  return {
    statuses: [200],
    check: (a) => {
      if (!a.text.endsWith(resultTail)) return 'the echoed parameters differ from the ones sent';
      // The rest without the result (which may nest 100,000 deep: parsing it here would stall the loop).
      const b = JSON.parse(`${a.text.slice(0, -resultTail.length)}}`) as Record<string, unknown>;
      if (b.status !== 'completed' || b.task_id !== taskId || b.label !== label)
        return `wrong task fields: ${a.text.slice(0, 200)}`;
      if (b.worker_id !== WORKER_ID || b.attempts !== 1 || typeof b.label_miss !== 'boolean')
        return `wrong worker fields: ${a.text.slice(0, 200)}`;
      return undefined;
    },
  };
}

/** The contract of POST /upload-model with an uploader configured. */
function uploadOutcome(value: unknown): Outcome {
  if (!isObject(value)) return INVALID;
  // Unknown fields are refused (a typo must not become another upload); hub uploads only.
  const known = ['model_id', 'revision', 'max_batch_size', 'overwrite', 'source'];
  if (Object.keys(value).some((k) => !known.includes(k))) return INVALID;
  const { model_id: id, revision, max_batch_size: mbs, overwrite, source } = value;
  if (source !== undefined && source !== 'hub') return INVALID;
  if (typeof id !== 'string' || id.length < 1 || id.length > 200) return INVALID;
  if (
    revision !== undefined &&
    (typeof revision !== 'string' || revision.length < 1 || revision.length > 200)
  )
    return INVALID;
  if (mbs !== undefined && !(Number.isInteger(mbs) && (mbs as number) >= 0 && (mbs as number) <= 4096))
    return INVALID;
  if (overwrite !== undefined && typeof overwrite !== 'boolean') return INVALID;
  return {
    statuses: [201],
    check: (a) => (JSON.parse(a.text).status === 'uploaded' ? undefined : `not relayed: ${a.text}`),
  };
}

/** Outcome of a POST body (UTF-8 bytes) on a JSON route, body-parser stage included. */
function postOutcome(path: string, bytes: Buffer): Outcome {
  if (bytes.length > LIMIT) return TOO_LARGE;
  const parsed = parseJsonBody(new TextDecoder().decode(bytes));
  if (!parsed) return INVALID;
  return path === '/run-task' ? runTaskOutcome(parsed.value) : uploadOutcome(parsed.value);
}

/** A JSON object text from [key, value-as-JSON-text] entries (so keys can repeat). */
const objectText = (entries: [string, string][]): string =>
  `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;

/** Cuts a string to at most `max` UTF-16 units without splitting a surrogate pair. */
function cut(s: string, max: number): string {
  let out = '';
  for (const ch of s) {
    if (out.length + ch.length > max) break;
    out += ch;
  }
  return out;
}

class Corpus {
  readonly cases: Case[] = [];
  private seq = 0;

  constructor(private readonly rng: Rng) {}

  private nextId(): string {
    const tag = this.rng.bool(0.4) ? this.rng.unicode(this.rng.int(1, 20)) : '';
    return cut(`fz-${SEED}-${++this.seq}-${tag}`, 200);
  }

  /** A valid /run-task body as fields. */
  validTask(): Record<string, string> {
    const rng = this.rng;
    const taskType = rng.weighted([
      [3, 'echo'],
      [1, 'embed_texts'],
    ] as const);
    let label: string;
    let params: string;
    if (taskType === 'echo') {
      label = rng.bool(0.3) ? rng.pick(REPO_LABELS) : cut(rng.unicode(rng.int(1, 40)), 200) || 'x';
      params = rng.bool(0.03)
        ? JSON.stringify({ blob: rng.unicode(8).repeat(rng.int(1000, 20_000)) })
        : JSON.stringify(rng.json(4));
    } else {
      label = rng.pick(REPO_LABELS);
      params = JSON.stringify({
        texts: Array.from({ length: rng.int(1, 4) }, () => rng.unicode(rng.int(0, 30))),
      });
    }
    return { task_id: this.nextId(), task_type: taskType, label, parameters_json: params };
  }

  private entries(fields: Record<string, string>): [string, string][] {
    return Object.entries(fields).map(([k, v]) => [k, JSON.stringify(v)]);
  }

  private postJson(kind: string, path: string, text: string, extra: Partial<Case> = {}): void {
    const body = Buffer.from(text);
    this.cases.push({
      kind,
      method: 'POST',
      path,
      body,
      headers: { 'content-type': 'application/json' },
      ...postOutcome(path, body),
      ...extra,
    });
  }

  build(): Case[] {
    const rng = this.rng;
    const fields = ['task_id', 'task_type', 'label', 'parameters_json'];
    const repeat = (n: number, f: (i: number) => void): void => {
      for (let i = 0; i < n; i++) f(i);
    };

    repeat(300, () => {
      const t = this.validTask();
      const entries = this.entries(t);
      if (rng.bool(0.3)) entries.push([rng.unicode(rng.int(1, 10)), JSON.stringify(rng.json(2))]);
      if (rng.bool(0.3)) entries.sort(() => rng.next() - 0.5);
      this.postJson('valid', '/run-task', objectText(entries));
    });

    repeat(150, () => {
      const path = rng.bool(0.8) ? '/run-task' : '/upload-model';
      const body = rng.bytes(rng.int(0, 2000));
      this.cases.push({ kind: 'random-bytes', method: 'POST', path, body, ...postOutcome(path, body) });
    });

    repeat(150, () => {
      const text = JSON.stringify(this.validTask());
      this.postJson('truncated', '/run-task', text.slice(0, rng.int(0, text.length - 1)));
    });

    repeat(200, () => {
      const entries = this.entries(this.validTask());
      const i = rng.int(0, entries.length - 1);
      entries[i]![1] = JSON.stringify(rng.nonString());
      this.postJson(`retype-${entries[i]![0]}`, '/run-task', objectText(entries));
    });

    repeat(80, () => {
      const entries = this.entries(this.validTask());
      entries.splice(rng.int(0, entries.length - 1), 1);
      this.postJson('drop-field', '/run-task', objectText(entries));
    });

    repeat(120, () => {
      const entries = this.entries(this.validTask());
      const [key, value] = rng.pick(entries);
      const copy = rng.weighted<string>([
        [1, value],
        [1, JSON.stringify(rng.nonString())],
        [1, JSON.stringify(rng.unicode(rng.int(0, 20)))],
      ]);
      entries.splice(rng.int(0, entries.length), 0, [key, copy]);
      this.postJson('duplicate-field', '/run-task', objectText(entries));
    });

    repeat(100, () => {
      const t = this.validTask();
      const f = rng.pick(fields);
      // A task_id must stay unique: a repeated one is an idempotent retry, answered with the first
      // task's stored outcome (seed 550971660 drew 'x' * 200 twice).
      const pad = (n: number) => (f === 'task_id' ? t.task_id!.padEnd(n, 'x') : 'x'.repeat(n));
      t[f] = rng.weighted<string>([
        [1, ''],
        [2, pad(rng.int(199, 260))],
        [1, rng.unicode(rng.int(150, 400))],
        [1, rng.unicode(4).repeat(rng.int(20_000, 60_000))],
      ]);
      this.postJson(`string-size-${f}`, '/run-task', JSON.stringify(t));
    });

    repeat(40, () => {
      const t = this.validTask();
      const f = rng.pick(fields);
      t[f] =
        f === 'parameters_json'
          ? JSON.stringify({ s: 'x' }).replace('x', rng.loneSurrogate(3))
          : rng.loneSurrogate(rng.int(1, 20));
      this.postJson(`lone-surrogate-${f}`, '/run-task', JSON.stringify(t));
    });

    repeat(120, () => {
      const t = this.validTask();
      const valid = JSON.stringify(rng.json(3));
      t.parameters_json = rng.weighted<string>([
        [2, valid.slice(0, rng.int(0, Math.max(0, valid.length - 1)))],
        [2, rng.unicode(rng.int(1, 30))],
        [
          1,
          rng.pick(['{nope', 'NaN', 'undefined', "'single'", '', ' ', '{"a":1,}', '[1 2]', '0x10', '{a:1}']),
        ],
        [1, `${valid}${rng.pick([',', ']', '}', 'x', '"'])}`],
      ]);
      this.postJson('params-not-json', '/run-task', JSON.stringify(t));
    });

    repeat(80, () => {
      const t = this.validTask();
      t.task_type = 'embed_texts';
      t.label = rng.pick(REPO_LABELS);
      t.parameters_json = JSON.stringify(
        rng.weighted<unknown>([
          [2, rng.json(3)],
          [1, { texts: [] }],
          [1, { texts: [rng.int(0, 9)] }],
          [1, { texts: rng.unicode(5) }],
          [1, { text: ['a'] }],
          [1, [{ texts: ['a'] }]],
        ]),
      );
      this.postJson('params-wrong-shape', '/run-task', JSON.stringify(t));
    });

    repeat(80, () => {
      const t = this.validTask();
      t.task_type = rng.weighted<string>([
        [2, cut(rng.unicode(rng.int(1, 50)), 200) || 'x'],
        [1, rng.pick(['infer', 'ECHO', 'echo ', ' echo', 'Echo', 'embed-texts', 'embed_texts\u0000', '*'])],
      ]);
      this.postJson('unknown-task-type', '/run-task', JSON.stringify(t));
    });

    repeat(80, () => {
      const t = this.validTask();
      t.task_type = 'embed_texts';
      t.parameters_json = '{"texts":["hello"]}';
      t.label = rng.weighted<string>([
        [2, cut(rng.unicode(rng.int(1, 60)), 200) || 'x'],
        [
          2,
          rng.pick([
            'label-4',
            'Label-1',
            'label-1 ',
            ' label-1',
            '../label-1',
            'label-1/',
            'label-1/config.pbtxt',
            '.',
            '..',
            'label-1\u0000',
            '/etc',
            'label-1\\',
            '%2e%2e',
            'label\u20131',
          ]),
        ],
      ]);
      this.postJson('unknown-label', '/run-task', JSON.stringify(t));
    });

    repeat(60, () => {
      const entries = this.entries(this.validTask());
      if (rng.bool(0.5)) entries.splice(rng.int(0, entries.length - 1), 1);
      const poison = rng.pick(['__proto__', 'constructor', 'prototype']);
      const inner = objectText([
        ['polluted', 'true'],
        ['task_id', '"from-proto"'],
        ['label', '"label-1"'],
        ['__proto__', '{"polluted":true}'],
        ['prototype', '{"polluted":true}'],
      ]);
      entries.splice(rng.int(0, entries.length), 0, [poison, inner]);
      this.postJson(
        'prototype-pollution',
        rng.bool(0.8) ? '/run-task' : '/upload-model',
        objectText(entries),
      );
    });

    repeat(60, () => {
      const text = rng.weighted<string>([
        [1, JSON.stringify(rng.json(2))],
        [1, JSON.stringify([this.validTask()])],
        [1, rng.pick(['null', 'true', '1', '"task"', '[]', '[[]]', '{}', ' {} ', '\n[\n]\n'])],
      ]);
      this.postJson('non-object', rng.bool(0.8) ? '/run-task' : '/upload-model', text);
    });

    const okTypes = [
      'application/json',
      'application/json; charset=utf-8',
      'APPLICATION/JSON; CHARSET=UTF-8',
      'application/json; charset="utf-8"',
      'application/json; foo=bar',
      'text/plain',
      'text/html',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=----fuzz',
      'application/octet-stream',
      'application/xml',
      'image/png',
      'garbage',
      ';;;',
      '',
    ];
    const badCharsets = ['latin1', 'iso-8859-1', 'ascii', 'utf-foo', 'utf-32', 'windows-1252', 'x'];
    repeat(100, () => {
      const text = JSON.stringify(this.validTask());
      const which = rng.int(0, 9);
      if (which < 6) {
        const body = Buffer.from(text);
        this.cases.push({
          kind: 'content-type',
          method: 'POST',
          path: '/run-task',
          body,
          headers: { 'content-type': rng.pick(okTypes) },
          ...postOutcome('/run-task', body),
        });
      } else if (which < 8) {
        const charset = rng.pick(badCharsets);
        this.cases.push({
          kind: 'bad-charset',
          method: 'POST',
          path: '/run-task',
          body: Buffer.from(text),
          headers: { 'content-type': `application/json; charset=${charset}` },
          ...INVALID,
        });
      } else {
        this.cases.push({
          kind: 'utf-16le',
          method: 'POST',
          path: '/run-task',
          body: Buffer.from(text, 'utf16le'),
          headers: { 'content-type': 'application/json; charset=utf-16le' },
          ...postOutcome('/run-task', Buffer.from(text)),
        });
      }
    });

    repeat(30, () => {
      const text = JSON.stringify(this.validTask());
      const raw = Buffer.from(text);
      const pick = rng.pick(['gzip', 'deflate', 'br', 'GZIP', 'garbage-gzip', 'unknown', 'bomb'] as const);
      const add = (encoding: string, body: Buffer, outcome: Outcome): void => {
        this.cases.push({
          kind: `encoding-${pick}`,
          method: 'POST',
          path: '/run-task',
          body,
          headers: { 'content-type': 'application/json', 'content-encoding': encoding },
          ...outcome,
        });
      };
      if (pick === 'gzip' || pick === 'GZIP') add(pick, gzipSync(raw), postOutcome('/run-task', raw));
      else if (pick === 'deflate') add('deflate', deflateSync(raw), postOutcome('/run-task', raw));
      else if (pick === 'br') add('br', brotliCompressSync(raw), postOutcome('/run-task', raw));
      else if (pick === 'garbage-gzip') add('gzip', rng.bytes(rng.int(0, 200)), INVALID);
      else if (pick === 'unknown') add(rng.pick(['compress', 'x-fuzz', 'zstd', 'gzip, br']), raw, INVALID);
      // 4 MiB of spaces before the object: tiny on the wire, over the limit once inflated.
      else add('gzip', gzipSync(Buffer.concat([Buffer.alloc(4 * LIMIT, 0x20), raw])), TOO_LARGE);
    });

    // Bodies over the 1 MiB limit: a 2 MB string in one field, or a chunked stream.
    repeat(12, () => {
      const t = this.validTask();
      const f = rng.pick([...fields, 'extra']);
      t[f] = rng.pick(['x', '\u00e9', '\u{1f600}']).repeat(rng.int(2_000_000, 2_100_000) / 2);
      this.postJson(`over-limit-${f}`, rng.bool(0.8) ? '/run-task' : '/upload-model', JSON.stringify(t));
    });
    repeat(4, () => {
      const body = Buffer.from(
        JSON.stringify({ ...this.validTask(), pad: 'y'.repeat(LIMIT + rng.int(1, 500_000)) }),
      );
      this.cases.push({
        kind: 'over-limit-chunked',
        method: 'POST',
        path: '/run-task',
        body,
        chunked: true,
        ...TOO_LARGE,
      });
    });

    // Deep nesting: in parameters_json (echoed back, spliced into the answer) and in an ignored field.
    repeat(4, (i) => {
      const t = this.validTask();
      t.task_type = 'echo';
      const n = 100_000;
      if (i % 2 === 0) t.parameters_json = '['.repeat(n) + ']'.repeat(n);
      else t.parameters_json = '{"a":'.repeat(n) + '1' + '}'.repeat(n);
      this.postJson('deep-parameters', '/run-task', JSON.stringify(t));
    });
    repeat(2, () => {
      const entries = this.entries(this.validTask());
      entries.push(['nested', '['.repeat(200_000) + ']'.repeat(200_000)]);
      this.postJson('deep-extra-field', '/run-task', objectText(entries));
    });

    repeat(200, () => {
      const valid: Record<string, unknown> = { model_id: cut(rng.unicode(rng.int(1, 60)), 300) || 'm' };
      if (rng.bool()) valid.revision = rng.pick(['main', 'v1', rng.unicode(rng.int(1, 10))]);
      if (rng.bool()) valid.max_batch_size = rng.int(0, 64);
      if (rng.bool()) valid.overwrite = rng.bool();
      const entries: [string, string][] = Object.entries(valid).map(([k, v]) => [k, JSON.stringify(v)]);
      const mutation = rng.pick([
        'none',
        'none',
        'retype',
        'drop',
        'duplicate',
        'range',
        'extra',
        'truncate',
      ] as const);
      if (mutation === 'retype') entries[rng.int(0, entries.length - 1)]![1] = JSON.stringify(rng.json(1));
      else if (mutation === 'drop') entries.splice(rng.int(0, entries.length - 1), 1);
      else if (mutation === 'duplicate') entries.push([rng.pick(entries)[0], JSON.stringify(rng.json(1))]);
      else if (mutation === 'range')
        entries.push(
          rng.pick<[string, string]>([
            ['max_batch_size', rng.pick(['-1', '1.5', '1000001', '1e400', '"8"'])],
            ['revision', '""'],
            ['model_id', JSON.stringify('m'.repeat(301))],
            ['overwrite', rng.pick(['"true"', '1', 'null'])],
          ]),
        );
      else if (mutation === 'extra')
        entries.push([rng.pick(['source', 'path', '__proto__', 'x']), JSON.stringify(rng.json(2))]);
      const text = objectText(entries);
      this.postJson(
        `upload-${mutation}`,
        '/upload-model',
        mutation === 'truncate' ? text.slice(0, rng.int(0, text.length - 1)) : text,
      );
    });

    repeat(120, () => {
      const path = rng.pick(['/health', '/workers', '/labels', '/metrics']);
      const method = rng.bool(0.8) ? 'GET' : 'HEAD';
      const query = rng.bool(0.4)
        ? `?${encodeURIComponent(rng.unicode(rng.int(0, 20)))}=${rng.int(0, 9)}&__proto__[x]=1`
        : '';
      const headers: Record<string, string> = {};
      if (rng.bool(0.3)) headers.authorization = `Bearer ${rng.bytes(8).toString('hex')}`;
      if (rng.bool(0.3)) headers.accept = rng.pick(['text/html', 'application/xml', '*/*', 'garbage']);
      if (rng.bool(0.2)) headers['x-api-key'] = rng.bytes(4).toString('hex');
      this.cases.push({
        kind: `get${path}`,
        method,
        path: path + query,
        headers,
        statuses: [200],
        check: (a) => (method === 'GET' ? checkGet(path, a) : undefined),
      });
    });

    repeat(120, () => {
      const path = rng.pick(Object.keys(ROUTES));
      const allowed = ROUTES[path]!;
      const method = rng.pick(
        ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'].filter((m) => !allowed.includes(m)),
      );
      const hasBody = !['GET', 'HEAD'].includes(method) && rng.bool();
      const c: Case = {
        kind: 'wrong-method',
        method,
        path,
        ...err(405, 'method_not_allowed'),
        check: (a) => (a.header('allow') === allowed.join(', ') ? undefined : `Allow: ${a.header('allow')}`),
      };
      if (hasBody)
        c.body = rng.bool() ? rng.bytes(rng.int(0, 500)) : Buffer.from(JSON.stringify(this.validTask()));
      this.cases.push(c);
    });

    const segmentChars = "abcXYZ019-_~!$&'()*+,;=:@%";
    repeat(110, () => {
      const segments = Array.from({ length: rng.int(1, 4) }, () =>
        rng.bool(0.7)
          ? Array.from({ length: rng.int(1, 12) }, () => rng.pick([...segmentChars])).join('')
          : encodeURIComponent(rng.unicode(rng.int(1, 6))),
      );
      const method = rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
      const c: Case = {
        kind: 'unknown-route',
        method,
        path: `/zz-${segments.join('/')}`,
        ...err(404, 'not_found'),
      };
      if (!['GET', 'HEAD'].includes(method) && rng.bool()) c.body = rng.bytes(rng.int(0, 300));
      this.cases.push(c);
    });
    for (const [method, path, outcome] of [
      ['GET', '/RUN-TASK', err(405, 'method_not_allowed')],
      ['GET', '/Health', { statuses: [200] }],
      ['GET', '/health/', { statuses: [200] }],
      ['GET', '/run%2Dtask', err(404, 'not_found')],
      ['GET', '//health', err(404, 'not_found')],
      ['GET', '/health%2F', err(404, 'not_found')],
      ['GET', '/health;x', err(404, 'not_found')],
      ['GET', '/%', err(404, 'not_found')],
      ['GET', '/%zz', err(404, 'not_found')],
      ['GET', '/%00', err(404, 'not_found')],
      ['GET', '/worker-listen', err(404, 'not_found')],
      ['GET', '/', err(404, 'not_found')],
      ['GET', '/metrics.json', err(404, 'not_found')],
      ['POST', '/run-task/x', err(404, 'not_found')],
    ] as [string, string, Outcome][]) {
      this.cases.push({ kind: 'tricky-route', method, path, ...outcome });
    }

    const raw = (text: string, outcome: Outcome, kind = 'raw-http'): void => {
      this.cases.push({
        kind,
        method: 'RAW',
        path: JSON.stringify(text.slice(0, 60)),
        raw: Buffer.from(text, 'latin1'),
        ...outcome,
      });
    };
    const host = 'Host: 127.0.0.1\r\nConnection: close\r\n';
    const json = `{"task_id":"raw-${SEED}","task_type":"echo","label":"a","parameters_json":"1"}`;
    raw('GARBAGE\r\n\r\n', INVALID);
    raw('\r\n\r\nGARBAGE / HTTP/1.1\r\n\r\n', INVALID);
    raw('FUZZ /health HTTP/1.1\r\n' + host + '\r\n', INVALID);
    raw('GET /health HTTP/9.9\r\n' + host + '\r\n', INVALID);
    raw(
      'GET /health HTTP/1.1\r\n' + host + 'X-Big: ' + 'a'.repeat(20_000) + '\r\n\r\n',
      INVALID,
      'raw-header-overflow',
    );
    raw('GET /health HTTP/1.1\r\n' + host + 'Bad\x01Name: x\r\n\r\n', INVALID);
    raw('GET /health HTTP/1.1\r\n' + host + 'X: a\x00b\r\n\r\n', INVALID);
    raw(`POST /run-task HTTP/1.1\r\n${host}Content-Length: abc\r\n\r\n`, INVALID);
    raw(
      `POST /run-task HTTP/1.1\r\n${host}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      INVALID,
    );
    raw(`POST /run-task HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`, INVALID);
    // Over the limit by Content-Length; the body is sent too (body-parser reads it off before answering).
    raw(
      `POST /run-task HTTP/1.1\r\n${host}Content-Length: ${LIMIT + 11}\r\n\r\n{"task_id":${' '.repeat(LIMIT)}`,
      TOO_LARGE,
      'raw-declared-over-limit',
    );
    raw(
      `POST /run-task HTTP/1.1\r\n${host}Content-Length: ${json.length}\r\n\r\n${json}`,
      { statuses: [200] },
      'raw-valid',
    );
    raw(`GET http://elsewhere.invalid/health HTTP/1.1\r\n${host}\r\n`, { statuses: [200] }, 'raw-valid');
    raw('GET /health HTTP/1.0\r\n\r\n', { statuses: [200] }, 'raw-valid');
    raw(`GET /%E0%A4%A HTTP/1.1\r\n${host}\r\n`, err(404, 'not_found'), 'raw-valid');
    const chunkedJson = json.replace('raw-', 'raw-chunked-');
    raw(
      `POST /run-task HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n\r\n` +
        `${chunkedJson.length.toString(16)}\r\n${chunkedJson}\r\n0\r\n\r\n`,
      { statuses: [200] },
      'raw-valid',
    );

    // Shuffle so classes interleave under concurrency.
    for (let i = this.cases.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [this.cases[i], this.cases[j]] = [this.cases[j]!, this.cases[i]!];
    }
    return this.cases;
  }
}

function checkGet(path: string, a: Answer): string | undefined {
  if (path === '/metrics')
    return /^smart_routing_connected_workers 1$/m.test(a.text) ? undefined : 'metrics lack the worker gauge';
  const body = JSON.parse(a.text) as unknown;
  if (path === '/health')
    return JSON.stringify(body) === JSON.stringify({ status: 'ok', workers: 1 })
      ? undefined
      : `health: ${a.text}`;
  if (path === '/workers') {
    const list = body as { id?: unknown; slots?: unknown }[];
    return Array.isArray(list) && list.length === 1 && list[0]!.id === WORKER_ID
      ? undefined
      : `workers: ${a.text}`;
  }
  if (!isObject(body) || !Object.values(body).every((v) => Array.isArray(v))) return `labels: ${a.text}`;
  return REPO_LABELS.every((l) => l in body) ? undefined : `labels lack the repository: ${a.text}`;
}

// ---------------------------------------------------------------- transport

async function viaFetch(base: string, c: Case): Promise<Answer> {
  let body: RequestInit['body'] = c.body;
  if (c.chunked && c.body) {
    const data = c.body;
    body = new ReadableStream({
      start(controller) {
        for (let i = 0; i < data.length; i += 64 * 1024) controller.enqueue(data.subarray(i, i + 64 * 1024));
        controller.close();
      },
    });
  }
  const res = await fetch(base + c.path, {
    method: c.method,
    headers: c.headers,
    body,
    signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    ...(c.chunked ? { duplex: 'half' } : {}),
  } as RequestInit);
  const text = await res.text();
  return { status: res.status, header: (n) => res.headers.get(n) ?? undefined, text };
}

/** Writes a raw request on a fresh TCP connection and parses the first response. */
function viaSocket(port: number, data: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const timer = setTimeout(
      () => done(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`)),
      ANSWER_TIMEOUT_MS,
    );
    const done = (failure?: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      const answer = failure ? undefined : parseResponse(received, true);
      if (answer) resolve(answer);
      else
        reject(
          failure ?? new Error(`not an HTTP response: ${JSON.stringify(received.toString().slice(0, 200))}`),
        );
    };
    socket.on('data', (c: Buffer) => {
      received = Buffer.concat([received, c]);
      // The server may keep reading a body it already refused: answer as soon as ours is complete.
      if (parseResponse(received, false)) done();
    });
    socket.on('error', () => undefined); // the server may cut us off after answering
    socket.on('close', () => done());
    // No half-close: the server may treat a client FIN as the producer going away.
    socket.write(data);
  });
}

/** The first response in `bytes`, or undefined while incomplete (`ended`: no more bytes will come). */
function parseResponse(bytes: Buffer, ended: boolean): Answer | undefined {
  const split = bytes.indexOf('\r\n\r\n');
  if (split < 0) return undefined;
  const head = bytes.subarray(0, split).toString('latin1');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!m) return undefined;
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n').slice(1)) {
    const at = line.indexOf(':');
    headers.set(line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim());
  }
  const body = bytes.subarray(split + 4);
  const length = Number(headers.get('content-length') ?? NaN);
  if (Number.isNaN(length) ? !ended : body.length < length) return undefined;
  return {
    status: Number(m[1]),
    header: (n) => headers.get(n.toLowerCase()),
    text: (Number.isNaN(length) ? body : body.subarray(0, length)).toString(),
  };
}

/** Everything every answer must satisfy; returns a complaint or undefined. */
function judge(c: Case, a: Answer): string | undefined {
  if (!c.statuses.includes(a.status))
    return `status ${a.status}, expected ${c.statuses.join('|')}: ${a.text.slice(0, 300)}`;
  if (a.status >= 400) {
    if (c.method === 'HEAD') return undefined;
    if (!/^application\/json/.test(a.header('content-type') ?? ''))
      return `error is not JSON: ${a.header('content-type')} ${a.text.slice(0, 200)}`;
    let body: unknown;
    try {
      body = JSON.parse(a.text);
    } catch {
      return `error body does not parse: ${a.text.slice(0, 200)}`;
    }
    if (!isObject(body) || Object.keys(body).join() !== 'error' || !isObject(body.error))
      return `not {"error": {...}}: ${a.text.slice(0, 200)}`;
    const { code, message } = body.error;
    if (Object.keys(body.error).sort().join() !== 'code,message')
      return `error keys: ${a.text.slice(0, 200)}`;
    if (typeof code !== 'string' || !Object.hasOwn(DISPATCHER_ERRORS, code))
      return `code not in the catalog: ${String(code)}`;
    if (DISPATCHER_ERRORS[code as keyof typeof DISPATCHER_ERRORS].status !== a.status)
      return `code ${code} sent with status ${a.status}`;
    if (typeof message !== 'string' || message.length === 0) return 'empty message';
    if (c.codes && !c.codes.includes(code))
      return `code ${code}, expected ${c.codes.join('|')}: ${message.slice(0, 200)}`;
    if (a.status === 503 && !/^[1-9]\d*$/.test(a.header('retry-after') ?? ''))
      return `503 without a valid Retry-After: ${a.header('retry-after')}`;
  }
  return c.check?.(a);
}

// ---------------------------------------------------------------- the test

describe(`HTTP API fuzz (seed ${SEED})`, () => {
  let dir: string;
  let dispatcher: DispatcherHandle;
  let worker: EchoWorker;
  let uploader: Server;
  const logs = captureLogger('warn');
  const protoKeys = Object.getOwnPropertyNames(Object.prototype).sort().join();
  let cases: Case[];

  beforeAll(async () => {
    // Built before the worker connects: the build holds the event loop for seconds on a busy
    // machine, longer than the dispatcher waits for a silent worker.
    cases = new Corpus(new Rng(SEED)).build();
    dir = await mkdtemp(join(tmpdir(), 'fuzz-http-'));
    for (const label of REPO_LABELS) {
      await mkdir(join(dir, label), { recursive: true });
      await writeFile(join(dir, label, 'config.pbtxt'), `name: "${label}"\n`);
    }
    uploader = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.method === 'GET' && req.url === '/models') {
          res.end('{"models":[]}');
          return;
        }
        const { model_id: name } = JSON.parse(Buffer.concat(chunks).toString()) as { model_id: string };
        res.statusCode = 201;
        res.end(JSON.stringify({ status: 'uploaded', model_name: name, message: 'ok' }));
      });
    });
    await new Promise<void>((resolve) => uploader.listen(0, '127.0.0.1', resolve));
    dispatcher = await startDispatcher({
      port: 0,
      host: '127.0.0.1',
      logger: logs.logger,
      random: seededRandom(SEED),
      taskTimeoutMs: 3000,
      // Not a liveness test: on a starved machine a 5 s window dropped the only worker mid-fuzz
      // (every task then 503 no_capable_worker).
      workerTimeoutMs: 60_000,
      modelRepository: dir,
      uploaderUrl: `http://127.0.0.1:${(uploader.address() as AddressInfo).port}`,
    });
    worker = await EchoWorker.connect({
      url: dispatcher.url,
      id: WORKER_ID,
      slots: 8,
      labelCapacity: 2,
      labels: ['label-1'],
      taskTypes: SERVED_TYPES,
      // As the real worker: echo uses no model, so its label is neither checked nor loaded.
      labelFreeTaskTypes: ['echo'],
    });
  });

  afterAll(async () => {
    await worker?.close();
    await dispatcher?.close();
    await new Promise((resolve) => uploader?.close(resolve));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    'answers every request in time, with an expected status and a catalog JSON error',
    // Each request has its own 8 s limit; the whole corpus took over 120 s with both cores busy.
    { timeout: 300_000 },
    async () => {
      const statuses = new Tally();
      const codes = new Tally();
      const failures: string[] = [];
      const started = performance.now();
      await runPool(cases, CONCURRENCY, async (c, i) => {
        let answer: Answer;
        try {
          answer = c.raw ? await viaSocket(dispatcher.port, c.raw) : await viaFetch(dispatcher.url, c);
        } catch (e) {
          failures.push(
            `#${i} ${c.kind} ${c.method} ${c.path.slice(0, 80)}: no answer (${(e as Error).message})`,
          );
          return;
        }
        statuses.add(answer.status);
        if (answer.status >= 400 && c.method !== 'HEAD') {
          try {
            codes.add((JSON.parse(answer.text) as { error: { code: string } }).error.code);
          } catch {
            codes.add('(not JSON)');
          }
        }
        const complaint = judge(c, answer);
        if (complaint) failures.push(`#${i} ${c.kind} ${c.method} ${c.path.slice(0, 80)}: ${complaint}`);
      });
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(
        `http fuzz seed=${SEED}: ${cases.length} requests in ${seconds} s; statuses ${statuses}; codes ${codes}`,
      );
      expect(failures, `seed ${SEED} (${replay(SEED)}):\n${failures.slice(0, 15).join('\n')}`).toEqual([]);
      expect(statuses.total).toBe(cases.length);
    },
  );

  it('still serves a task and /health afterwards, with nothing stuck, leaked or logged as internal', async () => {
    const res = await fetch(`${dispatcher.url}/run-task`, {
      method: 'POST',
      body: JSON.stringify({
        task_id: `after-${SEED}`,
        task_type: 'echo',
        label: 'label-1',
        parameters_json: '{"ok":true}',
      }),
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { result: unknown }).result).toEqual({ echo: { ok: true } });
    const health = await fetch(`${dispatcher.url}/health`, {
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    expect(await health.json()).toEqual({ status: 'ok', workers: 1 });
    expect(dispatcher.router.queuedCount).toBe(0);
    expect(worker.closed).toBeUndefined();
    expect(worker.answered).toBe(worker.received);
    expect(Object.getOwnPropertyNames(Object.prototype).sort().join()).toBe(protoKeys);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const errors = logs.records.filter((r) => (r.level as number) >= 50);
    expect(
      errors.map((r) => `${String(r.event)}: ${String(r.msg)}`),
      `seed ${SEED}`,
    ).toEqual([]);
  });
});

describe('regressions found by this fuzz', () => {
  let dispatcher: DispatcherHandle;
  let worker: EchoWorker;
  beforeAll(async () => {
    dispatcher = await startDispatcher({
      port: 0,
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      // Under the clients' 8 s: parsing a 100k-deep result took over 1 s on a loaded machine.
      taskTimeoutMs: 6000,
    });
    worker = await EchoWorker.connect({ url: dispatcher.url, id: 'w1', slots: 1, taskTypes: ['echo'] });
  });
  afterAll(async () => {
    await worker?.close();
    await dispatcher?.close();
  });

  const post = async (body: object): Promise<{ status: number; body: { error: { code: string } } }> => {
    const res = await fetch(`${dispatcher.url}/run-task`, {
      method: 'POST',
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    return { status: res.status, body: (await res.json()) as { error: { code: string } } };
  };

  it('refuses lone surrogates: the worker would answer for another task_id and the slot would leak', async () => {
    for (const field of ['task_id', 'task_type', 'label', 'parameters_json']) {
      const body = { task_id: `ls-${field}`, task_type: 'echo', label: 'a', parameters_json: '{}' };
      const res = await post({ ...body, [field]: field === 'parameters_json' ? '"\ud800"' : `x\udc00y` });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({
        code: 'invalid_request',
        message: expect.stringMatching(field),
      });
    }
    // The single slot is still free.
    expect(
      (await post({ task_id: 'after', task_type: 'echo', label: 'a', parameters_json: '1' })).status,
    ).toBe(200);
  });

  it('relays a result nested deeper than JSON.stringify can recurse, byte for byte', async () => {
    // Once a 502 (the result was parsed and re-serialised); the answer now splices the worker's text in.
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const res = await fetch(`${dispatcher.url}/run-task`, {
      method: 'POST',
      body: JSON.stringify({ task_id: 'deep', task_type: 'echo', label: 'a', parameters_json: deep }),
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    expect(res.status).toBe(200);
    expect((await res.text()).endsWith(`,"result":{"echo":${deep}}}`)).toBe(true);
    expect(
      (await post({ task_id: 'after-deep', task_type: 'echo', label: 'a', parameters_json: '1' })).status,
    ).toBe(200);
  });
});
