import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandlerPluginError, loadHandlerPlugins } from '../src/handler-plugins.js';

const HANDLER = (type: string) =>
  `{ taskType: ${JSON.stringify(type)}, labelFree: true, parse: (p) => p, run: async (p) => p }`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handler-plugins-'));
  const files: Record<string, string> = {
    'named.mjs': `export const handlers = [${HANDLER('a')}, ${HANDLER('b')}];`,
    'default-one.mjs': `export default ${HANDLER('c')};`,
    'default-list.mjs': `export default [${HANDLER('d')}];`,
    'none.mjs': `export const other = 1;`,
    'empty.mjs': `export const handlers = [];`,
    'no-type.mjs': `export default { labelFree: true, parse() {}, run() {} };`,
    'bad-flag.mjs': `export default { taskType: 'x', labelFree: 'yes', parse() {}, run() {} };`,
    'no-run.mjs': `export default { taskType: 'x', labelFree: false, parse() {} };`,
    'throws.mjs': `throw new Error('boom at import');`,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), `${text}\n`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('loadHandlerPlugins', () => {
  it('loads handlers from `export const handlers`, a default handler and a default list, in order', async () => {
    const handlers = await loadHandlerPlugins('./named.mjs, ./default-one.mjs,./default-list.mjs', dir);
    expect(handlers.map((h) => h.taskType)).toEqual(['a', 'b', 'c', 'd']);
    expect(await handlers[0]!.run({ x: 1 }, {} as never)).toEqual({ x: 1 });
  });

  it('takes absolute paths, and ignores empty entries', async () => {
    const handlers = await loadHandlerPlugins(`${join(dir, 'default-one.mjs')},,`, '/');
    expect(handlers.map((h) => h.taskType)).toEqual(['c']);
  });

  it.each([
    ['./missing.mjs', /WORKER_HANDLERS: cannot load \.\/missing\.mjs: /],
    ['./throws.mjs', /WORKER_HANDLERS: cannot load \.\/throws\.mjs: boom at import/],
    ['./none.mjs', /\.\/none\.mjs exports no handlers/],
    ['./empty.mjs', /\.\/empty\.mjs exports an empty handler list/],
    ['./no-type.mjs', /\.\/no-type\.mjs\[0\]: taskType must be a string/],
    ['./bad-flag.mjs', /\.\/bad-flag\.mjs\[0\]: labelFree must be a boolean/],
    ['./no-run.mjs', /\.\/no-run\.mjs\[0\]: run must be a function/],
    ['no-such-package-here', /cannot load no-such-package-here/],
  ])('refuses %s with a message naming it', async (spec, message) => {
    const err = await loadHandlerPlugins(spec, dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandlerPluginError);
    expect((err as Error).message).toMatch(message);
  });

  it('loads the example module of worker/examples', async () => {
    const handlers = await loadHandlerPlugins(
      './worker/examples/text-handlers.js',
      new URL('../../', import.meta.url).pathname,
    );
    expect(handlers.map((h) => [h.taskType, h.labelFree])).toEqual([
      ['word_count', true],
      ['reverse_text', true],
    ]);
    expect(() => handlers[0]!.parse({ text: 3 })).toThrow(/word_count: text: expected a string/);
  });
});
