import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-node';

/**
 * One ONNX Runtime session in its own `worker_threads` thread.
 *
 * `InferenceSession.create` blocks the event loop of its thread for the whole load (a 1.35 s load
 * left a 1.35 s gap in a timer), so loads must not run on the HTTP thread. A session cannot move
 * between threads, so inference runs in the same thread. One thread per model keeps a slow load of
 * one model from delaying inference on another.
 *
 *   main thread (HTTP)                      session thread
 *   open(path) ── {op: load} ─────────────▶ InferenceSession.create (blocks this thread only)
 *              ◀──────────── {op: loaded, inputs, outputs}
 *   run(feeds) ── {op: run, id, feeds} ───▶ session.run
 *              ◀──────────── {op: result, id, outputs}
 *   close()    ── {op: release} ──────────▶ session.release(), then the thread is terminated
 */

/** A tensor crossing the thread boundary (the ORT `Tensor` parts that structured clone keeps). */
export interface ThreadTensor {
  /** ORT tensor type: 'float32', 'int64', 'bool', 'string', ... */
  type: string;
  dims: number[];
  data: ArrayBufferView | string[];
}

/** A graph input or output as ONNX Runtime reports it. */
export interface ValueSignature {
  name: string;
  /** ORT tensor type; undefined for non-tensor values. */
  type?: string;
  /** Dimensions: numbers, or symbolic names for variable ones. */
  shape: (number | string)[];
}

/** Inputs and outputs of a loaded session. */
export interface SessionSignature {
  inputs: ValueSignature[];
  outputs: ValueSignature[];
}

type ThreadRequest =
  | { op: 'load'; path: string; sessionOptions: Ort.InferenceSession.SessionOptions }
  | { op: 'run'; id: number; feeds: Record<string, ThreadTensor>; outputs: string[] }
  | { op: 'release' };

type ThreadReply =
  | { op: 'ready' }
  | { op: 'loaded'; signature: SessionSignature }
  | { op: 'result'; id: number; outputs: Record<string, ThreadTensor> }
  | { op: 'released' }
  | { op: 'failed'; id?: number; message: string };

const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');

// onnxruntime-node sends telemetry (/tmp/mat-debug-<pid>.log, a database under ~/.cache/Microsoft/)
// unless this is set when its first session is created; it reads the process env, shared with
// the threads. An explicit setting (ORT_DISABLE_TELEMETRY=0 turns it on) is kept.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

/**
 * The thread's program. It is sent as source (`eval: true`), so it must not use anything from
 * this module's scope: it loads its modules with `require` (the thread runs as a CommonJS script)
 * and gets ONNX Runtime's resolved path in `workerData`. Shipping source rather than a file keeps
 * it working both from `dist` and when tests run the TypeScript sources.
 */
function sessionThreadMain(): void {
  /* eslint-disable @typescript-eslint/no-require-imports -- eval'd thread code has no import statements */
  const threads = require('node:worker_threads') as typeof import('node:worker_threads');
  const port = threads.parentPort!;
  const ort = require((threads.workerData as { ortPath: string }).ortPath) as typeof Ort;
  /* eslint-enable @typescript-eslint/no-require-imports */
  let session: Ort.InferenceSession | undefined;

  const post = (reply: ThreadReply): void => port.postMessage(reply);
  const signature = (values: readonly Ort.InferenceSession.ValueMetadata[]): ValueSignature[] =>
    values.map((v) =>
      v.isTensor ? { name: v.name, type: v.type, shape: Array.from(v.shape) } : { name: v.name, shape: [] },
    );

  async function handle(msg: ThreadRequest): Promise<void> {
    switch (msg.op) {
      case 'load':
        session = await ort.InferenceSession.create(msg.path, msg.sessionOptions);
        post({
          op: 'loaded',
          signature: { inputs: signature(session.inputMetadata), outputs: signature(session.outputMetadata) },
        });
        return;
      case 'run': {
        if (!session) throw new Error('no session is loaded');
        const feeds: Record<string, Ort.Tensor> = {};
        for (const [name, t] of Object.entries(msg.feeds)) {
          feeds[name] = new ort.Tensor(t.type as Ort.Tensor.Type, t.data as Ort.Tensor.DataType, t.dims);
        }
        const result = await session.run(feeds, msg.outputs);
        const outputs: Record<string, ThreadTensor> = {};
        const transfer = new Set<ArrayBuffer>();
        for (const name of msg.outputs) {
          const t = result[name];
          if (!t) throw new Error(`the model produced no output '${name}'`);
          const data = t.data as ArrayBufferView | string[];
          outputs[name] = { type: t.type, dims: Array.from(t.dims), data };
          // ORT's result arrays are this run's own: moved to the main thread, not copied.
          if (!Array.isArray(data) && data.buffer instanceof ArrayBuffer) transfer.add(data.buffer);
        }
        port.postMessage({ op: 'result', id: msg.id, outputs } satisfies ThreadReply, [...transfer]);
        return;
      }
      case 'release':
        await session?.release();
        session = undefined;
        post({ op: 'released' });
        return;
    }
  }

  port.on('message', (msg: ThreadRequest) => {
    handle(msg).catch((err: unknown) => {
      post({
        op: 'failed',
        id: msg.op === 'run' ? msg.id : undefined,
        message: err instanceof Error ? err.message : String(err),
      });
    });
  });
  // ORT is imported: the thread may now be ended safely (see SpareThread.drop).
  post({ op: 'ready' });
}

