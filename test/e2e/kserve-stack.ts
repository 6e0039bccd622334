/**
 * The stack both KServe front end-to-end tests drive: a dispatcher with its HTTP and gRPC fronts
 * (port 0) and one real worker whose embedded model server holds a temp repository of two demo
 * embedding models (label-1, label-2) and the BYTES model `strings`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { startDispatcher, type DispatcherHandle } from '@smart-routing/dispatcher';
import { startWorker, type WorkerHandle } from '@smart-routing/worker';
import { addStringsModel, makeRepository } from '../../worker/test/model-server/helpers.js';

/** What {@link startKserveStack} started; `close()` stops the worker, the dispatcher, then removes the repository (safe to call twice). */
export interface KserveStack {
  readonly dispatcher: DispatcherHandle;
  readonly worker: WorkerHandle;
  close(): Promise<void>;
}

/** Starts the stack; resolves once the dispatcher's `/v2/health/ready` answers 200 (the worker's Hello is in). */
export async function startKserveStack(workerId: string): Promise<KserveStack> {
  const silent = pino({ level: 'silent' });
  const repo = await makeRepository(2);
  let dispatcher: DispatcherHandle | undefined;
  let worker: WorkerHandle | undefined;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      await worker?.close();
      await dispatcher?.close();
      await repo.remove();
    })());
  try {
    await addStringsModel(repo.dir);
    dispatcher = await startDispatcher({
      port: 0,
      host: '127.0.0.1',
      grpcPort: 0,
      modelRepository: repo.dir,
      logger: silent,
    });
    worker = await startWorker({
      dispatcherUrl: dispatcher.url,
      workerId,
      maxLabels: 3,
      slots: 2,
      modelRepository: repo.dir,
      logger: silent,
    });
    // Ready once the worker's Hello (announcing kserve_infer) is in.
    while ((await fetch(`${dispatcher.url}/v2/health/ready`)).status !== 200) await sleep(20);
    return { dispatcher, worker, close };
  } catch (err) {
    await close();
    throw err;
  }
}
