/**
 * The dispatcher's KServe v2 gRPC front driven by a gRPC client we did not write: NVIDIA's
 * tritonclient.grpc (github.com/triton-inference-server/client, src/python/library/tritonclient/grpc
 * at commit 58a44caa, vendored unmodified in test/third_party/tritonclient). Its generated stubs are
 * not in that repository: as upstream's build_wheel.py does, they are generated here, at test time,
 * with protoc + grpc_python_plugin from Triton's own grpc_service.proto and model_config.proto
 * (github.com/triton-inference-server/common, vendored in test/third_party/triton-common), renamed
 * to service_pb2 / service_pb2_grpc / model_config_pb2 and their imports fixed the same way.
 * Each inference is also made with tritonclient.http on the HTTP front: both answers must agree.
 * Skipped, with the reason, where python3-grpcio (or the generator) is missing.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HIDDEN } from '../../worker/test/model-server/helpers.js';
import { startKserveStack, type KserveStack } from './kserve-stack.js';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const python = process.env.TRITON_PYTHON ?? '/usr/bin/python3';
const protoc = process.env.PROTOC ?? 'protoc';
const grpcPlugin = process.env.GRPC_PYTHON_PLUGIN ?? '/usr/bin/grpc_python_plugin';
const battery = join(root, 'test/conformance/tritonclient-grpc-battery.py');
const protoDir = join(root, 'test/third_party/triton-common/protobuf');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the client's JSON

async function prerequisitesMissing(): Promise<string | undefined> {
  try {
    await exec(python, ['-c', 'import grpc, packaging, google.protobuf, numpy, rapidjson, geventhttpclient']);
    await exec(protoc, ['--version']);
    await exec(grpcPlugin, ['--version']).catch((err: { code?: unknown }) => {
      // grpc_python_plugin has no --version: it exits non-zero, but it exists.
      if (err.code === 'ENOENT') throw new Error(`${grpcPlugin} not found (Debian: protobuf-compiler-grpc)`);
    });
    return undefined;
  } catch (err) {
    return String((err as { stderr?: string }).stderr || (err as Error).message).trim();
  }
}

/**
 * The vendored tritonclient plus the generated stubs, in a fresh folder for PYTHONPATH (the
 * package cannot be split over two folders). Mirrors build_wheel.py: grpc_service_pb2 ->
 * service_pb2, `import x_pb2 as y` -> `from tritonclient.grpc import x_pb2 as y`.
 */
async function buildClient(dir: string): Promise<void> {
  await cp(join(root, 'test/third_party/tritonclient/tritonclient'), join(dir, 'tritonclient'), {
    recursive: true,
  });
  const out = join(dir, 'gen');
  await cp(protoDir, out, { recursive: true });
  await exec(protoc, [
    `-I${protoDir}`,
    `--python_out=${out}`,
    `--grpc_python_out=${out}`,
    `--plugin=protoc-gen-grpc_python=${grpcPlugin}`,
    join(protoDir, 'grpc_service.proto'),
    join(protoDir, 'model_config.proto'),
  ]);
  const target = join(dir, 'tritonclient', 'grpc');
  const moves: [string, string][] = [
    ['model_config_pb2.py', 'model_config_pb2.py'],
    ['grpc_service_pb2.py', 'service_pb2.py'],
    ['grpc_service_pb2_grpc.py', 'service_pb2_grpc.py'],
  ];
  for (const [from, to] of moves) await rename(join(out, from), join(target, to));
  for (const file of ['model_config_pb2.py', 'service_pb2.py']) {
    const p = join(target, file);
    const text = await readFile(p, 'utf8');
    await writeFile(
      p,
      text.replace(/^import ([^ ]*)_pb2 as ([^ ]*)$/gm, 'from tritonclient.grpc import $1_pb2 as $2'),
    );
  }
  const stub = join(target, 'service_pb2_grpc.py');
  const text = await readFile(stub, 'utf8');
  await writeFile(
    stub,
    text.replace(/^import grpc_([^ ]*)_pb2 as ([^ ]*)$/gm, 'from tritonclient.grpc import $1_pb2 as $2'),
  );
}

const missing = await prerequisitesMissing();
if (missing)
  process.stderr.write(`kserve-front-grpc-client.test.ts: tritonclient.grpc part skipped (${missing})\n`);

describe.skipIf(missing !== undefined)(
  "NVIDIA's tritonclient.grpc through the dispatcher's gRPC front",
  () => {
    let stack: KserveStack | undefined;
    let clientDir: string;
    let seen: Json;

    beforeAll(async () => {
      clientDir = await mkdtemp(join(tmpdir(), 'sr-tritonclient-grpc-'));
      await buildClient(clientDir);
      stack = await startKserveStack('grpc-client-e2e');
      const { dispatcher } = stack;
      const { stdout } = await exec(
        python,
        [
          battery,
          '--grpc-url',
          dispatcher.grpcAddress!,
          '--http-url',
          dispatcher.url,
          '--model',
          'label-2',
          '--bytes-model',
          'strings',
        ],
        { env: { ...process.env, PYTHONPATH: clientDir }, maxBuffer: 16 * 1024 * 1024 },
      );
      seen = JSON.parse(stdout) as Json;
    }, 120_000);

    afterAll(async () => {
      await stack?.close();
      if (clientDir) await rm(clientDir, { recursive: true, force: true });
    });

    it('sees one live, ready server with the model and its metadata', () => {
      expect(seen.live).toBe(true);
      expect(seen.ready).toBe(true);
      expect(typeof seen.server_metadata.name).toBe('string');
      expect(seen.model_ready).toBe(true);
      expect(seen.metadata.name).toBe('label-2');
      expect(seen.metadata.inputs.map((t: Json) => [t.name, t.datatype])).toEqual([
        ['input_ids', 'INT64'],
        ['attention_mask', 'INT64'],
      ]);
      expect(seen.unknown_model_ready).toBe(false);
    });

    it('gets FP32 outputs over gRPC equal to the HTTP answer', () => {
      expect(seen.infer_grpc.outputs).toEqual([
        { name: 'last_hidden_state', datatype: 'FP32', shape: [2, 4, HIDDEN] },
      ]);
      const grpcData = seen.infer_grpc.data.last_hidden_state as number[];
      expect(grpcData).toHaveLength(2 * 4 * HIDDEN);
      expect(grpcData.some((v) => v !== 0)).toBe(true);
      expect(grpcData).toEqual(seen.infer_http.data.last_hidden_state);
    });

    it('round-trips BYTES tensors, the same as over HTTP', () => {
      expect(seen.bytes_grpc).toEqual(['hello', '', 'été']);
      expect(seen.bytes_http).toEqual(seen.bytes_grpc);
    });

    it('reads refusals as gRPC status codes', () => {
      expect(seen.unknown_model.error.status).toBe('StatusCode.NOT_FOUND');
      expect(seen.unknown_model.error.message).toMatch(/no-such-model/);
      expect(seen.wrong_datatype.error.status).toBe('StatusCode.INVALID_ARGUMENT');
      expect(seen.wrong_datatype.error.message).toMatch(/INT64/);
    });
  },
);