const threadSource = `(${sessionThreadMain.toString()})();`;

function startThread(): Worker {
  return new Worker(threadSource, { eval: true, workerData: { ortPath } });
}

/**
 * A started thread (ONNX Runtime already imported) kept ready for the next load: starting a thread
 * and importing ORT costs ~50 ms, which would otherwise count in every model load. Its owner (the
 * model store) calls `prewarm()` after a load finishes, never during one (on 2 cores the two would
 * slow each other), and `drop()` on close: a thread still holding ORT when the process exits can
 * abort it ("terminate called after throwing Napi::Error"). Unref'd, so it never keeps a process alive.
 */
export class SpareThread {
  private spare: { worker: Worker; ready: Promise<void> } | undefined;

  /** Starts a spare thread if there is none. */
  prewarm(): void {
    if (this.spare) return;
    const worker = startThread();
    worker.unref();
    const ready = new Promise<void>((resolve) => {
      const onReady = (reply: ThreadReply): void => {
        if (reply.op !== 'ready') return;
        worker.off('message', onReady);
        resolve();
      };
      worker.on('message', onReady);
      worker.once('exit', () => resolve());
    });
    // A spare that dies is simply replaced later.
    const forget = (): void => {
      if (this.spare?.worker === worker) this.spare = undefined;
    };
    worker.once('error', forget);
    worker.once('exit', forget);
    this.spare = { worker, ready };
  }

  /** True while a spare thread is kept. */
  get held(): boolean {
    return this.spare !== undefined;
  }

  /** The spare thread (ref'd, now the caller's), or a new one when there is none. */
  take(): Worker {
    const worker = this.spare?.worker ?? startThread();
    this.spare = undefined;
    worker.ref();
    return worker;
  }

  /**
   * Ends the spare thread, once ORT has finished loading in it: terminating a thread in the middle
   * of a native addon's start aborts the whole process. Safe to call twice.
   */
  async drop(): Promise<void> {
    const s = this.spare;
    this.spare = undefined;
    if (!s) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([s.ready, new Promise<void>((resolve) => (timer = setTimeout(resolve, 10_000)))]);
    clearTimeout(timer);
    await s.worker.terminate();
  }
}

/**
 * The session options every model gets unless the server is given others (they are merged over
 * these): ORT's own defaults (intra-op threads = cores, sequential execution, all graph
 * optimisations), quiet logging, and intra-op threads that sleep instead of spinning between
 * runs. Spinning threads keep their cores busy while a request is still being read or answered;
 * on a small machine that CPU is what the HTTP thread (and the dispatcher and worker next to it)
 * needs. The benchmark's in-process baseline uses the same options.
 */
export const DEFAULT_SESSION_OPTIONS: Readonly<Ort.InferenceSession.SessionOptions> = Object.freeze({
  logSeverityLevel: 4,
  extra: { session: { intra_op: { allow_spinning: '0' } } },
});

/** Options of `SessionThread.open`. */
export interface SessionThreadOptions {
  /** ONNX Runtime session options (thread counts, optimisation level), merged over `DEFAULT_SESSION_OPTIONS`. Default: those. */
  sessionOptions?: Ort.InferenceSession.SessionOptions;
  /** Called once if the thread dies on its own (crash, out of memory), not after `close()`. */
  onExit?: (reason: string) => void;
  /** Where to take an already started thread from. Default: start a new thread. */
  spare?: SpareThread;
}

/** Thrown by `run` when ONNX Runtime rejects the inputs or fails; the thread stays usable. */
export class SessionRunError extends Error {
  override name = 'SessionRunError';
}

