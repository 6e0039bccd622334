/**
 * Fuzz of the worker protocol (issue 5, part 6), in three parts:
 *
 * 1. The codec alone: random valid messages of every type survive encode -> decode exactly;
 *    random and mutated bytes either decode to a known body or throw ProtocolError (nothing else),
 *    and whatever decodes re-encodes to a fixed point.
 * 2. The dispatcher side: raw WebSocket clients send random bytes, mutated frames of every
 *    WorkerMessage type, text frames, non-Hello first frames, absurd Hellos, results for unknown
 *    tasks, frames over maxPayload and garbage under the WebSocket framing. Each connection's fate
 *    (Welcome, stays open, or closed with 1002 / 1003 / 1007 / 1008 / 1009) is predicted by an
 *    oracle that decodes the same bytes; meanwhile a well-behaved worker keeps serving a steady
 *    stream of producer tasks, all of which must succeed.
 * 3. The worker side: a real worker (startWorker, tritonUrl 'none') connected to a raw server that
 *    sends garbage and mutated DispatcherMessages must stay connected, answer every Ping, and answer
 *    every RunTask that decodes.
 *
 * Replay a failure with the seed it prints: FUZZ_SEED=<seed> npx vitest run test/fuzz
 */
import { isUtf8 } from 'node:buffer';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  PROTOCOL_VERSION,
  ProtocolError,
  decodeDispatcherMessage,
  decodeWorkerMessage,
  encodeDispatcherMessage,
  encodeWorkerMessage,
  type DispatcherMessageInput,
  type WorkerMessage,
  type WorkerMessageInput,
} from '@smart-routing/proto';
import { seededRandom, startDispatcher, type DispatcherHandle } from '@smart-routing/dispatcher';
import { startWorker, type WorkerHandle } from '@smart-routing/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { EchoWorker } from './echo-worker.js';
import { RawWorker } from './raw-worker.js';
import { Rng, Tally, captureLogger, fuzzSeed, mutateBytes, replay, runPool } from './fuzz-kit.js';

const SEED = fuzzSeed();
const where = `seed ${SEED} (${replay(SEED)})`;

// ---------------------------------------------------------------- message generators

const STATES = ['ready', 'draining', 'unspecified'] as const;
const TASK_ERRORS = [
  'unspecified',
  'bad_parameters',
  'unknown_task_type',
  'label_load_failed',
  'label_not_found',
  'inference_failed',
  'internal',
  'draining',
  'no_slot',
  'model_server_unavailable',
] as const;
const KINDS = ['unspecified', 'loaded', 'evicted', 'load_failed'] as const;

const labels = (rng: Rng, max: number): string[] =>
  Array.from({ length: rng.int(0, max) }, () =>
    rng.bool(0.5) ? `label-${rng.int(1, 9)}` : rng.unicode(rng.int(0, 12)),
  );
const double = (rng: Rng): number =>
  rng.weighted<() => number>([
    [4, () => rng.next() * 5000],
    [1, () => rng.pick([0, -1, 1e308, Number.MIN_VALUE, Number.NaN, Number.POSITIVE_INFINITY, -0])],
  ])();
const uint32 = (rng: Rng): number =>
  rng.pick([0, 1, rng.int(0, 100), 2 ** 31, 2 ** 32 - 1, rng.int(0, 2 ** 32 - 1)]);

