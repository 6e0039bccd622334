// The Python worker SDK's own unit tests (sdk/python/tests, python's unittest, frames in and out
// without a dispatcher), and a check that the committed smart_routing_pb2.py is what protoc makes
// of proto/proto/smart_routing.proto today. The SDK against a live dispatcher: test/e2e/python-sdk.test.ts.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SDK_DIR = join(ROOT, 'sdk/python');
const PROTO_DIR = join(ROOT, 'proto/proto');
const COMMITTED_PB2 = join(SDK_DIR, 'smart_routing_worker/smart_routing_pb2.py');
// Debian's python3 carries python3-protobuf and python3-websockets (installed by .ci/run).
const PYTHON = '/usr/bin/python3';

const probe = spawnSync(PYTHON, ['-c', 'import google.protobuf, websockets'], { encoding: 'utf8' });
const noPython = probe.status === 0 ? undefined : `${PYTHON} lacks python3-protobuf or python3-websockets`;
if (noPython) console.warn(`python SDK unit tests skipped: ${noPython}`);
const protoc = spawnSync('protoc', ['--version'], { encoding: 'utf8' });
const noProtoc =
  protoc.status === 0 ? undefined : 'protoc is not installed (apt-get install protobuf-compiler)';
if (noProtoc) console.warn(`stale smart_routing_pb2.py check skipped: ${noProtoc}`);

describe.skipIf(noPython !== undefined)('sdk/python unit tests', () => {
  it('pass under python unittest', () => {
    const run = spawnSync(PYTHON, ['-B', '-m', 'unittest', 'discover', '-s', 'tests', '-t', '.', '-v'], {
      cwd: SDK_DIR,
      encoding: 'utf8',
      timeout: 60_000,
    });
    // unittest reports on stderr; "Ran N tests" and "OK" only when every test passed.
    expect(run.stderr, run.stderr).toMatch(/\nOK\s*$/);
    expect(run.status, run.stderr).toBe(0);
    const ran = Number(/Ran (\d+) tests?/.exec(run.stderr)?.[1]);
    expect(ran).toBeGreaterThanOrEqual(20);
  });
});

describe.skipIf(noProtoc !== undefined)('sdk/python smart_routing_pb2.py', () => {
  it('is what protoc --python_out generates from proto/proto/smart_routing.proto', async () => {
    const out = await mkdtemp(join(tmpdir(), 'pb2-'));
    try {
      const gen = spawnSync(
        'protoc',
        [`--python_out=${out}`, `-I${PROTO_DIR}`, join(PROTO_DIR, 'smart_routing.proto')],
        {
          encoding: 'utf8',
        },
      );
      expect(gen.status, gen.stderr).toBe(0);
      const fresh = await readFile(join(out, 'smart_routing_pb2.py'), 'utf8');
      const committed = await readFile(COMMITTED_PB2, 'utf8');
      expect(
        committed === fresh,
        'sdk/python/smart_routing_worker/smart_routing_pb2.py is stale: regenerate it with ' +
          '`protoc --python_out=sdk/python/smart_routing_worker -Iproto/proto proto/proto/smart_routing.proto`',
      ).toBe(true);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
