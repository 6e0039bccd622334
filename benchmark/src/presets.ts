/**
 * The original's experiment, time-compressed. Its loads took ~0.45 s; over capacity (5 labels)
 * each producer waited 2.5 +/- 1.0 s, at capacity (4 labels) 0.75 +/- 1.0 s, with 2 producers,
 * 2 workers holding 2 labels each, 2400 requests. We keep the ratio of measured load time to mean
 * arrival interval by scaling the waits with measured load / 0.45 s.
 *
 * The rule for flags: **a flag given on the command line wins over the preset** (as over a
 * scenario), and the run says which ones did ({@link applyPreset}, {@link presetWaits}). A preset
 * only fills in what the command line left out.
 */

/** The original's measured load time, seconds. */
export const ORIGINAL_LOAD_S = 0.45;

export interface Preset {
  name: 'over-capacity' | 'at-capacity' | 'quick';
  labels: number;
  workers: number;
  labelCapacity: number;
  slots: number;
  requests: number;
  producers: number;
  /** The original's waits, seconds (scaled at run time). */
  originalWaitAvgS: number;
  originalWaitStddevS: number;
  /** Size of each generated model, MB (sets the load time). */
  modelSizeMb: number;
  /**
   * Waits used as they are, seconds, instead of scaling the original's by a calibration run
   * (which costs a stack start). [none: calibrate and scale]
   */
  fixedWaitsS?: { avg: number; stddev: number };
}

export const PRESETS: Record<Preset['name'], Preset> = {
  'over-capacity': {
    name: 'over-capacity',
    labels: 5,
    workers: 2,
    labelCapacity: 2,
    slots: 1,
    requests: 2400,
    producers: 2,
    originalWaitAvgS: 2.5,
    originalWaitStddevS: 1.0,
    modelSizeMb: 8,
  },
  'at-capacity': {
    name: 'at-capacity',
    labels: 4,
    workers: 2,
    labelCapacity: 2,
    slots: 1,
    requests: 2400,
    producers: 2,
    originalWaitAvgS: 0.75,
    originalWaitStddevS: 1.0,
    modelSizeMb: 8,
  },
  // `--quick`: the over-capacity experiment in miniature, the three policies in about a minute.
  // No calibration run; waits fixed near the original's 0.36 load : interval for the ~20 ms loads
  // of 2 MB models on a quiet machine (the report prints the ratio the run really had).
  quick: {
    name: 'quick',
    labels: 5,
    workers: 2,
    labelCapacity: 2,
    slots: 1,
    requests: 100,
    producers: 2,
    originalWaitAvgS: 2.5,
    originalWaitStddevS: 1.0,
    modelSizeMb: 2,
    fixedWaitsS: { avg: 0.1, stddev: 0.04 },
  },
};

/** The preset's settings that are also flags, and those flags. */
export const PRESET_FLAGS = Object.freeze({
  labels: '--labels',
  workers: '--workers',
  labelCapacity: '--label-capacity',
  slots: '--slots',
  producers: '--producers',
  requests: '--requests',
  modelSizeMb: '--model-size-mb',
} as const);

/** What a preset sets that a flag can also set. */
export type PresetSettings = Pick<Preset, keyof typeof PRESET_FLAGS>;

/** A flag given on the command line that replaced the preset's value. */
export interface PresetOverride {
  flag: string;
  preset: number;
  given: number;
}

/**
 * Layers a preset under the command line: each setting is the flag's value when the flag was given
 * (`given(key)`), else the preset's, else the flag's default (`flags` holds the flags' values,
 * defaults included). Without a preset, `flags` as they are.
 */
export function applyPreset(
  preset: Preset | undefined,
  flags: PresetSettings,
  given: (key: keyof PresetSettings) => boolean,
): { settings: PresetSettings; overridden: PresetOverride[] } {
  const settings = { ...flags };
  const overridden: PresetOverride[] = [];
  if (!preset) return { settings, overridden };
  for (const key of Object.keys(PRESET_FLAGS) as (keyof PresetSettings)[]) {
    if (!given(key)) settings[key] = preset[key];
    else if (flags[key] !== preset[key])
      overridden.push({ flag: PRESET_FLAGS[key], preset: preset[key], given: flags[key] });
  }
  return { settings, overridden };
}

/**
 * The waits of a run with a preset: a wait flag given wins; else the preset's fixed waits, else the
 * original's scaled by `measuredLoadS` / {@link ORIGINAL_LOAD_S}.
 * @throws Error when a wait must be scaled and no load time was measured.
 */
export function presetWaits(
  preset: Preset,
  measuredLoadS: number | undefined,
  flags: { waitAvgS: number; waitStddevS: number },
  given: (key: 'waitAvgS' | 'waitStddevS') => boolean,
): { waitAvgS: number; waitStddevS: number; overridden: PresetOverride[] } {
  const fromPreset = (): { waitAvgS: number; waitStddevS: number } => {
    if (preset.fixedWaitsS)
      return { waitAvgS: preset.fixedWaitsS.avg, waitStddevS: preset.fixedWaitsS.stddev };
    if (measuredLoadS === undefined)
      throw new Error(
        `--preset ${preset.name} scales its waits by a measured load time: give --wait-avg and --wait-stddev, or let the benchmark start the stack`,
      );
    return scaledWaits(preset, measuredLoadS);
  };
  const needPreset = !given('waitAvgS') || !given('waitStddevS');
  const p = needPreset ? fromPreset() : undefined;
  const overridden: PresetOverride[] = [];
  const pick = (key: 'waitAvgS' | 'waitStddevS', flag: string): number => {
    if (!given(key)) return p![key];
    if (p && p[key] !== flags[key]) overridden.push({ flag, preset: p[key], given: flags[key] });
    else if (!p) overridden.push({ flag, preset: NaN, given: flags[key] });
    return flags[key];
  };
  return {
    waitAvgS: pick('waitAvgS', '--wait-avg'),
    waitStddevS: pick('waitStddevS', '--wait-stddev'),
    overridden,
  };
}

/** "--requests 300 (preset 2400), --workers 4 (preset 2)": what the command line changed. */
export function formatOverrides(preset: Preset, overridden: readonly PresetOverride[]): string {
  if (overridden.length === 0) return `preset ${preset.name}, no flag overrides it`;
  const fmt = (n: number): string => (Number.isNaN(n) ? 'scaled' : String(Number(n.toFixed(3))));
  return `preset ${preset.name}; from the command line (flags win over a preset): ${overridden
    .map((o) => `${o.flag} ${fmt(o.given)} (preset ${fmt(o.preset)})`)
    .join(', ')}`;
}

/** Mean interval between arrivals at the dispatcher in a closed loop (ignoring service time). */
export function meanArrivalIntervalS(waitAvgS: number, producers: number): number {
  return waitAvgS / producers;
}

/** Waits that keep the original's load/interval ratio for a measured load time. */
export function scaledWaits(
  preset: Preset,
  measuredLoadS: number,
): { waitAvgS: number; waitStddevS: number; scale: number } {
  const scale = measuredLoadS / ORIGINAL_LOAD_S;
  return {
    waitAvgS: preset.originalWaitAvgS * scale,
    waitStddevS: preset.originalWaitStddevS * scale,
    scale,
  };
}
