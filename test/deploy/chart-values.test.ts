import { Ajv, type ValidateFunction } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type JsonObject,
  chartValues,
  hasPath,
  isObject,
  mergeValues,
  readJson,
  readText,
  readYaml,
} from './helpers.js';

let validate: ValidateFunction;
let defaults: JsonObject;

beforeAll(() => {
  // strict: the schema itself must not use unknown keywords or loose types.
  const ajv = new Ajv({ allErrors: true, strict: true });
  validate = ajv.compile(readJson('charts/smart-routing/values.schema.json'));
  defaults = chartValues();
});

/** Validates values as Helm does: the chart's defaults with the overlay coalesced on top. */
function check(overlay: JsonObject): string[] {
  const ok = validate(mergeValues(defaults, overlay));
  return ok
    ? []
    : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
}

describe('values.schema.json', () => {
  it('is draft-07 and closes the top level', () => {
    const schema = readJson<{ $schema: string; additionalProperties: boolean }>(
      'charts/smart-routing/values.schema.json',
    );
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.additionalProperties).toBe(false);
  });

  it('accepts values.yaml', () => {
    expect(check({})).toEqual([]);
  });

  it.each(['values-kind.yaml', 'values-eks.yaml'])('accepts values.yaml + %s', (file) => {
    expect(check(chartValues(file))).toEqual([]);
  });

  it('overlays set their intended modes', () => {
    const kind = mergeValues(defaults, chartValues('values-kind.yaml'));
    const eks = mergeValues(defaults, chartValues('values-eks.yaml'));
    expect(kind).toMatchObject({
      worker: { modelServer: 'embedded' },
      dispatcher: { service: { type: 'NodePort', nodePort: 30080 } },
    });
    expect(eks).toMatchObject({
      worker: { modelServer: 'triton', triton: { gpus: 1 } },
      modelRepository: { pvc: { accessModes: ['ReadWriteMany'] } },
    });
  });

  it('the kind overlay uses the node port kind/cluster.yaml publishes', () => {
    const cluster = readYaml<{
      nodes: { extraPortMappings?: { containerPort: number; hostPort: number }[] }[];
    }>('kind/cluster.yaml');
    const mapping = cluster.nodes.flatMap((n) => n.extraPortMappings ?? []);
    expect(mapping).toContainEqual(expect.objectContaining({ containerPort: 30080, hostPort: 8080 }));
    expect(chartValues('values-kind.yaml')).toMatchObject({ dispatcher: { service: { nodePort: 30080 } } });
  });

  describe('rejects bad values', () => {
    const bad: [string, JsonObject][] = [
      ['an unknown top-level key', { replicas: 3 }],
      ['a misspelt nested key', { worker: { replica: 3 } }],
      ['an unknown routing policy', { dispatcher: { routingPolicy: 'round-robin' } }],
      ['randomDispatch as a string', { dispatcher: { randomDispatch: 'true' } }],
      ['zero slots', { worker: { slots: 0 } }],
      ['a fractional label capacity', { worker: { labelCapacity: 1.5 } }],
      ['an unknown model server', { worker: { modelServer: 'vllm' } }],
      ['negative GPUs', { worker: { triton: { gpus: -1 } } }],
      ['a node port out of range', { dispatcher: { service: { type: 'NodePort', nodePort: 8080 } } }],
      [
        'a node port on a ClusterIP service',
        { dispatcher: { service: { type: 'ClusterIP', nodePort: 30080 } } },
      ],
      ['an unknown service type', { dispatcher: { service: { type: 'Ingress' } } }],
      ['an API key with a comma', { auth: { apiKeys: ['a,b'] } }],
      ['a bad resource quantity', { dispatcher: { resources: { limits: { memory: 'lots' } } } }],
      ['an unknown pull policy', { image: { pullPolicy: 'Sometimes' } }],
      ['s3 without a URI', { modelRepository: { type: 's3' }, uploader: { enabled: false } }],
      ['s3 with the uploader on', { modelRepository: { type: 's3', s3: { uri: 's3://bucket/models' } } }],
      ['a relative mount path', { modelRepository: { mountPath: 'models' } }],
      ['a probe without a period', { dispatcher: { readinessProbe: { periodSeconds: 0 } } }],
      ['a bad log level', { logLevel: 'verbose' }],
      ['two dispatchers without Redis', { dispatcher: { replicas: 2 } }],
      ['zero dispatchers', { dispatcher: { replicas: 0 } }],
      ['a lease shorter than the dispatcher accepts', { dispatcher: { leaseTtlMs: 100 } }],
      ['the chart Redis and an external one', { redis: { enabled: true, url: 'redis://r:6379' } }],
      ['a Redis URL that is not redis://', { redis: { url: 'http://r:6379' } }],
    ];
    it.each(bad)('%s', (_name, overlay) => {
      expect(check(overlay)).not.toEqual([]);
    });

    it('but accepts several dispatchers on the chart Redis or an external one', () => {
      expect(check({ redis: { enabled: true } })).toEqual([]);
      expect(check({ dispatcher: { replicas: 3 }, redis: { enabled: true } })).toEqual([]);
      expect(check({ dispatcher: { replicas: 2 }, redis: { url: 'rediss://redis.example:6380/1' } })).toEqual(
        [],
      );
      expect(check({ dispatcher: { replicas: 1 } })).toEqual([]);
    });

    it('but accepts a valid s3 setup', () => {
      expect(
        check({
          modelRepository: { type: 's3', s3: { uri: 's3://bucket/models' } },
          uploader: { enabled: false },
        }),
      ).toEqual([]);
    });
  });
});

describe('mergeValues (the test helper)', () => {
  it('merges maps, replaces lists and deletes on null like Helm', () => {
    expect(mergeValues({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: null })).toEqual({
      a: { b: 1, c: [3] },
    });
  });
});

describe('deploy/README.md', () => {
  /** Value paths named in the first column of the README's values table; `a.b`, `.c` means a.b and a.c. */
  function documentedPaths(): Set<string> {
    const readme = readText('deploy/README.md');
    const table = readme.slice(readme.indexOf('| value | default | meaning |'));
    const out = new Set<string>();
    for (const row of table.split('\n').slice(2)) {
      if (!row.startsWith('|')) break;
      const names = [...row.split('|')[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
      const parent = names[0]!.split('.').slice(0, -1).join('.');
      for (const name of names) out.add(name.startsWith('.') ? `${parent}${name}` : name);
    }
    return out;
  }

  it('documents every value in its table', () => {
    const documented = documentedPaths();
    const undocumented = (node: JsonObject, prefix = ''): string[] =>
      Object.entries(node).flatMap(([key, value]) => {
        const path = `${prefix}${key}`;
        if (documented.has(path)) return [];
        return isObject(value) && Object.keys(value).length > 0 ? undocumented(value, `${path}.`) : [path];
      });
    expect(documented.size).toBeGreaterThan(80);
    expect(undocumented(defaults)).toEqual([]);
    expect([...documented].filter((p) => !hasPath(defaults, p))).toEqual([]);
  });
});