/** A loaded session in its own thread. Create with `SessionThread.open`. */
export class SessionThread {
  private readonly pending = new Map<
    number,
    { resolve: (o: Record<string, ThreadTensor>) => void; reject: (e: Error) => void }
  >();
  private nextId = 1;
  private closing: Promise<void> | undefined;
  private released: (() => void) | undefined;
  private exited = false;

  private constructor(
    private readonly worker: Worker,
    /** Inputs and outputs as ONNX Runtime sees them. */
    readonly signature: SessionSignature,
    private readonly options: SessionThreadOptions,
  ) {
    worker.on('message', (reply: ThreadReply) => this.onReply(reply));
    worker.on('error', (err) => this.onExit(`session thread failed: ${err.message}`));
    worker.on('exit', (code) => this.onExit(`session thread exited with code ${code}`));
  }

  /**
   * Starts a thread and loads `modelPath` in it. Rejects with ONNX Runtime's message when the
   * model cannot be loaded (the thread is gone then).
   */
  static async open(modelPath: string, options: SessionThreadOptions = {}): Promise<SessionThread> {
    const worker = options.spare ? options.spare.take() : startThread();
    let signature: SessionSignature;
    try {
      signature = await new Promise<SessionSignature>((resolve, reject) => {
        const onMessage = (reply: ThreadReply): void => {
          if (reply.op === 'ready') return;
          cleanup();
          if (reply.op === 'loaded') resolve(reply.signature);
          else reject(new Error(reply.op === 'failed' ? reply.message : `unexpected reply '${reply.op}'`));
        };
        const onError = (err: Error): void => {
          cleanup();
          reject(err);
        };
        const onExit = (code: number): void => {
          cleanup();
          reject(new Error(`session thread exited with code ${code} while loading`));
        };
        const cleanup = (): void => {
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
        const request: ThreadRequest = {
          op: 'load',
          path: modelPath,
          // ORT prints run errors to stderr itself (hence logSeverityLevel 4); they reach the caller anyway.
          sessionOptions: { ...DEFAULT_SESSION_OPTIONS, ...options.sessionOptions },
        };
        worker.postMessage(request);
      });
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    return new SessionThread(worker, signature, options);
  }

  /**
   * Runs the session. The ArrayBuffers under typed-array feeds are transferred whole (the caller
   * must not reuse them, nor anything else they hold: never pass a view of a pooled Buffer).
   */
  run(feeds: Record<string, ThreadTensor>, outputs: string[]): Promise<Record<string, ThreadTensor>> {
    if (this.closing || this.exited) return Promise.reject(new Error('the session is closed'));
    const id = this.nextId++;
    // A Set: two feeds may be views of one request body, and a buffer may be listed once only.
    const transfer = new Set<ArrayBuffer>();
    for (const t of Object.values(feeds)) {
      if (!Array.isArray(t.data) && t.data.buffer instanceof ArrayBuffer) transfer.add(t.data.buffer);
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request: ThreadRequest = { op: 'run', id, feeds, outputs };
      this.worker.postMessage(request, [...transfer]);
    });
  }

  /** Number of runs not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Releases the session and ends the thread. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.exited) {
        // Ask for a clean release first; terminate anyway if it does not answer soon.
        await new Promise<void>((resolve) => {
          this.released = resolve;
          const timer = setTimeout(resolve, 5000);
          timer.unref();
          this.worker.postMessage({ op: 'release' } satisfies ThreadRequest);
        });
        await this.worker.terminate();
      }
      this.failPending('the session was unloaded');
    })();
    return this.closing;
  }

  private onReply(reply: ThreadReply): void {
    if (reply.op === 'released') {
      this.released?.();
      return;
    }
    if (reply.op === 'loaded' || reply.op === 'ready') return;
    if (reply.id === undefined) {
      // A failed release: terminate() follows anyway.
      this.released?.();
      return;
    }
    const call = this.pending.get(reply.id);
    if (!call) return;
    this.pending.delete(reply.id);
    if (reply.op === 'result') call.resolve(reply.outputs);
    else call.reject(new SessionRunError(reply.message));
  }

  private onExit(reason: string): void {
    if (this.exited) return;
    this.exited = true;
    this.released?.();
    this.failPending(reason);
    if (!this.closing) this.options.onExit?.(reason);
  }

  private failPending(reason: string): void {
    for (const call of this.pending.values()) call.reject(new Error(reason));
    this.pending.clear();
  }
}