/** A valid, fully populated worker -> dispatcher message (every field set, so it round-trips exactly). */
function workerMessage(
  rng: Rng,
  body = rng.pick(['hello', 'taskResult', 'labelEvent', 'heartbeat'] as const),
): WorkerMessageInput {
  switch (body) {
    case 'hello':
      return {
        hello: {
          protocolVersion: PROTOCOL_VERSION,
          workerId: rng.unicode(rng.int(0, 20)),
          labelCapacity: rng.int(0, 8),
          taskSlots: rng.int(0, 8),
          loadedLabels: labels(rng, 4),
          taskTypes: [`fuzz-${rng.int(0, 3)}`],
          state: rng.pick(STATES),
          labelFreeTaskTypes: rng.int(0, 1) === 0 ? [] : ['echo'],
          memoryBudgetBytes: rng.int(0, 2 ** 20) * 2 ** 16,
        },
      };
    case 'taskResult':
      return {
        taskResult: {
          taskId: rng.unicode(rng.int(0, 30)),
          ...rng.pick([
            () => ({ resultJson: JSON.stringify(rng.json(3)) }),
            () => ({ error: { code: rng.pick(TASK_ERRORS), message: rng.unicode(rng.int(0, 20)) } }),
            () => ({ inferResponse: rng.bytes(rng.int(0, 64)) }),
          ])(),
          inferHeaderLength: uint32(rng),
          label: rng.unicode(rng.int(0, 10)),
          labelMiss: rng.bool(),
          loadMs: double(rng),
          runMs: double(rng),
          loadedLabels: labels(rng, 4),
        },
      };
    case 'labelEvent':
      return {
        labelEvent: {
          kind: rng.pick(KINDS),
          label: rng.unicode(rng.int(0, 10)),
          durationMs: double(rng),
          message: rng.unicode(rng.int(0, 20)),
          loadedLabels: labels(rng, 4),
          footprintBytes: rng.int(0, 2 ** 20) * 2 ** 16,
        },
      };
    case 'heartbeat':
      return {
        heartbeat: {
          inFlight: uint32(rng),
          state: rng.pick(STATES),
          loadedLabels: labels(rng, 4),
          pingId: rng.int(0, Number.MAX_SAFE_INTEGER),
          runningTaskIds: labels(rng, 3),
        },
      };
  }
}

/** A valid, fully populated dispatcher -> worker message. */
function dispatcherMessage(
  rng: Rng,
  body = rng.pick(['welcome', 'runTask', 'labelOrder', 'drain', 'ping', 'cancelTask', 'leadership'] as const),
): DispatcherMessageInput {
  switch (body) {
    case 'welcome':
      return {
        welcome: {
          protocolVersion: rng.bool(0.8) ? PROTOCOL_VERSION : uint32(rng),
          heartbeatIntervalMs: uint32(rng),
          labelCapacity: uint32(rng),
          taskSlots: uint32(rng),
          maxFrameBytes: uint32(rng),
          fencingToken: rng.int(0, Number.MAX_SAFE_INTEGER),
          replicaId: rng.unicode(rng.int(0, 12)),
          role: rng.pick(['standalone', 'leader', 'standby', 'unspecified'] as const),
        },
      };
    case 'runTask':
      return {
        runTask: {
          taskId: rng.unicode(rng.int(0, 30)),
          taskType: rng.pick(['echo', 'echo', 'embed_texts', 'infer', rng.unicode(rng.int(0, 10))]),
          label: rng.pick(['', 'label-1', 'label-2', rng.unicode(rng.int(0, 10)), '../x', '.hidden']),
          parametersJson: rng.bool(0.8) ? JSON.stringify(rng.json(3)) : rng.unicode(rng.int(0, 20)),
          evictLabel: rng.pick(['', 'label-1', rng.unicode(rng.int(0, 10))]),
          attempt: uint32(rng),
          deadlineUnixMs: rng.int(0, Number.MAX_SAFE_INTEGER),
          inferRequest: rng.bytes(rng.int(0, 64)),
          inferHeaderLength: uint32(rng),
          fencingToken: rng.int(0, Number.MAX_SAFE_INTEGER),
        },
      };
    case 'labelOrder':
      return {
        labelOrder: {
          action: rng.pick(['load', 'unload', 'unspecified'] as const),
          label: rng.pick(['label-1', 'label-3', rng.unicode(rng.int(0, 10)), '', '..']),
          fencingToken: rng.int(0, Number.MAX_SAFE_INTEGER),
        },
      };
    case 'drain':
      return { drain: { reason: rng.unicode(rng.int(0, 20)) } };
    case 'ping':
      return { ping: { pingId: rng.int(0, Number.MAX_SAFE_INTEGER) } };
    case 'cancelTask':
      return {
        cancelTask: {
          taskId: rng.unicode(rng.int(0, 30)),
          fencingToken: rng.int(0, Number.MAX_SAFE_INTEGER),
        },
      };
    case 'leadership':
      return {
        leadership: {
          fencingToken: rng.int(0, Number.MAX_SAFE_INTEGER),
          replicaId: rng.unicode(rng.int(0, 12)),
        },
      };
  }
}

