/** Options of {@link CostModel}. */
export interface CostModelOptions {
  /** Weight of a new sample in the moving averages, in (0, 1]. Default 0.3. */
  alpha?: number;
  /** Load time assumed for a label before any load was measured anywhere. Default 1000 ms. */
  defaultLoadMs?: number;
  /** Run time assumed before any task was measured. Default 50 ms. */
  defaultRunMs?: number;
}

/**
 * What the affinity policy has learned about costs: an exponentially weighted moving average (EWMA)
 * of measured load times per label and of run times per label, with fleet-wide averages as the
 * fallback for a label never measured, and fixed defaults before anything was measured.
 */
export class CostModel {
  private readonly alpha: number;
  private readonly defaultLoadMs: number;
  private readonly defaultRunMs: number;
  private readonly load = new Map<string, number>();
  private readonly run = new Map<string, number>();
  private readonly footprint = new Map<string, number>();
  private footprintSum = 0;
  private globalLoad: number | undefined;
  private globalRun: number | undefined;

  constructor(options: CostModelOptions = {}) {
    this.alpha = options.alpha ?? 0.3;
    if (!(this.alpha > 0 && this.alpha <= 1)) throw new RangeError('alpha must be in (0, 1]');
    this.defaultLoadMs = options.defaultLoadMs ?? 1000;
    this.defaultRunMs = options.defaultRunMs ?? 50;
  }

  /** Records a measured load of `label` (ms). Non-finite or negative samples are ignored. */
  observeLoad(label: string, ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    this.load.set(label, this.mix(this.load.get(label), ms));
    this.globalLoad = this.mix(this.globalLoad, ms);
  }

  /** Records a measured run of a task on `label` (ms). */
  observeRun(label: string, ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    this.run.set(label, this.mix(this.run.get(label), ms));
    this.globalRun = this.mix(this.globalRun, ms);
  }

  /** Expected time to load `label` on a worker (ms). */
  loadMs(label: string): number {
    return this.load.get(label) ?? this.globalLoad ?? this.defaultLoadMs;
  }

  /** Expected run time of a task on `label` (ms). */
  runMs(label: string): number {
    return this.run.get(label) ?? this.globalRun ?? this.defaultRunMs;
  }

  /** Records the memory `label` took on a worker, bytes (the latest report wins; 0 is ignored). */
  observeFootprint(label: string, bytes: number): void {
    if (!(bytes > 0) || !Number.isFinite(bytes)) return;
    this.footprintSum += bytes - (this.footprint.get(label) ?? 0);
    this.footprint.set(label, bytes);
  }

  /**
   * Memory `label` is expected to take, bytes: its last report, else the mean of the labels
   * reported so far (a first load is then less likely to overshoot a budget), else 0.
   */
  footprintBytes(label: string): number {
    const known = this.footprint.get(label);
    if (known !== undefined) return known;
    return this.footprint.size > 0 ? this.footprintSum / this.footprint.size : 0;
  }

  /** Expected run time of any task (ms). */
  meanRunMs(): number {
    return this.globalRun ?? this.defaultRunMs;
  }

  /** Labels with a measured load time and their EWMA (ms). */
  learnedLoads(): Map<string, number> {
    return new Map(this.load);
  }

  private mix(prev: number | undefined, sample: number): number {
    return prev === undefined ? sample : prev + this.alpha * (sample - prev);
  }
}
