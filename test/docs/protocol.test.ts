import { readFile } from 'node:fs/promises';
import { TASK_ERROR_TABLE } from '@smart-routing/proto';
import { describe, expect, it } from 'vitest';

const protocol = await readFile(new URL('../../PROTOCOL.md', import.meta.url), 'utf8');
const proto = await readFile(new URL('../../proto/proto/smart_routing.proto', import.meta.url), 'utf8');

describe('PROTOCOL.md', () => {
  it('states, for every task error code, the rule of TASK_ERROR_TABLE', () => {
    for (const [code, rule] of Object.entries(TASK_ERROR_TABLE)) {
      const row = protocol.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
      expect(row, `no row for ${code}`).toBeDefined();
      const cells = row!.split('|').map((c) => c.trim());
      expect(cells[2]).toBe(rule.ran ? 'yes' : 'no');
      expect(cells[3]!.startsWith(rule.retry === 'fail' ? 'no' : 'yes')).toBe(true);
      expect(cells[4]).toBe(`\`${rule.worker}\``);
      expect(cells[5]).toBe(`${rule.status} \`${rule.producerCode}\``);
    }
  });

  it('names every field of every message in the .proto', () => {
    // Scalar and enum fields; the `oneof body` members are named after their messages, which have sections.
    const fields = [...proto.matchAll(/^\s+(?:repeated\s+)?(\w+)\s+(\w+)\s*=\s*\d+;/gm)]
      .filter((m) => /^[a-z]/.test(m[1]!) || /State|Code|Kind|Action|TaskError/.test(m[1]!))
      .map((m) => m[2]!);
    expect(fields.length).toBeGreaterThan(20);
    const missing = fields.filter((name) => !protocol.includes(name));
    expect(missing).toEqual([]);
  });
});
