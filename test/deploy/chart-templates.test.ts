import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import {
  type ContainerSpec,
  type JsonObject,
  chartTemplates,
  chartValues,
  hasPath,
  isObject,
  mergeValues,
  packageSource,
  readYaml,
  sourceReadsEnv,
  templateContainers,
  templateSkeleton,
  valuesPathsUsed,
} from './helpers.js';

const templates = chartTemplates();
const values = chartValues();
const containers = templateContainers(templates);

/** Which package's source must read the env vars set on each of our containers. */
const OUR_CONTAINERS: Record<string, string> = {
  dispatcher: 'dispatcher',
  worker: 'worker',
  'log-collector': 'log-collector',
  uploader: 'uploader',
  // The demo-model Job runs the uploader image.
  'demo-models': 'uploader',
};
/** Containers from other projects' images; their settings are theirs (flags, AWS env). */
const THIRD_PARTY_CONTAINERS = ['triton', 'model-sync', 'redis'];

/** Env vars a container sets that its package's source never names. */
function unreadEnv(container: Pick<ContainerSpec, 'name' | 'env'>, source: string): string[] {
  return container.env.filter((name) => !sourceReadsEnv(source, name));
}

/** Every leaf path of a values tree (lists and empty maps are leaves). */
function leafPaths(node: JsonObject, prefix = ''): string[] {
  return Object.entries(node).flatMap(([key, value]) =>
    isObject(value) && Object.keys(value).length > 0
      ? leafPaths(value, `${prefix}${key}.`)
      : [`${prefix}${key}`],
  );
}

