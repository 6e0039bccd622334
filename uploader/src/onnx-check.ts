import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { OnnxSignature } from '@smart-routing/model-repo';

/**
 * Checks an ONNX file before it is published: decodes its graph signature and creates a real
 * ONNX Runtime session from it. Both run in a worker thread, because `InferenceSession.create`
 * blocks its event loop for the whole load and decoding a large protobuf is not free either; the
 * HTTP server keeps answering meanwhile. A bad file rejects with {@link InvalidOnnxError}; it never
 * throws in the main thread's event loop.
 */

/** What the check learned about a valid model. */
export interface OnnxCheckResult {
  signature: OnnxSignature;
  /** Input names as ONNX Runtime sees them (cross-check of the decoded signature). */
  inputNames: string[];
  outputNames: string[];
}

/**
 * The bytes are not a model ONNX Runtime can load. `message` never quotes the file (parser and ONNX
 * Runtime messages can: names, strings, a linked system file's lines); `detail` has the original,
 * for the operator's log only.
 */
export class InvalidOnnxError extends Error {
  override name = 'InvalidOnnxError';
  constructor(
    message: string,
    /** The parser's or ONNX Runtime's own message, at most 300 characters. */
    readonly detail?: string,
  ) {
    super(message);
  }
}

const STAGE_MESSAGES = {
  parse: 'the file is not an ONNX model protobuf',
  load: 'ONNX Runtime cannot load it',
} as const;

/** Options of {@link checkOnnxModel}. */
export interface OnnxCheckOptions {
  /** Give up (and terminate the thread) after this long, default 300 000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const require = createRequire(import.meta.url);

// onnxruntime-node sends telemetry (/tmp/mat-debug-<pid>.log, a database under ~/.cache/Microsoft/)
// unless this is set when its first session is created (the check thread shares the process env).
// An explicit setting (ORT_DISABLE_TELEMETRY=0 turns it on) is kept.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

// Plain CommonJS run by `new Worker(..., { eval: true })`: works the same from src (vitest) and dist.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFile } = require('node:fs/promises');
(async () => {
  let stage = 'read';
  try {
    const bytes = await readFile(workerData.path);
    stage = 'parse';
    const { readOnnxSignature } = await import(workerData.modelRepoUrl);
    const signature = readOnnxSignature(bytes);
    stage = 'load';
    const ort = require(workerData.ortPath);
    const session = await ort.InferenceSession.create(bytes);
    const result = { ok: true, signature, inputNames: [...session.inputNames], outputNames: [...session.outputNames] };
    await session.release();
    parentPort.postMessage(result);
  } catch (err) {
    parentPort.postMessage({ ok: false, stage, message: String((err && err.message) || err) });
  }
})();
`;

type WorkerReply =
  ({ ok: true } & OnnxCheckResult) | { ok: false; stage: 'read' | 'parse' | 'load'; message: string };

/**
 * Loads `path` with ONNX Runtime in a worker thread and returns its signature.
 * @throws InvalidOnnxError when the file is not a loadable ONNX model; the read error when the file
 *   cannot be read; the abort reason when `signal` aborts; an Error on timeout.
 */
export function checkOnnxModel(path: string, options: OnnxCheckOptions = {}): Promise<OnnxCheckResult> {
  const { signal, timeoutMs = 300_000 } = options;
  if (signal?.aborted) return Promise.reject(signal.reason as Error);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      path,
      ortPath: require.resolve('onnxruntime-node'),
      modelRepoUrl: pathToFileURL(require.resolve('@smart-routing/model-repo')).href,
    },
  });
  return new Promise<OnnxCheckResult>((resolve, reject) => {
    let settled = false;
    const finish = (err: unknown, result?: OnnxCheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve(result!);
    };
    const onAbort = (): void => finish(signal?.reason ?? new Error('aborted'));
    const timer = setTimeout(
      () => finish(new Error(`ONNX check timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (reply: WorkerReply) => {
      if (reply.ok) {
        finish(undefined, {
          signature: reply.signature,
          inputNames: reply.inputNames,
          outputNames: reply.outputNames,
        });
      } else if (reply.stage === 'read') {
        finish(new Error(`cannot read ${path}: ${reply.message}`));
      } else {
        finish(new InvalidOnnxError(STAGE_MESSAGES[reply.stage], reply.message.slice(0, 300)));
      }
    });
    worker.once('error', (err) =>
      finish(new InvalidOnnxError(STAGE_MESSAGES.load, err.message.slice(0, 300))),
    );
    worker.once('exit', (code) =>
      finish(new InvalidOnnxError(`the ONNX check thread exited with code ${code}`)),
    );
  });
}
