/**
 * Weighted fair queueing across tenants (producers), start-time fair queueing in spirit: every task
 * gets a virtual finish tag when it arrives,
 *
 *   tag = max(V, finish[tenant]) + cost / weight[tenant];  finish[tenant] = tag
 *
 * where cost = runMs(label), plus loadMs(label) when no worker holds the label: a cold load is
 * charged to the tenant whose task causes it (and, if a load happens that was not foreseen at
 * arrival, when the task is sent: `finish[tenant] += loadMs / weight`), so a tenant that keeps
 * asking for cold labels sorts behind other tenants' work. V, the
 * virtual clock, is the largest tag served so far. Where the router chooses between waiting tasks of
 * different labels it takes the smallest tag; with one tenant, tags grow in arrival order, so the
 * order is plain FIFO.
 */

/** Options of {@link FairShare}. */
export interface FairShareOptions {
  /** Weight per tenant (> 0); a tenant not named weighs 1. Default `{}`. */
  weights?: Readonly<Record<string, number>>;
}

/** Tenant of tasks that name none. */
export const DEFAULT_TENANT = '';

/** Per-tenant virtual finish times; see the file header. */
export class FairShare {
  private readonly weights: ReadonlyMap<string, number>;
  private readonly finish = new Map<string, number>();
  private virtual = 0;

  constructor(options: FairShareOptions = {}) {
    const weights = new Map<string, number>();
    for (const [tenant, w] of Object.entries(options.weights ?? {})) {
      if (!(w > 0) || !Number.isFinite(w)) throw new RangeError(`weight of tenant "${tenant}" must be > 0`);
      weights.set(tenant, w);
    }
    this.weights = weights;
  }

  /** The tag of a task of `tenant` that will cost `costMs`; advances the tenant's finish time. */
  tag(tenant: string | undefined, costMs: number): number {
    const t = tenant ?? DEFAULT_TENANT;
    const tag = Math.max(this.virtual, this.finish.get(t) ?? 0) + costMs / this.weightOf(t);
    this.finish.set(t, tag);
    return tag;
  }

  /** Charges `tenant` for extra work its task caused (a cold load), ms. */
  charge(tenant: string | undefined, costMs: number): void {
    const t = tenant ?? DEFAULT_TENANT;
    this.finish.set(t, Math.max(this.virtual, this.finish.get(t) ?? 0) + costMs / this.weightOf(t));
  }

  /** A task with `tag` was served: the virtual clock moves up to it. */
  served(tag: number): void {
    if (tag > this.virtual) this.virtual = tag;
  }

  /** Number of tenants seen (the default one included once it sent a task). */
  get tenantCount(): number {
    return this.finish.size;
  }

  /** A tenant's virtual finish time (for tests and metrics). */
  finishOf(tenant: string | undefined): number {
    return this.finish.get(tenant ?? DEFAULT_TENANT) ?? 0;
  }

  private weightOf(tenant: string): number {
    return this.weights.get(tenant) ?? 1;
  }
}