describe('chart templates', () => {
  it('has the expected templates', () => {
    expect([...templates.keys()]).toEqual(
      expect.arrayContaining([
        '_helpers.tpl',
        'NOTES.txt',
        'dispatcher-deployment.yaml',
        'dispatcher-service.yaml',
        'worker-deployment.yaml',
        'worker-pdb.yaml',
        'log-collector-deployment.yaml',
        'log-collector-service.yaml',
        'log-collector-pvc.yaml',
        'uploader-deployment.yaml',
        'uploader-service.yaml',
        'secret.yaml',
        'dispatcher-workers-service.yaml',
        'dispatcher-pdb.yaml',
        'redis-statefulset.yaml',
        'redis-service.yaml',
      ]),
    );
  });

  describe('every .Values path a template reads exists in values.yaml', () => {
    const used = [...templates].flatMap(([name, text]) =>
      valuesPathsUsed(text).map((path) => [name, path] as const),
    );

    it('finds the paths (sanity)', () => {
      expect(used.length).toBeGreaterThan(50);
      expect(used.map(([, p]) => p)).toContain('worker.triton.gpus');
    });

    it.each(used)('%s: .Values.%s', (_template, path) => {
      expect(hasPath(values, path), `values.yaml has no ${path}`).toBe(true);
    });

    it('catches a path that does not exist (the check can fail)', () => {
      const paths = valuesPathsUsed(
        '{{- $w := .Values.worker }}{{ $w.replicaz }} {{ .Values.dispatcher.nope | int }}',
      );
      expect(paths).toEqual(['dispatcher.nope', 'worker', 'worker.replicaz']);
      expect(paths.filter((p) => !hasPath(values, p))).toEqual(['dispatcher.nope', 'worker.replicaz']);
    });

    it('every value in values.yaml is read by some template', () => {
      const usedPaths = new Set(used.map(([, p]) => p));
      const isUsed = (leaf: string): boolean =>
        [...usedPaths].some((u) => u === leaf || leaf.startsWith(`${u}.`) || u.startsWith(`${leaf}.`));
      expect(leafPaths(values).filter((leaf) => !isUsed(leaf))).toEqual([]);
    });
  });

  describe('structure', () => {
    const defines = new Set(
      [...templates.values()].flatMap((t) => [...t.matchAll(/define "([^"]+)"/g)].map((m) => m[1]!)),
    );

    it.each([...templates.keys()])('%s: every include names a defined template', (name) => {
      const included = [...templates.get(name)!.matchAll(/include "([^"]+)"/g)].map((m) => m[1]!);
      expect(included.filter((n) => !defines.has(n))).toEqual([]);
    });

    it.each([...templates.keys()])('%s: if/with/range/define blocks are closed', (name) => {
      const actions = [...templates.get(name)!.matchAll(/\{\{-?\s*(\/\*[\s\S]*?\*\/|[^}]*?)\s*-?\}\}/g)].map(
        (m) => m[1]!,
      );
      let depth = 0;
      for (const action of actions) {
        if (/^(if|with|range|define|block)\b/.test(action)) depth++;
        else if (/^end\b/.test(action)) depth--;
        expect(depth, `unbalanced at {{ ${action} }}`).toBeGreaterThanOrEqual(0);
      }
      expect(depth).toBe(0);
    });

    const yamlTemplates = [...templates.keys()].filter((n) => n.endsWith('.yaml'));

    it.each(yamlTemplates)('%s: its static skeleton is YAML', (name) => {
      const doc = parseDocument(templateSkeleton(templates.get(name)!));
      expect(doc.errors.map((e) => e.message)).toEqual([]);
      expect(doc.get('kind')).toBeTruthy();
    });

    it('a mis-indented line breaks the skeleton (the check can fail)', () => {
      const bad = 'spec:\n  containers:\n    - name: x\n      image: {{ .Values.x }}\n     ports: []\n';
      expect(parseDocument(templateSkeleton(bad)).errors).not.toEqual([]);
    });

    it('the worker skeleton has Triton as an init container and the worker as the container', () => {
      const doc = parseDocument(templateSkeleton(templates.get('worker-deployment.yaml')!)).toJS() as {
        spec: { template: { spec: { initContainers: { name: string }[]; containers: { name: string }[] } } };
      };
      expect(doc.spec.template.spec.initContainers.map((c) => c.name)).toEqual(['model-sync', 'triton']);
      expect(doc.spec.template.spec.containers.map((c) => c.name)).toEqual(['worker']);
    });

    it.each([...templates.keys()].filter((n) => n.endsWith('.yaml')))(
      '%s: declares apiVersion and kind',
      (name) => {
        const text = templates.get(name)!;
        expect(text).toMatch(/^apiVersion: \S+$/m);
        expect(text).toMatch(/^kind: [A-Z][A-Za-z]+$/m);
      },
    );
  });

  describe('containers', () => {
    it('finds every container, ours and third-party', () => {
      const names = new Set(containers.map((c) => c.name));
      expect([...names].sort()).toEqual(
        [...Object.keys(OUR_CONTAINERS), ...THIRD_PARTY_CONTAINERS].filter((n) => names.has(n)).sort(),
      );
      for (const name of ['dispatcher', 'worker', 'log-collector', 'uploader', 'triton', 'redis'])
        expect(names).toContain(name);
    });

    const ours = containers.filter((c) => c.name in OUR_CONTAINERS);
    const sources = new Map(Object.values(OUR_CONTAINERS).map((pkg) => [pkg, packageSource(pkg)]));
    const pairs = ours.flatMap((c) => c.env.map((name) => [c.name, name, OUR_CONTAINERS[c.name]!] as const));

    it('sets environment variables on our containers', () => {
      expect(pairs.length).toBeGreaterThan(25);
    });

    it.each(pairs)('%s sets %s: read by %s/src', (container, name, pkg) => {
      expect(
        sourceReadsEnv(sources.get(pkg)!, name),
        `${pkg}/src never mentions ${name} (set on ${container})`,
      ).toBe(true);
    });

    it('flags a variable no service reads (the check can fail)', () => {
      const fake = { name: 'dispatcher', env: ['PORT', 'SMART_ROUTING_NOT_A_REAL_SETTING'] };
      expect(unreadEnv(fake, sources.get('dispatcher')!)).toContain('SMART_ROUTING_NOT_A_REAL_SETTING');
      expect(unreadEnv(fake, "const port = process.env['PORT'];")).toEqual([
        'SMART_ROUTING_NOT_A_REAL_SETTING',
      ]);
      // Whole words only: LOG_DIR is not read just because LOG_DIRECTORY is.
      expect(sourceReadsEnv('process.env.LOG_DIRECTORY', 'LOG_DIR')).toBe(false);
    });
  });

  describe('worker pod', () => {
    const worker = templates.get('worker-deployment.yaml')!;
    const triton = containers.find((c) => c.name === 'triton')!;

    it('runs Triton in explicit model-control mode on the shared model repository', () => {
      expect(triton.body).toContain('- tritonserver');
      expect(triton.body).toContain('--model-control-mode=explicit');
      expect(triton.body).toContain('--model-repository={{ .Values.modelRepository.mountPath }}');
      expect(triton.body).toMatch(/restartPolicy: Always/);
      expect(triton.body).toMatch(/path: \/v2\/health\/ready/);
      expect(triton.body).toMatch(/path: \/v2\/health\/live/);
      expect(triton.body).toContain('nvidia.com/gpu');
      expect(values).toMatchObject({
        worker: {
          triton: {
            image: { repository: 'nvcr.io/nvidia/tritonserver', tag: expect.stringMatching(/-py3$/) },
          },
        },
      });
    });

    it('points the worker at Triton, or at nothing with the embedded server', () => {
      expect(worker).toMatch(
        /\{\{- if \$triton \}\}\s+- name: TRITON_URL\s+value: \{\{ printf "http:\/\/localhost:%d"/,
      );
      expect(worker).toMatch(/else if eq \$w.modelServer "none" \}\}\s+- name: TRITON_URL\s+value: "none"/);
      expect(worker).toContain('{{- if $triton }}\n        # Triton as a native sidecar');
    });

    it('drains on termination: preStop sleep and a grace period', () => {
      expect(worker).toMatch(
        /preStop:\s+#[^\n]*\n(\s+#[^\n]*\n)*\s+exec:\s+command: \["sleep", \{\{ \$w.preStopSleepSeconds/,
      );
      expect(worker).toContain('terminationGracePeriodSeconds: {{ $w.terminationGracePeriodSeconds | int }}');
      expect(templates.get('worker-pdb.yaml')).toContain('kind: PodDisruptionBudget');
    });

    it('the grace period covers the preStop sleep and the longest task', () => {
      for (const file of ['values-kind.yaml', 'values-eks.yaml']) {
        const v = mergeValues(values, chartValues(file));
        const w = v.worker as JsonObject;
        const d = v.dispatcher as JsonObject;
        const needed = Number(w.preStopSleepSeconds) + Number(d.taskTimeoutMs) / 1000;
        expect(Number(w.terminationGracePeriodSeconds), file).toBeGreaterThanOrEqual(needed);
      }
    });
  });

  // Issue 13: several dispatcher replicas on one Redis.
  describe('several dispatchers', () => {
    const deployment = templates.get('dispatcher-deployment.yaml')!;
    const dispatcher = containers.find((c) => c.name === 'dispatcher')!;
    const helpers = templates.get('_helpers.tpl')!;
    const skeleton = (name: string): JsonObject =>
      parseDocument(templateSkeleton(templates.get(name)!)).toJS() as JsonObject;

    it('replicas: dispatcher.replicas, else 2 with Redis and 1 without; more than 1 without Redis fails', () => {
      expect(values).toMatchObject({ dispatcher: { replicas: null, leaseTtlMs: 2000 } });
      expect(values).toMatchObject({ redis: { enabled: false, url: '' } });
      expect(deployment).toContain('replicas: {{ include "smart-routing.dispatcherReplicas" . }}');
      expect(helpers).toMatch(
        /define "smart-routing.dispatcherReplicas"[\s\S]*?if \.Values\.dispatcher\.replicas \}\}\n\{\{- \.Values\.dispatcher\.replicas \| int \}\}\n\{\{- else if include "smart-routing.redisUrl" \. \}\}2\n\{\{- else \}\}1\n/,
      );
      expect(helpers).toContain(
        'fail "dispatcher.replicas > 1 needs a Redis the replicas share: redis.enabled or redis.url"',
      );
      expect(helpers).toContain(
        'fail "set redis.enabled (the chart runs Redis) or redis.url (your own Redis), not both"',
      );
      // Rolling updates only with Redis; a lone dispatcher is replaced (never two without a lease).
      expect(deployment).toContain('type: {{ if $redisUrl }}RollingUpdate{{ else }}Recreate{{ end }}');
    });

    it('REDIS_URL is the chart Redis Service or redis.url, and the replicas get REDIS_URL, LEASE_TTL_MS, REPLICA_ID only with it', () => {
      expect(helpers).toContain(
        '{{- printf "redis://%s-redis:%d" (include "smart-routing.fullname" .) (int .Values.redis.port) }}',
      );
      expect(helpers).toMatch(/else if \.Values\.redis\.url \}\}\n\{\{- \.Values\.redis\.url \}\}/);
      for (const name of ['REDIS_URL', 'LEASE_TTL_MS', 'REPLICA_ID']) expect(dispatcher.env).toContain(name);
      const block = /\{\{- if \$redisUrl \}\}([\s\S]*?)\{\{- end \}\}/.exec(dispatcher.body)?.[1] ?? '';
      expect(block).toMatch(/- name: REDIS_URL\s+value: \{\{ \$redisUrl \| quote \}\}/);
      expect(block).toMatch(/- name: LEASE_TTL_MS\s+value: \{\{ \.Values\.dispatcher\.leaseTtlMs/);
      expect(block).toMatch(/- name: REPLICA_ID\s+valueFrom:\s+fieldRef:\s+fieldPath: metadata\.name/);
    });

    it('workers reach every replica through a headless Service that lists not-ready pods too', () => {
      const svc = skeleton('dispatcher-workers-service.yaml') as {
        kind: string;
        spec: { clusterIP: string; publishNotReadyAddresses: boolean; ports: { name: string }[] };
      };
      expect(svc.kind).toBe('Service');
      expect(svc.spec.clusterIP).toBe('None');
      expect(svc.spec.publishNotReadyAddresses).toBe(true);
      expect(svc.spec.ports.map((p) => p.name)).toEqual(['http']);
      expect(templates.get('dispatcher-workers-service.yaml')).toMatch(
        /^\{\{- if include "smart-routing.redisUrl" \. \}\}/,
      );
      // The workers' DISPATCHER_URL names that Service (with Redis) at the container port.
      expect(helpers).toContain(
        '{{- printf "ws://%s-dispatcher-workers:%d" (include "smart-routing.fullname" .) (int .Values.dispatcher.port) }}',
      );
      expect(containers.find((c) => c.name === 'worker')!.env).toContain('DISPATCHER_URL');
    });

    it('producers keep the dispatcher Service, with HTTP and the KServe gRPC port', () => {
      const svc = skeleton('dispatcher-service.yaml') as {
        spec: { ports: { name: string; targetPort: string }[] };
      };
      expect(svc.spec.ports.map((p) => [p.name, p.targetPort])).toEqual([
        ['http', 'http'],
        ['grpc', 'grpc'],
      ]);
      expect(values).toMatchObject({ dispatcher: { grpcPort: 8081 } });
      expect(dispatcher.body).toMatch(
        /- name: grpc\s+containerPort: \{\{ \.Values\.dispatcher\.grpcPort \| int \}\}/,
      );
      expect(dispatcher.env).toContain('GRPC_PORT');
    });

    it('a PodDisruptionBudget keeps one replica when there are several', () => {
      const pdb = templates.get('dispatcher-pdb.yaml')!;
      expect(pdb).toMatch(/^\{\{- if gt \(int \(include "smart-routing.dispatcherReplicas" \.\)\) 1 \}\}/);
      expect(skeleton('dispatcher-pdb.yaml')).toMatchObject({
        kind: 'PodDisruptionBudget',
        spec: { minAvailable: 1 },
      });
    });

    it('Redis: a StatefulSet from the official image with a PVC and a Service', () => {
      const sts = skeleton('redis-statefulset.yaml') as {
        kind: string;
        spec: {
          replicas: number;
          template: { spec: { containers: { name: string; args: string[] }[] } };
          volumeClaimTemplates: { metadata: { name: string } }[];
        };
      };
      expect(sts.kind).toBe('StatefulSet');
      expect(sts.spec.replicas).toBe(1);
      expect(sts.spec.template.spec.containers[0]!.args).toEqual(
        expect.arrayContaining(['redis-server', '--appendonly', 'yes']),
      );
      expect(sts.spec.volumeClaimTemplates.map((v) => v.metadata.name)).toEqual(['data']);
      // Docker Hub's official image (library/redis), not one of ours under image.registry.
      expect(values).toMatchObject({ redis: { image: { repository: 'redis' } } });
      expect(containers.find((c) => c.name === 'redis')!.body).not.toContain('smart-routing.image');
      const svc = skeleton('redis-service.yaml') as { kind: string; spec: { ports: { name: string }[] } };
      expect(svc.kind).toBe('Service');
      expect(svc.spec.ports.map((p) => p.name)).toEqual(['redis']);
      for (const name of ['redis-statefulset.yaml', 'redis-service.yaml'])
        expect(templates.get(name)).toMatch(/^\{\{- if \.Values\.redis\.enabled \}\}/);
    });
  });

  describe('probes', () => {
    it.each([
      ['dispatcher', '/health'],
      ['log-collector', '/health'],
      ['uploader', '/health'],
    ])('%s has readiness and liveness probes on %s', (name, path) => {
      const body = containers.find((c) => c.name === name)!.body;
      expect(body).toMatch(new RegExp(`readinessProbe:\\s+httpGet:\\s+path: ${path}`));
      expect(body).toMatch(new RegExp(`livenessProbe:\\s+httpGet:\\s+path: ${path}`));
    });
  });

  describe('secrets', () => {
    it('every secretKeyRef key is one the chart Secret writes', () => {
      const written = new Set(
        [...templates.get('secret.yaml')!.matchAll(/^\s+([A-Z_]+): \{\{/gm)].map((m) => m[1]!),
      );
      const referenced = [...templates.values()].flatMap((t) =>
        [...t.matchAll(/secretKeyRef:\s+name: [^\n]+\n\s+key: ([A-Z_]+)/g)].map((m) => m[1]!),
      );
      expect(written).toEqual(new Set(['WORKER_TOKEN', 'API_KEYS', 'HF_TOKEN']));
      expect(referenced.filter((k) => !written.has(k))).toEqual([]);
      expect(new Set(referenced)).toEqual(written);
    });
  });

  describe('Chart.yaml', () => {
    it('is a v2 application chart that needs native sidecars (Kubernetes 1.29+)', () => {
      expect(readYaml('charts/smart-routing/Chart.yaml')).toMatchObject({
        apiVersion: 'v2',
        name: 'smart-routing',
        type: 'application',
        kubeVersion: '>=1.29.0-0',
      });
    });
  });
});
