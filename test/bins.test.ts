import { execFile } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// Regression (issue 11, item 9): every `npx smart-routing-*` in the README failed after `npm ci`,
// because npm links a workspace's bin only if its target exists at install time, and dist/ does
// not exist then. The bins are committed shims (`<package>/bin/*.js`) that run the built CLI.
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);
const workspaces = (
  JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { workspaces: string[] }
).workspaces;
const bins: { ws: string; name: string; file: string }[] = [];
for (const ws of workspaces) {
  const pkg = JSON.parse(await readFile(join(root, ws, 'package.json'), 'utf8')) as {
    bin?: Record<string, string>;
  };
  for (const [name, file] of Object.entries(pkg.bin ?? {})) bins.push({ ws, name, file });
}

describe('package bins', () => {
  it('covers every smart-routing-* command the README names', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const named = new Set([...readme.matchAll(/npx (smart-routing-[a-z-]+)/g)].map((m) => m[1]));
    expect(named.size).toBeGreaterThan(0);
    for (const name of named) expect(bins.map((b) => b.name)).toContain(name);
  });

  it.each(bins)('$name is a committed file outside dist/', ({ ws, file }) => {
    expect(file).not.toMatch(/dist\//);
    expect(existsSync(join(root, ws, file))).toBe(true);
  });

  it.each(bins)('$name is linked in node_modules/.bin and runs --help', async ({ ws, name, file }) => {
    const link = join(root, 'node_modules', '.bin', name);
    expect(realpathSync(link)).toBe(realpathSync(join(root, ws, file)));
    const { stdout } = await run(link, ['--help'], { cwd: root });
    expect(stdout).toContain(`Usage: ${name}`);
  });

  it('says to build first when dist/ is missing, instead of a stack trace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sr-bin-'));
    try {
      const { ws, name, file } = bins[0]!;
      await mkdir(join(dir, 'bin'));
      await copyFile(join(root, ws, file), join(dir, 'bin', 'shim.js'));
      await copyFile(join(root, ws, 'package.json'), join(dir, 'package.json')); // "type": "module"
      const err = (await run(process.execPath, [join(dir, 'bin', 'shim.js'), '--help']).catch(
        (e: unknown) => e,
      )) as {
        code: number;
        stderr: string;
      };
      expect(err.code).toBe(1);
      expect(err.stderr).toBe(`${name}: not built yet; run \`npm run build\` in the repository root first\n`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
