import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT, listFiles, onPath, yamlErrors } from './helpers.js';

/** Hand-written YAML: chart files outside templates/ (templates are YAML only once rendered), kind, Taskfile. */
const yamlFiles = [
  ...listFiles('charts', (p) => /\.ya?ml$/.test(p) && !p.includes('/templates/')),
  ...listFiles('kind', (p) => /\.ya?ml$/.test(p)),
  'Taskfile.yml',
  '.yamllint.yml',
];

describe('YAML files', () => {
  it('finds the chart, overlay, kind and Taskfile YAML', () => {
    expect(yamlFiles).toEqual(
      expect.arrayContaining([
        'charts/smart-routing/Chart.yaml',
        'charts/smart-routing/values.yaml',
        'charts/smart-routing/values-kind.yaml',
        'charts/smart-routing/values-eks.yaml',
        'kind/cluster.yaml',
        'Taskfile.yml',
      ]),
    );
  });

  it.each(yamlFiles)('%s parses', (file) => {
    expect(yamlErrors(file)).toEqual([]);
  });

  it('reports a syntax error (the check can fail)', async () => {
    const { parseAllDocuments } = await import('yaml');
    const errors = parseAllDocuments('a: [1, 2\nb: {').flatMap((d) => d.errors);
    expect(errors.length).toBeGreaterThan(0);
  });
});

describe.skipIf(!onPath('yamllint'))(
  'yamllint (skipped: yamllint is not on PATH; apt-get install yamllint)',
  () => {
    it('passes with .yamllint.yml, warnings included', () => {
      // --strict: warnings fail too. Templates are excluded by the config's ignore list.
      const run = () =>
        execFileSync(
          'yamllint',
          ['--strict', '-f', 'parsable', '-c', '.yamllint.yml', 'charts', 'kind', 'Taskfile.yml'],
          {
            cwd: ROOT,
            encoding: 'utf8',
            stdio: 'pipe',
          },
        );
      let output = '';
      try {
        output = run();
      } catch (error) {
        const e = error as { stdout?: string; stderr?: string };
        output = `${e.stdout ?? ''}${e.stderr ?? ''}` || String(error);
        expect.fail(`yamllint found problems:\n${output}`);
      }
      expect(output).toBe('');
    });
  },
);
