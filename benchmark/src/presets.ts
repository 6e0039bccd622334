/**
 * The original's experiment, time-compressed. Its loads took ~0.45 s; over capacity (5 labels)
 * each producer waited 2.5 +/- 1.0 s, at capacity (4 labels) 0.75 +/- 1.0 s, with 2 producers,
 * 2 workers holding 2 labels each, 2400 requests. We keep the ratio of measured load time to mean
 * arrival interval by scaling the waits with measured load / 0.45 s.
 */

/** The original's measured load time, seconds. */
export const ORIGINAL_LOAD_S = 0.45;

export interface Preset {
  name: 'over-capacity' | 'at-capacity';
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
};

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
