import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, IMAGE_PACKAGES, npmScriptsCalled, readText, readYaml, rootScripts } from './helpers.js';

type Cmd = string | { cmd?: string; task?: string; for?: unknown };
interface Task {
  desc?: string;
  cmds?: Cmd[];
  deps?: unknown[];
  preconditions?: { sh: string; msg?: string }[];
}
interface Taskfile {
  version: string;
  vars?: Record<string, unknown>;
  tasks: Record<string, Task>;
}

const taskfile = readYaml<Taskfile>('Taskfile.yml');
const commandLines = (task: Task): string[] =>
  (task.cmds ?? []).flatMap((c) => (typeof c === 'string' ? [c] : c.cmd ? [c.cmd] : []));
const allCommands = Object.entries(taskfile.tasks).flatMap(([name, task]) =>
  commandLines(task).map((line) => [name, line] as const),
);

describe('Taskfile.yml', () => {
  it('is a go-task v3 file with the entry points the README names', () => {
    expect(taskfile.version).toBe('3');
    for (const name of ['start', 'stop', 'unit-tests', 'build-producer', 'run-benchmark', 'lint', 'dev'])
      expect(taskfile.tasks[name], name).toBeDefined();
  });

  describe('every npm script a task runs exists in the root package.json', () => {
    const scripts = rootScripts();
    const called = allCommands.flatMap(([task, line]) =>
      npmScriptsCalled(line).map((s) => [task, s] as const),
    );

    it('calls npm scripts (sanity)', () => {
      expect(called.map(([, s]) => s)).toEqual(
        expect.arrayContaining(['test', 'build', 'benchmark', 'lint', 'start']),
      );
    });

    it.each(called)('%s: npm script "%s"', (_task, script) => {
      expect(Object.keys(scripts)).toContain(script);
    });

    it('recognises npm script calls (the check can fail)', () => {
      expect(npmScriptsCalled('npm run no-such-script -- --x && npm test')).toEqual([
        'no-such-script',
        'test',
      ]);
      expect(Object.keys(scripts)).not.toContain('no-such-script');
    });
  });

  describe('run-benchmark', () => {
    const [line] = commandLines(taskfile.tasks['run-benchmark']!);
    const collapsed = line!.replace(/\s+/g, ' ').trim();

    it('maps NUM_WORKERS, RANDOM_DISPATCH and the arguments after -- onto npm run benchmark', () => {
      expect(collapsed).toMatch(/^npm run benchmark -- --workers \{\{\.NUM_WORKERS\}\} /);
      expect(collapsed).toContain('{{if eq .RANDOM_DISPATCH "true"}}--random-dispatch{{end}}');
      expect(collapsed).toMatch(/\{\{\.CLI_ARGS\}\}$/);
    });

    it('declares its defaults as strings at the top level, so command-line VAR=value overrides them', () => {
      // A task's own vars would override the command line; a boolean would break `eq ... "true"`.
      expect(taskfile.vars).toMatchObject({ NUM_WORKERS: '2', RANDOM_DISPATCH: 'false' });
      expect(taskfile.tasks['run-benchmark']).not.toHaveProperty('vars');
    });

    it('passes only flags the benchmark CLI defines', () => {
      const cli = readText('benchmark/src/cli.ts');
      const flags = [...collapsed.matchAll(/(?<![\w-])(--[a-z][a-z-]*)/g)].map((m) => m[1]!);
      expect(flags).toEqual(['--workers', '--random-dispatch', '--dispatcher-url']);
      for (const flag of flags) expect(cli, flag).toContain(`'${flag}`);
      expect(cli).not.toContain(`'--no-such-flag`);
    });
  });

  describe('start / stop', () => {
    const start = commandLines(taskfile.tasks.start!).join('\n');
    const images = String(taskfile.vars?.IMAGES ?? '').split(/\s+/);

    it('creates the kind cluster from kind/cluster.yaml only when missing', () => {
      expect(start).toMatch(
        /kind get clusters[^\n]*\|\| kind create cluster --name \{\{\.CLUSTER\}\} --config kind\/cluster\.yaml/,
      );
      expect(existsSync(join(ROOT, 'kind/cluster.yaml'))).toBe(true);
    });

    it('builds and loads the four images, each from an existing Dockerfile', () => {
      expect(images.sort()).toEqual([...IMAGE_PACKAGES].sort());
      for (const pkg of images) expect(existsSync(join(ROOT, pkg, 'Dockerfile')), pkg).toBe(true);
      const build = commandLines(taskfile.tasks.images!).join('\n');
      expect(build).toContain('docker build -f {{.ITEM}}/Dockerfile -t smart-routing/{{.ITEM}}:{{.TAG}} .');
      expect(start).toContain('kind load docker-image --name {{.CLUSTER}}');
      expect(taskfile.tasks.start!.cmds).toContainEqual({ task: 'images' });
    });

    it('installs the chart with the kind overlay', () => {
      expect(start).toMatch(/helm upgrade --install \{\{\.RELEASE\}\} \{\{\.CHART\}\}/);
      expect(start).toContain('-f {{.CHART}}/values-kind.yaml');
      expect(existsSync(join(ROOT, String(taskfile.vars?.CHART), 'values-kind.yaml'))).toBe(true);
      expect(existsSync(join(ROOT, String(taskfile.vars?.CHART), 'Chart.yaml'))).toBe(true);
    });

    it('stop uninstalls the release and deletes the cluster', () => {
      const stop = commandLines(taskfile.tasks.stop!).join('\n');
      expect(stop).toContain('helm uninstall {{.RELEASE}}');
      expect(stop).toContain('kind delete cluster --name {{.CLUSTER}}');
    });
  });

  it('every template action is closed', () => {
    for (const [task, line] of allCommands) {
      const opens = (line.match(/\{\{/g) ?? []).length;
      expect((line.match(/\}\}/g) ?? []).length, task).toBe(opens);
      const blocks = (line.match(/\{\{\s*(if|range|with)\b/g) ?? []).length;
      expect((line.match(/\{\{\s*end\s*\}\}/g) ?? []).length, task).toBe(blocks);
    }
  });
});
