import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  PROTO_PATH,
  PROTOCOL_VERSION,
  ProtocolError,
  decodeDispatcherMessage,
  decodeWorkerMessage,
  encodeDispatcherMessage,
  encodeWorkerMessage,
} from '@smart-routing/proto';

describe('encodeWorkerMessage / decodeWorkerMessage', () => {
  it('round-trips a hello with defaults filled in', () => {
    const bytes = encodeWorkerMessage({
      hello: {
        protocolVersion: PROTOCOL_VERSION,
        workerId: 'w1',
        labelCapacity: 2,
        taskSlots: 1,
        loadedLabels: ['a', 'b'],
        taskTypes: ['embed_texts', 'echo'],
        state: 'ready',
        labelFreeTaskTypes: ['echo'],
      },
    });
    const msg = decodeWorkerMessage(bytes);
    expect(msg).toEqual({
      body: 'hello',
      hello: {
        protocolVersion: 1,
        workerId: 'w1',
        labelCapacity: 2,
        taskSlots: 1,
        loadedLabels: ['a', 'b'],
        taskTypes: ['embed_texts', 'echo'],
        state: 'ready',
        labelFreeTaskTypes: ['echo'],
        memoryBudgetBytes: 0,
      },
    });
  });

  it('round-trips a memory budget and a label footprint beyond 32 bits', () => {
    const hello = decodeWorkerMessage(
      encodeWorkerMessage({ hello: { workerId: 'w1', memoryBudgetBytes: 24 * 2 ** 30 } }),
    );
    if (hello.body !== 'hello') throw new Error('wrong body');
    expect(hello.hello.memoryBudgetBytes).toBe(24 * 2 ** 30);
    const event = decodeWorkerMessage(
      encodeWorkerMessage({ labelEvent: { kind: 'loaded', label: 'a', footprintBytes: 5 * 2 ** 30 + 7 } }),
    );
    if (event.body !== 'labelEvent') throw new Error('wrong body');
    expect(event.labelEvent.footprintBytes).toBe(5 * 2 ** 30 + 7);
  });

  it('keeps only the set member of the result oneof', () => {
    const ok = decodeWorkerMessage(
      encodeWorkerMessage({ taskResult: { taskId: 't', resultJson: '{}', labelMiss: true, loadMs: 12.5 } }),
    );
    expect(ok.body).toBe('taskResult');
    if (ok.body !== 'taskResult') return;
    expect(ok.taskResult.resultJson).toBe('{}');
    expect(ok.taskResult.error).toBeUndefined();
    expect(ok.taskResult.loadMs).toBe(12.5);

    const bad = decodeWorkerMessage(
      encodeWorkerMessage({
        taskResult: { taskId: 't', error: { code: 'label_not_found', message: 'nope' } },
      }),
    );
    if (bad.body !== 'taskResult') throw new Error('wrong body');
    expect(bad.taskResult.error).toEqual({ code: 'label_not_found', message: 'nope' });
    expect(bad.taskResult.resultJson).toBeUndefined();
  });

  it('passes an infer response through byte for byte, with its header length', () => {
    // Every byte value, so no transcoding (UTF-8, base64) could survive unnoticed.
    const body = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
    const msg = decodeWorkerMessage(
      encodeWorkerMessage({ taskResult: { taskId: 't', inferResponse: body, inferHeaderLength: 17 } }),
    );
    if (msg.body !== 'taskResult') throw new Error('wrong body');
    expect(Buffer.from(msg.taskResult.inferResponse ?? []).equals(Buffer.from(body))).toBe(true);
    expect(msg.taskResult.inferHeaderLength).toBe(17);
    expect(msg.taskResult.resultJson).toBeUndefined();
    expect(msg.taskResult.error).toBeUndefined();
  });

  it('rejects a task result with no outcome', () => {
    expect(() => decodeWorkerMessage(encodeWorkerMessage({ taskResult: { taskId: 't' } }))).toThrow(
      ProtocolError,
    );
  });

  it('round-trips label events and heartbeats', () => {
    const ev = decodeWorkerMessage(
      encodeWorkerMessage({
        labelEvent: { kind: 'load_failed', label: 'x', durationMs: 3, message: 'boom' },
      }),
    );
    expect(ev).toMatchObject({
      body: 'labelEvent',
      labelEvent: { kind: 'load_failed', label: 'x', durationMs: 3, message: 'boom', loadedLabels: [] },
    });
    const hb = decodeWorkerMessage(
      encodeWorkerMessage({ heartbeat: { inFlight: 2, state: 'draining', pingId: 2 ** 40 } }),
    );
    expect(hb).toMatchObject({
      body: 'heartbeat',
      heartbeat: { inFlight: 2, state: 'draining', pingId: 2 ** 40 },
    });
  });
});

