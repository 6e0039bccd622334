import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type JsonObject, IMAGE_PACKAGES, ROOT, chartValues, readJson, readText } from './helpers.js';

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Parses a Dockerfile into stages: comments dropped, continuation lines joined, ARG defaults applied to FROM. */
function parseDockerfile(text: string): Stage[] {
  const lines = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      const image = m[1]!.replace(/\$\{?(\w+)\}?/g, (_, name: string) => globalArgs.get(name) ?? '');
      stages.push({ image, name: m[2], instructions: [] });
    } else if (stages.length === 0 && upper === 'ARG') {
      const [name, value = ''] = args.split('=');
      globalArgs.set(name!, value);
    } else {
      stages.at(-1)?.instructions.push({ op: upper, args });
    }
  }
  return stages;
}

interface PackageJson {
  name: string;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  files?: string[];
  bin?: Record<string, string>;
}
interface TsConfig {
  references?: { path: string }[];
}

const rootPkg = readJson<PackageJson>('package.json');
const workspaces = rootPkg.workspaces ?? [];
const byName = new Map(workspaces.map((ws) => [readJson<PackageJson>(`${ws}/package.json`).name, ws]));

/** Workspace folders a package needs at run time: itself and its @smart-routing dependencies, transitively. */
function runtimeWorkspaces(pkg: string, seen = new Set<string>()): Set<string> {
  seen.add(pkg);
  for (const dep of Object.keys(readJson<PackageJson>(`${pkg}/package.json`).dependencies ?? {})) {
    const ws = byName.get(dep);
    if (ws && !seen.has(ws)) runtimeWorkspaces(ws, seen);
  }
  return seen;
}

/** Workspace folders `tsc -b <pkg>` compiles: itself and its project references, transitively. */
function buildWorkspaces(pkg: string, seen = new Set<string>()): Set<string> {
  seen.add(pkg);
  for (const ref of readJson<TsConfig>(`${pkg}/tsconfig.json`).references ?? []) {
    const ws = join(pkg, ref.path).replace(/\/$/, '');
    if (!seen.has(ws)) buildWorkspaces(ws, seen);
  }
  return seen;
}

const copies = (stage: Stage) => stage.instructions.filter((i) => i.op === 'COPY');
const runs = (stage: Stage) => stage.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
const envOf = (stage: Stage) =>
  stage.instructions
    .filter((i) => i.op === 'ENV')
    .map((i) => i.args)
    .join(' ');

/** The component's port in values.yaml (the chart sets PORT to it). */
const chartPort: Record<string, number | undefined> = {
  dispatcher: (chartValues().dispatcher as JsonObject).port as number,
  'log-collector': (chartValues().logCollector as JsonObject).port as number,
  uploader: (chartValues().uploader as JsonObject).port as number,
  worker: undefined,
};

/** .dockerignore patterns as regexes over repository-relative paths. */
const ignored = readText('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .map(
    (p) =>
      new RegExp(
        `^${p
          .replace(/[.+^$()|[\]\\]/g, '\\$&')
          .replace(/\*\*\//g, '(?:.*/)?')
          .replace(/\*\*/g, '.*')
          .replace(/\*/g, '[^/]*')}(?:/.*)?$`,
      ),
  );
const isIgnored = (path: string) => ignored.some((re) => re.test(path));

describe('.dockerignore', () => {
  it('keeps build output and dependencies out of the context', () => {
    for (const path of [
      'node_modules/x',
      'worker/node_modules/x',
      'worker/dist/cli.js',
      'proto/tsconfig.tsbuildinfo',
      '.git/HEAD',
    ])
      expect(isIgnored(path), path).toBe(true);
    expect(isIgnored('worker/src/cli.ts')).toBe(false);
  });
});