const bodyOf = (m: object): string => Object.keys(m)[0]!;

// ---------------------------------------------------------------- 1. codec

describe(`protobuf codec fuzz (seed ${SEED})`, () => {
  it('round-trips random valid messages of every type exactly, both directions', () => {
    const rng = new Rng(SEED);
    for (let i = 0; i < 600; i++) {
      const w = workerMessage(rng);
      expect(decodeWorkerMessage(Buffer.from(encodeWorkerMessage(w))), where).toEqual({
        body: bodyOf(w),
        ...w,
      });
      const d = dispatcherMessage(rng);
      expect(decodeDispatcherMessage(Buffer.from(encodeDispatcherMessage(d))), where).toEqual({
        body: bodyOf(d),
        ...d,
      });
    }
  });

  it('decodes random and mutated bytes to a known body or a ProtocolError, and re-encodes to a fixed point', () => {
    const rng = new Rng(SEED ^ 0x5eed);
    const outcomes = new Tally();
    const directions = [
      {
        name: 'worker',
        decode: decodeWorkerMessage,
        encode: encodeWorkerMessage,
        valid: () => encodeWorkerMessage(workerMessage(rng)),
        bodies: ['hello', 'taskResult', 'labelEvent', 'heartbeat'],
      },
      {
        name: 'dispatcher',
        decode: decodeDispatcherMessage,
        encode: encodeDispatcherMessage,
        valid: () => encodeDispatcherMessage(dispatcherMessage(rng)),
        bodies: ['welcome', 'runTask', 'labelOrder', 'drain', 'ping', 'cancelTask', 'leadership'],
      },
    ];
    for (const dir of directions) {
      for (let i = 0; i < 1500; i++) {
        const bytes = i % 3 === 0 ? rng.bytes(rng.int(0, 64)) : mutateBytes(rng, dir.valid());
        let decoded: { body: string } & Record<string, unknown>;
        try {
          decoded = dir.decode(bytes) as typeof decoded;
        } catch (e) {
          expect(e, `${where}: ${bytes.toString('hex')}`).toBeInstanceOf(ProtocolError);
          outcomes.add(`${dir.name}:error`);
          continue;
        }
        outcomes.add(`${dir.name}:${decoded.body}`);
        expect(dir.bodies, where).toContain(decoded.body);
        const { body, ...inner } = decoded;
        const again = dir.decode(Buffer.from(dir.encode(inner as never)));
        expect(again, `${where}: ${bytes.toString('hex')}`).toEqual({ body, ...inner });
      }
    }
    console.log(`codec fuzz seed=${SEED}: ${outcomes.total} byte strings; ${outcomes}`);
  });

  it('turns a lone surrogate into U+FFFD on the wire (why the HTTP edge refuses them)', () => {
    const sent = 'task-\ud800-1';
    const got = decodeDispatcherMessage(Buffer.from(encodeDispatcherMessage({ runTask: { taskId: sent } })));
    expect(got.body === 'runTask' && got.runTask.taskId).not.toBe(sent);
  });
});

// ---------------------------------------------------------------- 2. dispatcher side

/** What one step must lead to. */
type Expectation = { welcome: true } | { open: true } | { close: number[] };

interface Step {
  bytes: Buffer;
  /** 'binary' (default), 'text' frame, or 'tcp' bytes under the framing. */
  how?: 'text' | 'tcp';
  expect: Expectation;
}

interface ProtoCase {
  kind: string;
  steps: Step[];
  /** Check the router's picture after a Welcome (absurd Hellos are clamped). */
  clamped?: boolean;
}

