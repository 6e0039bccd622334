import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  configErrorFrom,
  exitOnConfigError,
  loadEnv,
  loadSettings,
  parseConfig,
} from '../src/env-config.js';

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8001),
  HOST: z.string().min(1).default('0.0.0.0'),
  TOKEN: z.string().min(8).optional(),
});

describe('loadEnv', () => {
  it('fills defaults, reads only the schema variables and freezes the result', () => {
    const config = loadEnv(schema, { env: { OTHER: 'x' } });
    expect(config).toEqual({ PORT: 8001, HOST: '0.0.0.0' });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('lets a given flag win over the environment; empty strings count as unset', () => {
    const env = { PORT: '9000', HOST: '10.0.0.1' };
    expect(loadEnv(schema, { env, flags: { PORT: '9100', HOST: undefined } })).toEqual({
      PORT: 9100,
      HOST: '10.0.0.1',
    });
    expect(loadEnv(schema, { env, flags: { PORT: '' } }).PORT).toBe(9000);
    expect(loadEnv(schema, { env: { PORT: '', HOST: '' } })).toEqual({ PORT: 8001, HOST: '0.0.0.0' });
    expect(loadEnv(schema, { env: {}, flags: { PORT: 0 } }).PORT).toBe(0);
  });

  it('trims values when asked, so blank counts as unset', () => {
    expect(loadEnv(schema, { env: { HOST: '  ' }, trim: true }).HOST).toBe('0.0.0.0');
    expect(loadEnv(schema, { env: { HOST: ' h ' }, trim: true }).HOST).toBe('h');
    expect(loadEnv(schema, { env: { HOST: ' h ' } }).HOST).toBe(' h ');
  });

  it('throws a ConfigError naming the variable, without echoing the value', () => {
    let caught: unknown;
    try {
      loadEnv(schema, { env: { TOKEN: 'secret' } });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const err = caught as ConfigError;
    expect(err.variable).toBe('TOKEN');
    expect(err.message).toMatch(/^invalid TOKEN: /);
    expect(err.message).not.toContain('secret');
    expect(() => loadEnv(schema, { env: { PORT: '70000' } })).toThrow(/^invalid PORT: /);
  });
});

describe('loadSettings', () => {
  const names = { port: 'PORT', host: 'HOST' } as const;

  it('takes flags by setting name and returns the settings by name, frozen', () => {
    const settings = loadSettings(schema, names, {
      env: { PORT: '9000', HOST: 'h' },
      flags: { port: '9001' },
    });
    expect(settings).toEqual({ port: 9001, host: 'h' });
    expect(Object.isFrozen(settings)).toBe(true);
  });

  it('still names the variable, not the setting, in errors', () => {
    expect(() => loadSettings(schema, names, { env: {}, flags: { port: 'x' } })).toThrow(/^invalid PORT: /);
  });
});

describe('ConfigError', () => {
  it('does not name the variable twice when the detail already does', () => {
    expect(new ConfigError('SLOTS', 'SLOTS must be an integer').message).toBe('SLOTS must be an integer');
    expect(new ConfigError('SLOTS', 'too big').message).toBe('invalid SLOTS: too big');
  });
});

describe('configErrorFrom', () => {
  it('names the top-level field of the first issue', () => {
    const parsed = z.object({ keys: z.array(z.string().min(1)) }).safeParse({ keys: ['a', ''] });
    expect(parsed.success).toBe(false);
    const err = configErrorFrom(parsed.error!);
    expect(err.variable).toBe('keys');
    expect(err.message).toMatch(/^invalid keys: /);
  });
});

describe('parseConfig', () => {
  it('validates options once and freezes them', () => {
    const options = parseConfig(z.object({ port: z.number().default(1) }), {});
    expect(options).toEqual({ port: 1 });
    expect(Object.isFrozen(options)).toBe(true);
    expect(() => parseConfig(z.object({ port: z.number() }), { port: 'x' })).toThrow(/invalid port/);
  });
});

describe('exitOnConfigError', () => {
  // Runs the built kit (the root `npm test` builds first) in a child, as a CLI would.
  const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
  const run = async (
    env: Record<string, string>,
  ): Promise<{ code: number | null; stderr: string; stdout: string }> => {
    const script = `
      import { exitOnConfigError, loadEnv } from ${JSON.stringify(dist)};
      import { z } from 'zod';
      const c = exitOnConfigError('my-cli', () =>
        loadEnv(z.object({ PORT: z.coerce.number().int().max(65535).default(1) })));
      process.stdout.write(String(c.PORT));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH ?? '', ...env },
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stderr, stdout };
  };

  it('returns the config when it is valid', async () => {
    expect(await run({ PORT: '42' })).toMatchObject({ code: 0, stdout: '42' });
  });

  it('prints "<program>: <message>" and exits 2 on a bad value', async () => {
    const result = await run({ PORT: '99999' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^my-cli: invalid PORT: /);
  });

  it('rethrows errors that are not ConfigErrors', () => {
    expect(() =>
      exitOnConfigError('x', () => {
        throw new RangeError('boom');
      }),
    ).toThrow(RangeError);
  });
});