describe.each(IMAGE_PACKAGES)('%s/Dockerfile', (pkg) => {
  const path = `${pkg}/Dockerfile`;
  const stages = existsSync(join(ROOT, path)) ? parseDockerfile(readText(path)) : [];
  const final = stages.at(-1)!;
  const build = stages.find((s) => s.name === 'build');

  it('exists, multi-stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
  });

  it('uses Node 20 images in every stage', () => {
    for (const stage of stages) expect(stage.image).toMatch(/^node:20(-|$)/);
    expect(final.image).toBe('node:20-bookworm-slim');
  });

  it('runs as a non-root user in the final stage', () => {
    const users = final.instructions.filter((i) => i.op === 'USER').map((i) => i.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
  });

  it('installs production dependencies of this workspace only (--omit=dev -w)', () => {
    const prod = stages.flatMap(runs).filter((r) => /\bnpm ci\b/.test(r) && r.includes('--omit=dev'));
    expect(prod.length).toBe(1);
    expect(prod[0]).toContain(`-w ${readJson<PackageJson>(`${pkg}/package.json`).name}`);
  });

  it('skips the onnxruntime-node download wherever npm ci runs', () => {
    for (const stage of stages.filter((s) => runs(s).some((r) => /\bnpm ci\b/.test(r))))
      expect(envOf(stage), stage.name).toContain('ONNXRUNTIME_NODE_INSTALL=skip');
  });

  it('has no npm, dev dependencies or build step in the final stage', () => {
    expect(runs(final).filter((r) => /\bnpm (ci|install|i)\b|\btsc\b/.test(r))).toEqual([]);
    expect(runs(final).join(' ')).toContain('/usr/local/lib/node_modules/npm');
  });

  it('copies only paths that exist and that .dockerignore lets through', () => {
    const sources = stages
      .flatMap(copies)
      .filter((c) => !c.args.startsWith('--from'))
      .flatMap((c) => c.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) {
      expect(existsSync(join(ROOT, src)), src).toBe(true);
      expect(isIgnored(src.replace(/\/$/, '')), `${src} is in .dockerignore`).toBe(false);
    }
  });

  it('gives every npm ci the manifests of all workspaces (npm checks them against package-lock.json)', () => {
    for (const stage of stages.filter((s) => runs(s).some((r) => /\bnpm ci\b/.test(r)))) {
      const copied = copies(stage).map((c) => c.args.split(/\s+/)[0]);
      expect(copied, stage.name).toEqual(
        expect.arrayContaining(workspaces.map((ws) => `${ws}/package.json`)),
      );
      expect(copies(stage)[0]!.args, stage.name).toMatch(/^package\.json package-lock\.json/);
    }
  });

  it('compiles the package with the sources of every project reference', () => {
    expect(build).toBeDefined();
    expect(runs(build!)).toContain(`npx tsc -b ${pkg}`);
    const copied = copies(build!).map((c) => c.args.split(/\s+/)[0]);
    for (const ws of buildWorkspaces(pkg)) expect(copied, ws).toContain(`${ws}/`);
  });

  it('ships the built files of the package and of every workspace it depends on', () => {
    const shipped = copies(final)
      .filter((c) => c.args.startsWith('--from=build'))
      .map((c) => c.args.split(/\s+/)[1]);
    for (const ws of runtimeWorkspaces(pkg)) {
      const files = readJson<PackageJson>(`${ws}/package.json`).files ?? ['dist'];
      for (const f of files) expect(shipped, `${ws}/${f}`).toContain(`/app/${ws}/${f}`);
    }
  });

  it("starts the package's CLI", () => {
    // The bin is a committed shim (npm links it only if it exists at `npm ci`) that runs dist/cli.js.
    const bin = Object.values(readJson<PackageJson>(`${pkg}/package.json`).bin ?? {});
    expect(bin.some((b) => readText(`${pkg}/${b}`).includes("new URL('../dist/cli.js'"))).toBe(true);
    const cmd = final.instructions.filter((i) => i.op === 'CMD').at(-1)!;
    expect(JSON.parse(cmd.args)).toEqual(['node', `${pkg}/dist/cli.js`]);
  });

  it('exposes the port the chart uses and checks /health', () => {
    const port = chartPort[pkg];
    const expose = final.instructions.filter((i) => i.op === 'EXPOSE').map((i) => Number(i.args));
    const health = final.instructions.find((i) => i.op === 'HEALTHCHECK');
    if (port === undefined) {
      // The worker has no HTTP port of its own; the Dockerfile says so.
      expect(expose).toEqual([]);
      expect(readText(path)).toMatch(/# No HEALTHCHECK: the worker serves no HTTP port/);
      return;
    }
    // The dispatcher also serves KServe v2 gRPC on its own port (GRPC_PORT), as the chart does.
    const grpcPort = pkg === 'dispatcher' ? (chartValues().dispatcher as JsonObject).grpcPort : undefined;
    expect(expose).toEqual(grpcPort === undefined ? [port] : [port, grpcPort]);
    expect(envOf(final)).toContain(`PORT=${port}`);
    expect(health?.args).toContain('/health');
    expect(health?.args).toContain('fetch(');
  });
});