const MAX_PAYLOAD = 2 * 1024 * 1024;
// Windows wide enough for a starved machine (a busy core and more): at 300 ms a fuzz client's valid
// Hello was refused as late, at 3 s the good worker's heartbeats were late and it was dropped.
const HELLO_TIMEOUT_MS = 1500;
const WORKER_TIMEOUT_MS = 8000;

/** The contract's answer to one binary frame, from the same decoder the dispatcher uses. */
function frameOracle(bytes: Buffer, registered: boolean): Expectation {
  if (bytes.length > MAX_PAYLOAD) return { close: [1009] };
  let message: WorkerMessage;
  try {
    message = decodeWorkerMessage(bytes);
  } catch {
    return { close: [1002] };
  }
  if (registered) return message.body === 'hello' ? { close: [1002] } : { open: true };
  if (message.body !== 'hello' || message.hello.protocolVersion !== PROTOCOL_VERSION)
    return { close: [1002] };
  return { welcome: true };
}

/** A first frame accepted as Hello must not make the fuzz client a candidate for producer tasks. */
function servesProducerTasks(bytes: Buffer): boolean {
  try {
    const m = decodeWorkerMessage(bytes);
    return m.body === 'hello' && (m.hello.taskTypes.length === 0 || m.hello.taskTypes.includes('echo'));
  } catch {
    return false;
  }
}

const validHello = (rng: Rng): Buffer => Buffer.from(encodeWorkerMessage(workerMessage(rng, 'hello')));

