/**
 * POST /run-task, the producers' hot path: one handler for every body, on Node's plain `http`
 * API in front of Express (Express costs ~70 us of CPU per request here, most of the dispatcher's
 * budget; see the throughput benchmark).
 *
 *   API key? ── no ──> 401   (its name is the task's tenant)
 *   body: identity + UTF-8 ──> read here, bounded ─┐
 *         compressed / other charset ──> express.json (body-parser: gzip, deflate, br, utf-16...) ─┤
 *                                                     v
 *   JSON object? fields? parameters_json is JSON? ── no ──> 400 (catalog code)
 *                                                     v
 *   TaskTracker.submit ──> outcome ──> 200 answer (result spliced in) or catalog error
 *
 * parameters_json is checked here, once, and travels on as the producer's text (a long one by a
 * scanner, json-syntax.ts, which builds no value).
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { createKeyIdentifier } from './api-keys.js';
import type { ResolvedOptions } from './config.js';
import { DispatcherError } from './errors.js';
import { verifyUtf8 } from './http-edges.js';
import { invalidRequest, sendError, toDispatcherError, writeJson } from './http-json.js';
import { isJsonText } from './json-syntax.js';
import { completedAnswer } from './task-answer.js';
import type { RunTaskRequest, TaskReply, TaskTracker } from './task-tracker.js';

/** The path of the handler. */
export const RUN_TASK_PATH = '/run-task';

/** What the handler needs. */
export interface RunTaskRouteDeps {
  readonly options: ResolvedOptions;
  readonly tracker: TaskTracker;
  readonly logger: Logger;
  /** Submits a task [tracker.submit]; the dispatcher passes the async service's idempotent one. */
  readonly submit?: (req: RunTaskRequest, reply: TaskReply) => void;
}

// Strings reach the worker as protobuf UTF-8, where a lone surrogate becomes U+FFFD: the worker
// would answer for another task_id, the result would match no task and the slot would leak.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const wireString = () =>
  z.string().refine((s) => !LONE_SURROGATE.test(s), 'must be well-formed Unicode (no lone surrogates)');

const runTaskSchema = z.object({
  task_id: wireString().min(1).max(200),
  task_type: wireString().min(1).max(200),
  label: wireString().min(1).max(200),
  parameters_json: wireString(),
});

/** Whether a request is for this handler on the fast entry (exact path, any query). */
export function isRunTaskRequest(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  return req.method === 'POST' && (url === RUN_TASK_PATH || url.startsWith(`${RUN_TASK_PATH}?`));
}

/** Whether the body can be read as it comes: no content coding, UTF-8 (or no charset). */
function isPlainUtf8(req: IncomingMessage): boolean {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
  const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
  return charset === undefined || charset === 'utf-8' || charset === 'utf8';
}

/**
 * The POST /run-task handler: API key, body limit (after decompression), JSON object body,
 * catalog errors; answers when the task ends. Serves plain `http` and Express requests alike.
 */
export function createRunTaskHandler(
  deps: RunTaskRouteDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { options, logger } = deps;
  const identify = createKeyIdentifier(options.apiKeys, options.namedApiKeys);
  const limit = options.maxBodyBytes;
  // Any content type is read as JSON: producers often omit the header.
  const decodeJson = express.json({ limit, type: () => true, verify: verifyUtf8 }) as unknown as (
    req: IncomingMessage,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ) => void;

  const readPlain = (req: IncomingMessage, res: ServerResponse, done: (body: unknown) => void): void => {
    const tooLarge = (): void => {
      res.setHeader('Connection', 'close');
      sendError(res, new DispatcherError('payload_too_large', `the body is larger than ${limit} bytes`));
      req.resume();
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    req.on('data', (chunk: Buffer) => {
      if (overflow) return;
      size += chunk.length;
      if (size > limit) {
        overflow = true;
        chunks.length = 0;
        tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (overflow) return;
      let body: unknown;
      const buf = Buffer.concat(chunks, size);
      // Invalid UTF-8 would become U+FFFD in ids without a word: refused instead.
      if (!isUtf8(buf))
        return sendError(res, new DispatcherError('invalid_request', 'the body is not valid UTF-8'));
      try {
        body = JSON.parse(buf.toString('utf8'));
      } catch (err) {
        sendError(
          res,
          new DispatcherError('invalid_request', `the body is not valid JSON: ${(err as Error).message}`),
        );
        return;
      }
      done(body);
    });
    req.on('error', () => res.destroy());
  };

  const readDecoded = (req: IncomingMessage, res: ServerResponse, done: (body: unknown) => void): void => {
    decodeJson(req, res, (err) => {
      if (err !== undefined) return sendError(res, toDispatcherError(err, limit));
      done((req as IncomingMessage & { body?: unknown }).body);
    });
  };

  return (req, res) => {
    // The key's name is the producer's tenant (fair queueing); null = no valid key.
    const tenant = identify(req.headers);
    if (tenant === null) {
      sendError(res, new DispatcherError('unauthorized', 'missing or invalid API key'));
      req.resume();
      return;
    }
    const read = isPlainUtf8(req) ? readPlain : readDecoded;
    read(req, res, (body) => {
      try {
        runTask(body, res, deps.tracker, tenant, deps.submit);
      } catch (err) {
        // A bug here must answer this request and leave the server up.
        logger.error({ err, event: 'run_task_failed' }, 'POST /run-task failed');
        if (!res.headersSent) sendError(res, new DispatcherError('internal'));
      }
    });
  };
}

/** From this length on, parameters_json is checked by the scanner rather than parsed. */
const SCAN_FROM_CHARS = 64 * 1024;

/**
 * JSON.parse's message when parameters_json is not JSON, else undefined. A long text (a tensor as
 * JSON numbers) is checked by a scanner that builds nothing (JSON.parse spent most of its time
 * making doubles that are dropped); JSON.parse then runs only to word a refusal, and has the last
 * word, so the scanner can never refuse a text that JSON.parse accepts.
 */
function parametersJsonError(text: string): string | undefined {
  if (text.length >= SCAN_FROM_CHARS && isJsonText(text)) return undefined;
  try {
    JSON.parse(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** A parsed body: validate, submit, answer when the task ends. */
function runTask(
  rawBody: unknown,
  res: ServerResponse,
  tracker: TaskTracker,
  tenant: string | undefined,
  submit: (req: RunTaskRequest, reply: TaskReply) => void = (req, reply) => tracker.submit(req, reply),
): void {
  const parsed = runTaskSchema.safeParse(rawBody);
  if (!parsed.success) return sendError(res, invalidRequest(parsed.error));
  const body = parsed.data;
  const notJson = parametersJsonError(body.parameters_json);
  if (notJson !== undefined) {
    return sendError(res, new DispatcherError('invalid_parameters_json', `parameters_json: ${notJson}`));
  }
  let replied = false;
  res.once('close', () => {
    if (!replied) tracker.abandon(body.task_id);
  });
  submit(
    {
      taskId: body.task_id,
      taskType: body.task_type,
      label: body.label,
      parametersJson: body.parameters_json,
      tenant,
    },
    (outcome) => {
      replied = true;
      if (res.headersSent || res.destroyed) return;
      if (!outcome.ok) sendError(res, outcome.error);
      else if ('completed' in outcome) writeJson(res, 200, completedAnswer(outcome.completed));
      // Only tasks submitted with an infer request are answered with bytes; never these.
      else sendError(res, new DispatcherError('internal'));
    },
  );
}
