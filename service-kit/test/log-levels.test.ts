import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { LOG_LEVELS, logLevelSchema } from '../src/log-levels.js';

describe('LOG_LEVELS', () => {
  it('is exactly the set of pino level names plus silent', () => {
    // pino's own table (pino.levels.values) is the source of truth for what a logger accepts.
    expect([...LOG_LEVELS].sort()).toEqual([...Object.keys(pino.levels.values), 'silent'].sort());
  });
});

describe('logLevelSchema', () => {
  it('accepts every level and refuses others, with the given message', () => {
    for (const level of LOG_LEVELS) expect(logLevelSchema().parse(level)).toBe(level);
    const result = logLevelSchema('pick a real level').safeParse('loud');
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe('pick a real level');
  });
});
