import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startModelServer, type ModelServerHandle } from '../../src/model-server/index.js';
import { HIDDEN, addStringsModel, call, makeRepository, memoryLogger } from './helpers.js';

/**
 * Conformance: NVIDIA's Triton Python HTTP client (tritonclient.http, from
 * github.com/triton-inference-server/client, vendored unmodified in test/third_party/tritonclient)
 * drives the embedded server through the battery test/conformance/tritonclient-battery.py. The
 * interpreter is TRITON_PYTHON (default /usr/bin/python3, which has Debian's python3-numpy,
 * python3-rapidjson and python3-geventhttpclient); without those the test is skipped, saying why.
 */

const exec = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const python = process.env.TRITON_PYTHON ?? '/usr/bin/python3';
const env = { ...process.env, PYTHONPATH: join(root, 'test/third_party/tritonclient') };
const battery = join(root, 'test/conformance/tritonclient-battery.py');

async function clientMissing(): Promise<string | undefined> {
  try {
    await exec(python, ['-c', 'import numpy, rapidjson, geventhttpclient, tritonclient.http'], { env });
    return undefined;
  } catch (err) {
    const lines = String((err as { stderr?: string }).stderr ?? (err as Error).message)
      .trim()
      .split('\n');
    return lines[lines.length - 1];
  }
}

const missing = await clientMissing();
if (missing) {
  // Said once, so a skipped run is not mistaken for a passing one.
  process.stderr.write(
    `tritonclient.test.ts skipped: the vendored tritonclient.http cannot be imported by ${python} (${missing}); ` +
      'install python3-geventhttpclient, python3-numpy and python3-rapidjson\n',
  );
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the client's JSON

describe.skipIf(missing !== undefined)("NVIDIA's Triton Python client against the embedded server", () => {
  let repo: { dir: string; remove(): Promise<void> };
  let server: ModelServerHandle;
  let seen: Json;

  beforeAll(async () => {
    repo = await makeRepository(1);
    await addStringsModel(repo.dir);
    server = await startModelServer({ repository: repo.dir, logger: memoryLogger().logger });
    const { stdout } = await exec(
      python,
      [battery, '--url', server.url, '--model', 'label-1', '--bytes-model', 'strings', '--load', '--stats'],
      { env, maxBuffer: 16 * 1024 * 1024 },
    );
    seen = JSON.parse(stdout) as Json;
  });

  afterAll(async () => {
    await server?.close();
    await repo?.remove();
  });

  it('health, server metadata, repository index, load and model metadata', () => {
    expect(seen.live).toBe(true);
    expect(seen.ready).toBe(true);
    expect(seen.server_metadata.extensions).toEqual(
      expect.arrayContaining(['binary_tensor_data', 'statistics']),
    );
    expect(seen.index_before.map((m: Json) => m.name)).toEqual(['label-1', 'strings']);
    expect(seen.model_ready).toBe(true);
    expect(seen.metadata.inputs).toEqual([
      { name: 'input_ids', datatype: 'INT64', shape: [-1, -1] },
      { name: 'attention_mask', datatype: 'INT64', shape: [-1, -1] },
    ]);
    expect(seen.config.max_batch_size).toBe(8);
  });

  it("the client's default (binary) request and a JSON request give the server's JSON answer", async () => {
    // The reference: the battery's own inputs sent by us as plain JSON.
    const inputs = Object.entries(seen.inputs as Json).map(([name, t]) => ({ name, ...t }));
    expect(inputs.map((t) => t.shape)).toEqual([
      [2, 4],
      [2, 4],
    ]);
    const reference = await call(server.url, 'POST', '/v2/models/label-1/infer', { inputs });
    expect(reference.status).toBe(200);
    const expected = Array.from(Float32Array.from((reference.body as Json).outputs[0].data as number[]));
    const binary = seen.binary.outputs.last_hidden_state;
    expect(binary.shape).toEqual([2, 4, HIDDEN]);
    expect(seen.binary.response.outputs[0].parameters).toEqual({ binary_data_size: 2 * 4 * HIDDEN * 4 });
    expect(binary.data).toEqual(expected);
    expect(seen.json.response.id).toBe('json-1');
    expect(seen.json.response.outputs[0].data).toBeDefined();
    expect(seen.json.outputs.last_hidden_state.data).toEqual(expected);
  });

  it('BYTES tensors round-trip, binary and JSON', () => {
    expect(seen.bytes.binary).toEqual(['hello', '', 'été']);
    expect(seen.bytes.json).toEqual(['hello', '', 'été']);
  });

  it('statistics as the client reads them', () => {
    const [m] = seen.stats.model_stats as Json[];
    expect(m).toMatchObject({ name: 'label-1', version: '1' });
    // Two successful requests of batch 2 (the battery's; ours came after); failures are not counted.
    expect(m!.inference_count).toBe(4);
    expect(m!.execution_count).toBe(2);
    expect(m!.inference_stats.success.count).toBe(2);
    expect(m!.inference_stats.compute_infer.ns).toBeGreaterThan(0);
    expect(seen.all_stats.model_stats.map((s: Json) => s.name)).toEqual(['label-1', 'strings']);
  });

  it('errors reach the client with their status and message', () => {
    expect(seen.unknown_model.error).toEqual({
      status: '400',
      message: "Request for unknown model: 'no-such-model' is not found",
    });
    expect(seen.wrong_datatype.error.status).toBe('400');
    expect(seen.wrong_datatype.error.message).toMatch(
      /data-type is 'FP32', but model 'label-1' expects 'INT64'/,
    );
    expect(seen.missing_input.error.message).toMatch(/missing required input\(s\) \['attention_mask'\]/);
    expect(seen.unknown_model_metadata.error.status).toBe('400');
    expect(seen.bytes_ready_after_unload).toBe(false);
  });
});