function buildProtoCorpus(rng: Rng): ProtoCase[] {
  const cases: ProtoCase[] = [];
  const repeat = (n: number, f: () => void): void => {
    for (let i = 0; i < n; i++) f();
  };
  /** A first frame from `make`, redrawn while it would register a worker serving producer tasks. */
  const firstFrame = (kind: string, make: () => Buffer): void => {
    let bytes = make();
    while (servesProducerTasks(bytes)) bytes = make();
    const expectation = frameOracle(bytes, false);
    cases.push({ kind, steps: [{ bytes, expect: expectation }], clamped: 'welcome' in expectation });
  };

  repeat(60, () => firstFrame('first-random-bytes', () => rng.bytes(rng.int(0, 300))));
  repeat(80, () =>
    firstFrame('first-mutated', () => mutateBytes(rng, encodeWorkerMessage(workerMessage(rng)))),
  );
  repeat(20, () => {
    const bytes = Buffer.from(
      encodeWorkerMessage(workerMessage(rng, rng.pick(['taskResult', 'labelEvent', 'heartbeat'] as const))),
    );
    cases.push({ kind: 'first-not-hello', steps: [{ bytes, expect: { close: [1002] } }] });
  });
  repeat(10, () => {
    const version = rng.pick([0, PROTOCOL_VERSION + 1, 2 ** 32 - 1, rng.int(2, 1000)]);
    const bytes = Buffer.from(
      encodeWorkerMessage({
        hello: {
          protocolVersion: version,
          workerId: 'v',
          labelCapacity: 1,
          taskSlots: 1,
          taskTypes: ['fuzz'],
        },
      }),
    );
    cases.push({ kind: 'hello-bad-version', steps: [{ bytes, expect: { close: [1002] } }] });
  });
  repeat(30, () => {
    const bytes = rng.bool(0.5) ? rng.bytes(rng.int(0, 100)) : Buffer.from(rng.unicode(rng.int(0, 40)));
    const expectation = { close: [isUtf8(bytes) ? 1003 : 1007] };
    const steps: Step[] = rng.bool() ? [{ bytes: validHello(rng), expect: { welcome: true } }] : [];
    steps.push({ bytes, how: 'text', expect: expectation });
    cases.push({ kind: 'text-frame', steps });
  });
  repeat(90, () => {
    const steps: Step[] = [{ bytes: validHello(rng), expect: { welcome: true } }];
    for (let n = rng.int(1, 8); n > 0; n--) {
      const bytes = rng.weighted<() => Buffer>([
        [1, () => rng.bytes(rng.int(0, 200))],
        [3, () => mutateBytes(rng, encodeWorkerMessage(workerMessage(rng)))],
        [
          2,
          () =>
            Buffer.from(
              encodeWorkerMessage(
                workerMessage(rng, rng.pick(['taskResult', 'labelEvent', 'heartbeat'] as const)),
              ),
            ),
        ],
      ])();
      const expectation = frameOracle(bytes, true);
      steps.push({ bytes, expect: expectation });
      if ('close' in expectation) break;
    }
    cases.push({ kind: 'session', steps });
  });
  repeat(20, () => {
    // Results for tasks this worker never got, events for labels it never had: ignored, not fatal.
    const steps: Step[] = [{ bytes: validHello(rng), expect: { welcome: true } }];
    for (let n = rng.int(2, 6); n > 0; n--) {
      const bytes = Buffer.from(
        encodeWorkerMessage(
          rng.weighted<WorkerMessageInput>([
            [
              2,
              {
                taskResult: {
                  taskId: `no-such-task-${rng.int(0, 1e6)}`,
                  resultJson: rng.pick(['{}', 'not json', '[[[', '']),
                  loadedLabels: labels(rng, 3),
                  runMs: 1e300,
                  loadMs: -5,
                },
              },
            ],
            [
              1,
              {
                taskResult: {
                  taskId: rng.unicode(rng.int(0, 10)),
                  error: { code: rng.pick(TASK_ERRORS), message: 'x'.repeat(rng.int(0, 5000)) },
                },
              },
            ],
            [
              1,
              {
                labelEvent: {
                  kind: rng.pick(KINDS),
                  label: rng.unicode(rng.int(0, 300)),
                  durationMs: Number.NaN,
                  loadedLabels: labels(rng, 20),
                },
              },
            ],
            [
              1,
              {
                heartbeat: {
                  inFlight: 2 ** 32 - 1,
                  state: rng.pick(STATES),
                  loadedLabels: labels(rng, 100),
                  pingId: rng.int(0, 1e9),
                },
              },
            ],
          ]),
        ),
      );
      steps.push({ bytes, expect: { open: true } });
    }
    cases.push({ kind: 'unknown-results', steps });
  });
  for (const hello of [
    { labelCapacity: 0, taskSlots: 0 },
    { labelCapacity: 1e9, taskSlots: 1 },
    { labelCapacity: 2 ** 32 - 1, taskSlots: 2 ** 32 - 1 },
    { labelCapacity: 2, taskSlots: 1e9 },
    { labelCapacity: 1e9, taskSlots: 1e9, loadedLabels: Array.from({ length: 100_000 }, (_, i) => `l${i}`) },
    { labelCapacity: 3, taskSlots: 1, loadedLabels: Array.from({ length: 100_000 }, (_, i) => `l${i}`) },
    { labelCapacity: 1, taskSlots: 1, workerId: 'w'.repeat(1_000_000) },
    { labelCapacity: 1, taskSlots: 1, taskTypes: Array.from({ length: 10_000 }, (_, i) => `fuzz-type-${i}`) },
    { labelCapacity: 4, taskSlots: 4, loadedLabels: ['x'.repeat(500_000), 'x'.repeat(500_000)] },
  ]) {
    const bytes = Buffer.from(
      encodeWorkerMessage({
        hello: {
          protocolVersion: PROTOCOL_VERSION,
          workerId: 'absurd',
          taskTypes: ['fuzz'],
          state: 'ready',
          ...hello,
        },
      }),
    );
    cases.push({ kind: 'absurd-hello', steps: [{ bytes, expect: { welcome: true } }], clamped: true });
  }
  repeat(4, () => {
    const bytes = Buffer.alloc(MAX_PAYLOAD + rng.int(1, 1000), 0x0a);
    const steps: Step[] = rng.bool() ? [{ bytes: validHello(rng), expect: { welcome: true } }] : [];
    steps.push({ bytes, expect: { close: [1009] } });
    cases.push({ kind: 'over-max-payload', steps });
  });
  repeat(20, () => {
    const registered = rng.bool();
    const steps: Step[] = registered ? [{ bytes: validHello(rng), expect: { welcome: true } }] : [];
    // Under the framing: a framing error (1002/1007/1009), or an unfinished frame that the Hello
    // timeout (1008) or the liveness check (terminate: 1006) ends.
    steps.push({
      bytes: rng.bytes(rng.int(1, 64)),
      how: 'tcp',
      expect: { close: registered ? [1002, 1006, 1007, 1009] : [1002, 1007, 1008, 1009] },
    });
    cases.push({ kind: 'tcp-garbage', steps });
  });
  repeat(3, () => cases.push({ kind: 'silent', steps: [] }));

  for (let i = cases.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [cases[i], cases[j]] = [cases[j]!, cases[i]!];
  }
  return cases;
}