describe('encodeDispatcherMessage / decodeDispatcherMessage', () => {
  it('round-trips a run-task with an eviction order', () => {
    const msg = decodeDispatcherMessage(
      encodeDispatcherMessage({
        runTask: {
          taskId: 't1',
          taskType: 'infer',
          label: 'l1',
          parametersJson: '{}',
          evictLabel: 'l0',
          attempt: 2,
          deadlineUnixMs: Date.now(),
        },
      }),
    );
    expect(msg).toMatchObject({ body: 'runTask', runTask: { taskId: 't1', evictLabel: 'l0', attempt: 2 } });
  });

  it('carries a kserve_infer request body untouched', () => {
    const body = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) % 256);
    const msg = decodeDispatcherMessage(
      encodeDispatcherMessage({
        runTask: {
          taskId: 't2',
          taskType: 'kserve_infer',
          label: 'm',
          inferRequest: body,
          inferHeaderLength: 40,
        },
      }),
    );
    if (msg.body !== 'runTask') throw new Error('wrong body');
    expect(Buffer.from(msg.runTask.inferRequest ?? []).equals(Buffer.from(body))).toBe(true);
    expect(msg.runTask.inferHeaderLength).toBe(40);
    const plain = decodeDispatcherMessage(encodeDispatcherMessage({ runTask: { taskId: 't3' } }));
    if (plain.body !== 'runTask') throw new Error('wrong body');
    expect(plain.runTask.inferRequest?.length).toBe(0);
  });

  it('round-trips label orders, drain, ping and welcome', () => {
    expect(
      decodeDispatcherMessage(encodeDispatcherMessage({ labelOrder: { action: 'unload', label: 'z' } })),
    ).toEqual({
      body: 'labelOrder',
      labelOrder: { action: 'unload', label: 'z', fencingToken: 0 },
    });
    expect(decodeDispatcherMessage(encodeDispatcherMessage({ drain: { reason: 'bye' } }))).toEqual({
      body: 'drain',
      drain: { reason: 'bye' },
    });
    expect(decodeDispatcherMessage(encodeDispatcherMessage({ ping: { pingId: 7 } }))).toEqual({
      body: 'ping',
      ping: { pingId: 7 },
    });
    expect(
      decodeDispatcherMessage(
        encodeDispatcherMessage({
          welcome: {
            protocolVersion: 1,
            heartbeatIntervalMs: 500,
            labelCapacity: 2,
            taskSlots: 4,
            maxFrameBytes: 1024,
          },
        }),
      ),
    ).toEqual({
      body: 'welcome',
      welcome: {
        protocolVersion: 1,
        heartbeatIntervalMs: 500,
        labelCapacity: 2,
        taskSlots: 4,
        maxFrameBytes: 1024,
        fencingToken: 0,
        replicaId: '',
        role: 'unspecified',
      },
    });
    expect(
      decodeDispatcherMessage(
        encodeDispatcherMessage({ leadership: { fencingToken: 2 ** 40, replicaId: 'b' } }),
      ),
    ).toEqual({ body: 'leadership', leadership: { fencingToken: 2 ** 40, replicaId: 'b' } });
  });
});

describe('malformed frames', () => {
  it('throws ProtocolError on garbage, truncation and empty frames', () => {
    expect(() => decodeWorkerMessage(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f]))).toThrow(ProtocolError);
    const good = encodeWorkerMessage({ hello: { workerId: 'a-long-worker-id' } });
    expect(() => decodeWorkerMessage(good.subarray(0, good.length - 3))).toThrow(ProtocolError);
    expect(() => decodeWorkerMessage(new Uint8Array())).toThrow(ProtocolError);
    expect(() => decodeDispatcherMessage(Uint8Array.from([0x0a, 0x05, 0x01]))).toThrow(ProtocolError);
  });

  it('survives random bytes without throwing anything but ProtocolError', () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
      try {
        decodeWorkerMessage(bytes);
        decodeDispatcherMessage(bytes);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
      }
    }
  });

  it('throws TypeError when the caller passes a wrong type', () => {
    expect(() => encodeWorkerMessage({ hello: { labelCapacity: 'two' as unknown as number } })).toThrow(
      TypeError,
    );
  });
});

describe('forward compatibility', () => {
  it('ignores fields and enum values from a newer peer', () => {
    // A "newer" schema: Hello gains field 99 and a new state value.
    const root = protobuf.loadSync(PROTO_PATH);
    const newer = protobuf.parse(`syntax = "proto3"; package future;
      message Hello { uint32 protocol_version = 1; string worker_id = 2; uint32 state_next = 7; string gpu = 99; }
      message WorkerMessage { oneof body { Hello hello = 1; } }`).root;
    const t = newer.lookupType('future.WorkerMessage');
    const bytes = t
      .encode(t.fromObject({ hello: { protocolVersion: 2, workerId: 'w9', stateNext: 9, gpu: 'h100' } }))
      .finish();
    const msg = decodeWorkerMessage(bytes);
    expect(msg).toMatchObject({
      body: 'hello',
      hello: { protocolVersion: 2, workerId: 'w9', state: 'unspecified' },
    });
    expect(root.lookupType('smartrouting.v1.Hello').fields.gpu).toBeUndefined();
  });
});
