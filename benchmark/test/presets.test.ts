import { describe, expect, it } from 'vitest';
import {
  applyPreset,
  formatOverrides,
  presetWaits,
  PRESET_FLAGS,
  PRESETS,
  type PresetSettings,
} from '../src/presets.js';

// The flags' defaults as cli.ts declares them.
const DEFAULTS: PresetSettings = {
  labels: 5,
  workers: 2,
  labelCapacity: 2,
  slots: 1,
  producers: 2,
  requests: 2400,
  modelSizeMb: 8,
};
const givenOnly =
  (...keys: string[]) =>
  (key: string): boolean =>
    keys.includes(key);

describe('applyPreset', () => {
  it('fills in every setting the command line left out from the preset', () => {
    const { settings, overridden } = applyPreset(PRESETS['at-capacity'], DEFAULTS, givenOnly());
    expect(settings).toEqual({
      labels: 4,
      workers: 2,
      labelCapacity: 2,
      slots: 1,
      producers: 2,
      requests: 2400,
      modelSizeMb: 8,
    });
    expect(overridden).toEqual([]);
  });

  it('lets a flag given on the command line win over the preset, and lists it', () => {
    const flags = { ...DEFAULTS, requests: 300, workers: 4 };
    const { settings, overridden } = applyPreset(
      PRESETS['over-capacity'],
      flags,
      givenOnly('requests', 'workers'),
    );
    expect(settings.requests).toBe(300);
    expect(settings.workers).toBe(4);
    expect(settings.labels).toBe(5);
    expect(overridden).toEqual([
      { flag: '--workers', preset: 2, given: 4 },
      { flag: '--requests', preset: 2400, given: 300 },
    ]);
  });

  it("wins even where the flag's default differs from the preset (--quick's 2 MB models, 100 requests)", () => {
    // Regression: the preset used to win over every flag, given or not; now only a given flag wins.
    const quick = applyPreset(PRESETS.quick, DEFAULTS, givenOnly());
    expect(quick.settings).toMatchObject({ requests: 100, modelSizeMb: 2 });
    const more = applyPreset(PRESETS.quick, { ...DEFAULTS, requests: 200 }, givenOnly('requests'));
    expect(more.settings).toMatchObject({ requests: 200, modelSizeMb: 2 });
    expect(more.overridden).toEqual([{ flag: '--requests', preset: 100, given: 200 }]);
  });

  it('does not list a flag given with the value the preset has', () => {
    expect(applyPreset(PRESETS.quick, { ...DEFAULTS, labels: 5 }, givenOnly('labels')).overridden).toEqual(
      [],
    );
  });

  it('without a preset, is the flags as they are', () => {
    const flags = { ...DEFAULTS, labels: 9 };
    expect(applyPreset(undefined, flags, givenOnly())).toEqual({ settings: flags, overridden: [] });
  });

  it('knows a flag for every preset setting it layers', () => {
    for (const [key, flag] of Object.entries(PRESET_FLAGS)) {
      expect(PRESETS['over-capacity']).toHaveProperty(key);
      expect(flag).toMatch(/^--[a-z-]+$/);
    }
  });
});

describe('presetWaits', () => {
  const flags = { waitAvgS: 2.5, waitStddevS: 1.0 };

  it("scales the original's waits by the measured load time when no wait flag is given", () => {
    // 0.045 s measured / 0.45 s original = 0.1
    const w = presetWaits(PRESETS['over-capacity'], 0.045, flags, givenOnly());
    expect(w.waitAvgS).toBeCloseTo(0.25, 10);
    expect(w.waitStddevS).toBeCloseTo(0.1, 10);
    expect(w.overridden).toEqual([]);
  });

  it('lets --wait-avg win and still scales --wait-stddev', () => {
    const w = presetWaits(
      PRESETS['over-capacity'],
      0.045,
      { ...flags, waitAvgS: 0.5 },
      givenOnly('waitAvgS'),
    );
    expect(w.waitAvgS).toBe(0.5);
    expect(w.waitStddevS).toBeCloseTo(0.1, 10);
    expect(w.overridden).toEqual([{ flag: '--wait-avg', preset: expect.closeTo(0.25, 10), given: 0.5 }]);
  });

  it("uses a preset's fixed waits without a measured load (--quick)", () => {
    expect(presetWaits(PRESETS.quick, undefined, flags, givenOnly())).toEqual({
      waitAvgS: 0.1,
      waitStddevS: 0.04,
      overridden: [],
    });
  });

  it('refuses, saying why, to scale waits without a measured load time', () => {
    expect(() => presetWaits(PRESETS['at-capacity'], undefined, flags, givenOnly())).toThrow(
      '--preset at-capacity scales its waits by a measured load time: give --wait-avg and --wait-stddev, or let the benchmark start the stack',
    );
  });

  it('needs no load time when both waits are given', () => {
    const w = presetWaits(
      PRESETS['at-capacity'],
      undefined,
      { waitAvgS: 0.2, waitStddevS: 0.1 },
      givenOnly('waitAvgS', 'waitStddevS'),
    );
    expect([w.waitAvgS, w.waitStddevS]).toEqual([0.2, 0.1]);
    expect(w.overridden.map((o) => o.flag)).toEqual(['--wait-avg', '--wait-stddev']);
  });
});

describe('formatOverrides', () => {
  it('names the preset and each flag that won over it', () => {
    expect(formatOverrides(PRESETS.quick, [])).toBe('preset quick, no flag overrides it');
    expect(
      formatOverrides(PRESETS['over-capacity'], [
        { flag: '--requests', preset: 2400, given: 300 },
        { flag: '--wait-avg', preset: 0.130555555, given: 0.2 },
        { flag: '--wait-stddev', preset: NaN, given: 0.1 },
      ]),
    ).toBe(
      'preset over-capacity; from the command line (flags win over a preset): --requests 300 (preset 2400), --wait-avg 0.2 (preset 0.131), --wait-stddev 0.1 (preset scaled)',
    );
  });
});