describe(`worker endpoint fuzz, dispatcher side (seed ${SEED})`, () => {
  let dispatcher: DispatcherHandle;
  let good: EchoWorker;
  const logs = captureLogger('warn');
  let cases: ReturnType<typeof buildProtoCorpus>;

  beforeAll(async () => {
    // Built before the good worker connects: on a busy machine the build holds the event loop
    // longer than the dispatcher waits for a silent worker.
    cases = buildProtoCorpus(new Rng(SEED));
    dispatcher = await startDispatcher({
      port: 0,
      host: '127.0.0.1',
      logger: logs.logger,
      random: seededRandom(SEED),
      helloTimeoutMs: HELLO_TIMEOUT_MS,
      heartbeatIntervalMs: 500,
      workerTimeoutMs: WORKER_TIMEOUT_MS,
      maxPayloadBytes: MAX_PAYLOAD,
      // The absurd-hello cases expect a Welcome for a ~1 MB Hello (clamped), over the 64 KiB default.
      preHelloMaxBytes: MAX_PAYLOAD,
      taskTimeoutMs: 5000,
      // Hundreds of short sessions from one address are this test's input, not a peer to quarantine.
      minWorkerSessionMs: 0,
    });
    good = await EchoWorker.connect({
      url: dispatcher.url,
      id: 'good',
      taskTypes: ['echo'],
      labels: ['ctl'],
      slots: 4,
    });
  });

  afterAll(async () => {
    await good?.close();
    await dispatcher?.close();
  });

  // A few hundred connections, each waiting for its close: minutes on a starved machine, not 30 s.
  it(
    'closes each bad connection with the right code while a good worker keeps serving',
    { timeout: 120_000 },
    async () => {
      const fates = new Tally();
      const failures: string[] = [];
      const clients: RawWorker[] = [];

      // Producer traffic for the good worker, all through the fuzz.
      let stop = false;
      let served = 0;
      const producer = (async () => {
        for (let n = 0; !stop; n++) {
          try {
            const res = await fetch(`${dispatcher.url}/run-task`, {
              method: 'POST',
              body: JSON.stringify({
                task_id: `ctl-${SEED}-${n}`,
                task_type: 'echo',
                label: 'ctl',
                parameters_json: `{"n":${n}}`,
              }),
              signal: AbortSignal.timeout(8000),
            });
            const body = (await res.json()) as { worker_id?: string; result?: { echo?: { n?: number } } };
            if (res.status !== 200 || body.worker_id !== 'good' || body.result?.echo?.n !== n)
              failures.push(`producer task ${n}: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
            else served++;
          } catch (e) {
            failures.push(`producer task ${n}: no answer (${(e as Error).message})`);
          }
          await sleep(5);
        }
      })();

      await runPool(cases, 10, async (c, i) => {
        const id = `fz-${SEED}-${i}`;
        const label = `#${i} ${c.kind}`;
        let client: RawWorker;
        try {
          client = await RawWorker.open(dispatcher.url, id);
        } catch (e) {
          failures.push(`${label}: could not connect (${(e as Error).message})`);
          return;
        }
        clients.push(client);
        if (c.steps.length === 0) {
          const code = await client.waitClose(HELLO_TIMEOUT_MS + 2000);
          fates.add(`close-${code}`);
          if (code !== 1008) failures.push(`${label}: silent client closed with ${code}, expected 1008`);
          return;
        }
        for (const [s, step] of c.steps.entries()) {
          const at = `${label} step ${s} (${step.bytes.length} bytes ${step.bytes.subarray(0, 24).toString('hex')})`;
          if (step.how === 'tcp') client.writeRaw(step.bytes);
          else client.send(step.bytes, step.how !== 'text');
          const e = step.expect;
          if ('close' in e) {
            const code = await client.waitClose(WORKER_TIMEOUT_MS + 3000);
            fates.add(`close-${code}`);
            if (code === undefined || !e.close.includes(code))
              failures.push(`${at}: closed with ${code}, expected ${e.close.join('|')}`);
            return;
          }
          if ('welcome' in e) {
            if (!(await client.waitWelcome(3000))) {
              failures.push(`${at}: no Welcome (closed ${client.closed?.code} ${client.closed?.reason})`);
              return;
            }
            fates.add('welcome');
            const view = dispatcher.router.worker(id);
            if (
              c.clamped &&
              view &&
              (view.labelCapacity > 64 || view.taskSlots > 256 || view.labels.length > view.labelCapacity)
            )
              failures.push(
                `${at}: claims not clamped: capacity ${view.labelCapacity}, slots ${view.taskSlots}, ${view.labels.length} labels`,
              );
          } else if (!(await client.alive(3000))) {
            failures.push(
              `${at}: expected the connection to stay open, closed ${client.closed?.code} ${client.closed?.reason}`,
            );
            return;
          } else fates.add('stayed-open');
        }
      });
      stop = true;
      await producer;
      await Promise.all(clients.map((c) => c.close()));
      const misrouted = clients.reduce((n, c) => n + c.runTasks, 0);
      console.log(
        `protocol fuzz seed=${SEED}: ${cases.length} connections; ${fates}; ${served} producer tasks served; ${misrouted} RunTasks reached fuzz clients`,
      );

      expect(failures, `${where}:\n${failures.slice(0, 15).join('\n')}`).toEqual([]);
      expect(served).toBeGreaterThan(0);
      expect(good.closed).toBeUndefined();
      const health = await fetch(`${dispatcher.url}/health`);
      expect(health.status).toBe(200);
      for (let t = 0; dispatcher.router.workerCount !== 1 && t < 100; t++) await sleep(20);
      expect(dispatcher.router.workerCount).toBe(1);
      const errors = logs.records.filter((r) => (r.level as number) >= 50);
      expect(
        errors.map((r) => `${String(r.event)}: ${String(r.msg)}`),
        where,
      ).toEqual([]);
    },
  );
});

// ---------------------------------------------------------------- 3. worker side

describe(`dispatcher frames fuzz, worker side (seed ${SEED})`, () => {
  let server: WebSocketServer;
  let worker: WorkerHandle;
  const logs = captureLogger('warn');
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(`${w.name}: ${w.message}`);
  };

  beforeAll(() => {
    process.on('warning', onWarning);
  });
  afterAll(async () => {
    process.off('warning', onWarning);
    await worker?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('stays up, answers every Ping and every decodable RunTask', async () => {
    const rng = new Rng(SEED ^ 0xd15c);
    server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise((resolve) => server.once('listening', resolve));
    const connections: WebSocket[] = [];
    const heartbeats = new Set<number>();
    /** taskId -> RunTasks sent minus TaskResults received. */
    const owed = new Map<string, number>();
    const received = new Tally();
    server.on('connection', (ws) => {
      connections.push(ws);
      ws.on('message', (data) => {
        const m = decodeWorkerMessage(data as Buffer);
        received.add(m.body);
        if (m.body === 'hello')
          ws.send(
            encodeDispatcherMessage({
              welcome: { protocolVersion: PROTOCOL_VERSION, heartbeatIntervalMs: 200 },
            }),
          );
        else if (m.body === 'heartbeat' && m.heartbeat.pingId > 0) heartbeats.add(m.heartbeat.pingId);
        else if (m.body === 'taskResult')
          owed.set(m.taskResult.taskId, (owed.get(m.taskResult.taskId) ?? 0) - 1);
      });
    });
    worker = await startWorker({
      dispatcherUrl: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
      workerId: `fuzz-worker-${SEED}`,
      tritonUrl: 'none',
      maxLabels: 2,
      slots: 2,
      logger: logs.logger,
      reconnectInitialMs: 50,
    });
    for (let t = 0; received.get('hello') === 0 && t < 250; t++) await sleep(20);
    expect(received.get('hello')).toBe(1);
    const ws = connections[0]!;
    const ping = async (pingId: number): Promise<boolean> => {
      connections.at(-1)!.send(encodeDispatcherMessage({ ping: { pingId } }));
      for (let t = 0; !heartbeats.has(pingId) && t < 200; t++) await sleep(10);
      return heartbeats.has(pingId);
    };

    const sent = new Tally();
    const failures: string[] = [];
    for (let i = 0; i < 1500; i++) {
      const how = rng.weighted([
        [1, 'random'],
        [4, 'mutated'],
        [2, 'valid'],
        [0.5, 'text'],
      ] as const);
      let bytes: Buffer;
      if (how === 'random') bytes = rng.bytes(rng.int(0, 200));
      // Valid UTF-8 only: an invalid text frame fails the connection by RFC 6455 (checked below).
      else if (how === 'text') bytes = Buffer.from(rng.unicode(rng.int(0, 50)));
      else {
        const m = dispatcherMessage(rng);
        // Drain is sticky: send it rarely so most RunTasks still run.
        if ('drain' in m && rng.bool(0.9)) continue;
        const valid = Buffer.from(encodeDispatcherMessage(m));
        bytes = how === 'valid' ? valid : mutateBytes(rng, valid);
      }
      if (how !== 'text') {
        try {
          const m = decodeDispatcherMessage(bytes);
          sent.add(m.body);
          if (m.body === 'runTask') owed.set(m.runTask.taskId, (owed.get(m.runTask.taskId) ?? 0) + 1);
        } catch {
          sent.add('undecodable');
        }
      } else sent.add('text');
      ws.send(bytes, { binary: how !== 'text' });
      // A Ping must be answered whatever came before it.
      if (i % 50 === 49 && !(await ping(1_000_000_000 + i)))
        failures.push(`no Heartbeat for the Ping after frame ${i}`);
    }
    const unanswered = (): string[] => [...owed.entries()].filter(([, n]) => n > 0).map(([id]) => id);
    for (let t = 0; unanswered().length > 0 && t < 200; t++) await sleep(10);
    console.log(`worker fuzz seed=${SEED}: frames sent ${sent.total} (${sent}); worker sent ${received}`);

    expect(failures, `${where}:\n${failures.slice(0, 10).join('\n')}`).toEqual([]);
    expect(unanswered(), `${where}: RunTasks without a TaskResult`).toEqual([]);
    expect(connections).toHaveLength(1);
    expect(ws.readyState).toBe(ws.OPEN);

    // A text frame that is not UTF-8 is a WebSocket protocol error: the worker drops that link
    // (1007), reconnects with a fresh Hello, and serves on the new one.
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(Buffer.from([0x68, 0xc3, 0x28, 0xff]), { binary: false });
    expect(await closed).toBe(1007);
    for (let t = 0; received.get('hello') < 2 && t < 250; t++) await sleep(20);
    expect(received.get('hello')).toBe(2);
    expect(await ping(2_000_000_000)).toBe(true);
    expect(warnings, where).toEqual([]);
    const errors = logs.records.filter((r) => (r.level as number) >= 50 && r.event !== 'protocol_mismatch');
    expect(
      errors.map((r) => `${String(r.event)}: ${String(r.msg)}`),
      where,
    ).toEqual([]);
  });
});
