import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Leadership, TaskError, Welcome } from '@smart-routing/proto';
import type { Logger } from 'pino';
import {
  deliveredAs,
  WorkerConnection,
  workerListenUrl,
  type FencedOrder,
  type LinkOwner,
  type ResolvedAddress,
  type WorkerConnectionOptions,
} from './connection.js';
import { errorMessage } from './errors.js';
import type { TaskOutcome } from './task-runner.js';

/**
 * The worker's links to every dispatcher replica (issue 13), and the rules that make several
 * replicas safe: one `WorkerConnection` per replica address, each with its own reconnect and
 * backoff, each sending Hello, label events and heartbeats (so every standby keeps a warm picture).
 *
 *   DISPATCHER_URLS ─ url ─ dns.lookup(host, all) ─ one link per address (re-resolved on every
 *                                                   reconnect and every resolveMs)
 *
 *   order (RunTask / LabelOrder / CancelTask) with token < newest ─> refused: RunTask answered
 *       `stale_leader` (not run), the others ignored (warn, rate-limited)
 *   Welcome(role leader) / Leadership with token >= newest ─> that link leads; pending results go to it
 *
 *   result ─ its own link (same socket) ─> sent
 *           └ gone ─ the leader's link ─> sent
 *                   └ none ─ replicated? ─ yes: kept (bounded, oldest dropped) until a leader announces
 *                                          └ no: dropped, as a lone link always did
 *   sent results of the last `recentResultsMs` (bounded) ─ a new leader announces ─> sent to it again
 *       when they went on another link: a frame written to a leader that was dying is lost with it,
 *       and the new leader, which adopted the task as running, would run it again (a result for a
 *       task it already finished or never knew is ignored there)
 *
 * With one URL and a standalone dispatcher (tokens 0, role standalone) this is exactly one link.
 */

/**
 * {@link DispatcherLinksOptions.pendingResultsBytes} when unset: four results of the dispatcher's
 * largest size (its MAX_RESULT_BYTES default, 16 MiB), so the bound never drops the one result kept.
 */
export const DEFAULT_PENDING_RESULTS_BYTES = 64 * 1024 * 1024;

/** Resolves a host name to its addresses (the `dns.promises.lookup(host, { all: true })` shape). */
export type HostResolver = (host: string) => Promise<ResolvedAddress[]>;

/** Options of `DispatcherLinks`: a link's options, with several URLs instead of one. */
export interface DispatcherLinksOptions extends Omit<
  WorkerConnectionOptions,
  'dispatcherUrl' | 'address' | 'owner'
> {
  /** Dispatcher base URLs (`http(s)://` or `ws(s)://`), at least one; duplicates count once. */
  dispatcherUrls: readonly string[];
  /** How often host names are resolved again, ms; 0 = only when a link reconnects. Default 5000. */
  resolveMs?: number;
  /** Results kept while no link can take them (replicated mode only). Default 1000; 0 keeps none. */
  pendingResultsMax?: number;
  /**
   * Most result bytes kept while no link can take them (oldest dropped first; one result larger
   * than this is kept alone). Default {@link DEFAULT_PENDING_RESULTS_BYTES} (64 MiB).
   */
  pendingResultsBytes?: number;
  /** Host name -> addresses. Default `dns.promises.lookup(host, { all: true })`. */
  resolve?: HostResolver;
  /** Least time between two warnings about stale orders of one kind, ms. Default 5000. */
  staleLogIntervalMs?: number;
  /**
   * How long a sent result is kept to send again to a new leader, ms; longer than a failover
   * (lease TTL plus detection). Default 10000; 0 keeps none.
   */
  recentResultsMs?: number;
  /** Most sent results kept to send again (the newest are kept). Default 256. */
  recentResultsMax?: number;
  /** Most result bytes kept to send again (the newest are kept). Default 4 MiB. */
  recentResultsBytes?: number;
}

/** A result sent on `link` at `at`, kept in case that replica died before it read it. */
interface SentResult {
  outcome: TaskOutcome;
  link: WorkerConnection;
  /** The newest fencing token when it was sent on `link`. */
  token: number;
  at: number;
  bytes: number;
}

/** One configured URL and the links its host name gave. */
interface Source {
  base: string;
  host: string;
  /** Links by address ('' = not pinned: resolved by the socket itself). */
  links: Map<string, WorkerConnection>;
  resolving: Promise<void> | undefined;
  again: boolean;
}

const defaultResolve: HostResolver = async (host) =>
  (await dnsLookup(host, { all: true })).map((a) => ({ address: a.address, family: a.family }));

/** The set of dispatcher links of one worker; `drain`/`close` act on every link. */
export class DispatcherLinks implements LinkOwner {
  private readonly o: DispatcherLinksOptions & {
    resolveMs: number;
    pendingResultsMax: number;
    pendingResultsBytes: number;
    resolve: HostResolver;
    staleLogIntervalMs: number;
    recentResultsMs: number;
    recentResultsMax: number;
    recentResultsBytes: number;
  };
  private readonly logger: Logger;
  private readonly sources: Source[];
  private readonly linkSource = new Map<WorkerConnection, Source>();
  private newest = 0;
  private leader: WorkerConnection | undefined;
  /** Seen a replica (role leader or standby, or a token): results are then worth keeping. */
  private replicated = false;
  private readonly pending: TaskOutcome[] = [];
  private pendingBytes = 0;
  /** Results sent lately, oldest first (see `recentResultsMs`). */
  private readonly recent: SentResult[] = [];
  private recentBytes = 0;
  private draining = false;
  private started = false;
  private closed = false;
  private resolveTimer: NodeJS.Timeout | undefined;
  private readonly staleLog = new Map<FencedOrder | 'announcement', { at: number; suppressed: number }>();
  private closePromise: Promise<void> | undefined;

  constructor(options: DispatcherLinksOptions) {
    const bases = [...new Set(options.dispatcherUrls.map((u) => u.trim()).filter((u) => u !== ''))];
    if (bases.length === 0) throw new TypeError('DispatcherLinks: dispatcherUrls needs at least one URL');
    this.o = {
      resolveMs: 5000,
      pendingResultsMax: 1000,
      pendingResultsBytes: DEFAULT_PENDING_RESULTS_BYTES,
      resolve: defaultResolve,
      staleLogIntervalMs: 5000,
      recentResultsMs: 10_000,
      recentResultsMax: 256,
      recentResultsBytes: 4 * 1024 * 1024,
      ...options,
    };
    this.logger = options.logger;
    // workerListenUrl throws on a bad URL: caller misuse, at once.
    this.sources = bases.map((base) => ({
      base,
      host: new URL(workerListenUrl(base)).hostname.replace(/^\[|\]$/g, ''),
      links: new Map(),
      resolving: undefined,
      again: false,
    }));
  }

  /** True once the worker drains for good (see `drain`). */
  get drainingForGood(): boolean {
    return this.draining;
  }

  /** True while at least one link is open. */
  get connected(): boolean {
    return [...this.linkSource.keys()].some((l) => l.connected);
  }

  /** The links now, as `url` or `url@address` (for logs and tests). */
  get links(): string[] {
    return [...this.linkSource.keys()].map((l) => (l.address ? `${l.url}@${l.address}` : l.url));
  }

  /** The newest fencing token seen (0 with a standalone dispatcher). */
  get newestToken(): number {
    return this.newest;
  }

  /** Results waiting for a leader. */
  get pendingResults(): number {
    return this.pending.length;
  }

  /** Resolves every URL and opens its links; resolves again every `resolveMs`. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    for (const s of this.sources) void this.resolveSource(s);
    if (this.o.resolveMs > 0) {
      this.resolveTimer = setInterval(() => {
        for (const s of this.sources) void this.resolveSource(s);
      }, this.o.resolveMs);
      this.resolveTimer.unref();
    }
  }

  /** Resolves every URL's host again now and adds or closes links; resolves when done. */
  async refresh(): Promise<void> {
    await Promise.all(this.sources.map((s) => this.resolveSource(s)));
  }

  /** Drains every link for good (SIGTERM): resolves when the tasks in flight have finished. */
  async drain(reason = 'worker shutting down'): Promise<void> {
    this.draining = true;
    await Promise.all([...this.linkSource.keys()].map((l) => l.drain(reason)));
    await this.o.runner.whenIdle();
  }

  /** The model server's health changed: every link tells its replica now. */
  modelServerChanged(): void {
    for (const l of this.linkSource.keys()) l.modelServerChanged();
  }

  /** Closes every link and stops resolving. Safe to call twice. */
  close(): Promise<void> {
    this.closePromise ??= (async () => {
      this.closed = true;
      clearInterval(this.resolveTimer);
      await Promise.all([...this.linkSource.keys()].map((l) => l.close()));
      this.linkSource.clear();
      if (this.pending.length > 0)
        this.logger.warn(
          { event: 'pending_results_dropped', count: this.pending.length },
          'closing with results no dispatcher took',
        );
    })();
    return this.closePromise;
  }

  // ------------------------------------------------------------------ links

  /** One resolution of `s` at a time; a request during one runs once more after it. */
  private resolveSource(s: Source): Promise<void> {
    if (s.resolving) {
      s.again = true;
      return s.resolving;
    }
    s.resolving = (async () => {
      do {
        s.again = false;
        await this.reconcile(s).catch((err: unknown) =>
          this.logger.error(
            { event: 'dispatcher_resolve_failed', url: s.base, message: errorMessage(err) },
            'could not update the dispatcher links',
          ),
        );
      } while (s.again && !this.closed);
    })().finally(() => {
      s.resolving = undefined;
    });
    return s.resolving;
  }

  private async reconcile(s: Source): Promise<void> {
    let wanted: (ResolvedAddress | undefined)[];
    if (isIP(s.host) !== 0) wanted = [undefined];
    else {
      let failure: string | undefined;
      try {
        wanted = pickFamily(await this.o.resolve(s.host));
        if (wanted.length === 0) failure = 'no addresses';
      } catch (err) {
        wanted = [];
        failure = errorMessage(err);
      }
      if (failure !== undefined) {
        this.logger.warn(
          { event: 'dispatcher_resolve_failed', url: s.base, host: s.host, message: failure },
          'could not resolve the dispatcher host',
        );
        // Keep the links we have; with none, one that resolves by itself and retries with backoff.
        if (s.links.size > 0) return;
        wanted = [undefined];
      }
    }
    if (this.closed) return;
    const keys = new Map(wanted.map((a) => [a?.address ?? '', a]));
    for (const [key, link] of s.links)
      if (!keys.has(key)) {
        s.links.delete(key);
        this.linkSource.delete(link);
        if (this.leader === link) this.leader = undefined;
        this.logger.info(
          { event: 'dispatcher_link_removed', url: link.url, address: key || undefined },
          'address no longer resolves: link closed',
        );
        void link.close();
      }
    for (const [key, address] of keys)
      if (!s.links.has(key)) {
        const link = this.createLink(s.base, address);
        s.links.set(key, link);
        this.linkSource.set(link, s);
        if (address && keys.size > 1)
          this.logger.info(
            { event: 'dispatcher_link_added', url: link.url, address: address.address },
            'link to one address of the dispatcher host',
          );
        link.start();
      }
  }

  private createLink(base: string, address: ResolvedAddress | undefined): WorkerConnection {
    const {
      dispatcherUrls: _u,
      resolveMs: _r,
      pendingResultsMax: _p,
      pendingResultsBytes: _pb,
      resolve: _l,
      staleLogIntervalMs: _s,
      recentResultsMs: _rm,
      recentResultsMax: _rx,
      recentResultsBytes: _rb,
      ...link
    } = this.o;
    return new WorkerConnection({
      ...link,
      dispatcherUrl: base,
      owner: this,
      ...(address ? { address } : {}),
    });
  }

  // ------------------------------------------------------------------ LinkOwner

  /** @internal */
  welcomed(link: WorkerConnection, welcome: Welcome): void {
    const token = welcome.fencingToken ?? 0;
    if (welcome.role === 'leader' || welcome.role === 'standby' || token > 0) this.replicated = true;
    if (welcome.role === 'leader') return this.announce(link, token, welcome.replicaId);
    // The leader's replica came back as a standby (it lost its lease): it leads no more.
    if (welcome.role === 'standby' && this.leader === link) this.leader = undefined;
  }

  /** @internal */
  leadership(link: WorkerConnection, leadership: Leadership): void {
    this.replicated = true;
    this.announce(link, leadership.fencingToken ?? 0, leadership.replicaId);
  }

  /** A replica says it leads with `token`: it does if nothing newer was seen. */
  private announce(link: WorkerConnection, token: number, replicaId: string): void {
    if (token < this.newest) {
      this.warnStale('announcement', { replica_id: replicaId, fencing_token: token });
      return;
    }
    this.newest = token;
    this.leader = link;
    this.logger.info(
      { event: 'dispatcher_leader', url: link.url, replica_id: replicaId, fencing_token: token },
      'dispatcher leader',
    );
    this.resendRecent(link);
    this.flushPending(link);
  }

  /** @internal */
  isStale(link: WorkerConnection, token: number, order: FencedOrder, subject: string): boolean {
    if (token < this.newest) {
      this.warnStale(order, {
        url: link.url,
        replica_id: link.replica.replicaId,
        fencing_token: token,
        subject,
      });
      return true;
    }
    if (token > this.newest) {
      // Orders come only from a leader: a newer token than any announced one names it.
      this.newest = token;
      this.leader = link;
      this.replicated = true;
    }
    return false;
  }

  /** @internal */
  deliver(link: WorkerConnection, generation: number, outcome: TaskOutcome): boolean | TaskError {
    const own = link.sendResult(outcome, generation);
    if (own === 'sent') this.remember(outcome, link);
    if (own !== 'no_link') return deliveredAs(own);
    const leader = this.leader;
    if (leader) {
      const rerouted = leader.sendResult(outcome);
      if (rerouted === 'sent') this.remember(outcome, leader);
      if (rerouted !== 'no_link') {
        this.logger.info(
          { event: 'result_rerouted', task_id: outcome.taskId, from: link.url, to: leader.url },
          "the task's link is gone: result sent to the leader",
        );
        return deliveredAs(rerouted);
      }
    }
    if (!this.replicated || this.o.pendingResultsMax === 0 || this.closed) return false;
    this.pending.push(outcome);
    this.pendingBytes += resultBytes(outcome);
    // The newest result stays even when it alone is over the byte bound.
    while (
      this.pending.length > 1 &&
      (this.pending.length > this.o.pendingResultsMax || this.pendingBytes > this.o.pendingResultsBytes)
    ) {
      const dropped = this.pending.shift()!;
      this.pendingBytes -= resultBytes(dropped);
      this.logger.warn(
        {
          event: 'pending_result_dropped',
          task_id: dropped.taskId,
          max: this.o.pendingResultsMax,
          max_bytes: this.o.pendingResultsBytes,
        },
        'too many results (or bytes) waiting for a leader: dropped the oldest',
      );
    }
    this.logger.info(
      { event: 'result_pending', task_id: outcome.taskId, pending: this.pending.length },
      'no dispatcher link takes the result now: kept until a leader announces itself',
    );
    return true;
  }

  /** @internal */
  disconnected(link: WorkerConnection): void {
    // A replica that went away may have moved (a new pod address): look again.
    const s = this.linkSource.get(link);
    if (s && !this.closed) void this.resolveSource(s);
  }

  private flushPending(link: WorkerConnection): void {
    let sent = 0;
    while (this.pending.length > 0) {
      const outcome = this.pending[0]!;
      const sent1 = link.sendResult(outcome);
      if (sent1 === 'no_link') break;
      if (sent1 === 'sent') this.remember(outcome, link);
      this.pending.shift();
      this.pendingBytes -= resultBytes(outcome);
      sent++;
    }
    if (sent > 0)
      this.logger.info(
        { event: 'pending_results_sent', count: sent, left: this.pending.length, url: link.url },
        'results kept while no leader was known: sent to the new leader',
      );
  }

  /** Keeps a sent result for `recentResultsMs`, within the count and byte bounds (newest kept). */
  private remember(outcome: TaskOutcome, link: WorkerConnection): void {
    // Only the old leader may hear a refusal of its stale order; a new one would step down on it.
    if (!this.replicated || this.o.recentResultsMs <= 0 || outcome.error?.code === 'stale_leader') return;
    const bytes = resultBytes(outcome);
    if (bytes > this.o.recentResultsBytes) return;
    this.recent.push({ outcome, link, token: this.newest, at: performance.now(), bytes });
    this.recentBytes += bytes;
    this.pruneRecent();
  }

  private pruneRecent(): void {
    const oldest = performance.now() - this.o.recentResultsMs;
    while (
      this.recent.length > 0 &&
      (this.recent.length > this.o.recentResultsMax ||
        this.recentBytes > this.o.recentResultsBytes ||
        this.recent[0]!.at < oldest)
    )
      this.recentBytes -= this.recent.shift()!.bytes;
  }

  /**
   * A leader announced itself on `link`: the results sent lately on other links go to it again.
   * The replica they went to may have died (SIGKILL, or stopped) before reading them, and the new
   * leader adopted those tasks as running on this worker: without them it would run them again.
   * Results sent on `link` itself under an older token go again too: that replica stopped leading
   * in between (a Redis outage) and may have dropped them, then adopted the tasks anew.
   */
  private resendRecent(link: WorkerConnection): void {
    this.pruneRecent();
    let sent = 0;
    for (const r of this.recent) {
      if (r.link === link && r.token >= this.newest) continue;
      if (link.sendResult(r.outcome) !== 'sent') break;
      // Delivered to this leader now; sent again only if it goes too, or leads again later.
      r.link = link;
      r.token = this.newest;
      sent++;
    }
    if (sent > 0)
      this.logger.info(
        { event: 'recent_results_resent', count: sent, url: link.url },
        'results sent lately to other replicas: sent to the new leader too',
      );
  }

  /** One warning per kind per `staleLogIntervalMs`, with the count of those left out. */
  private warnStale(kind: FencedOrder | 'announcement', fields: Record<string, unknown>): void {
    const now = Date.now();
    const entry = this.staleLog.get(kind);
    if (entry && now - entry.at < this.o.staleLogIntervalMs) {
      entry.suppressed++;
      return;
    }
    this.staleLog.set(kind, { at: now, suppressed: 0 });
    this.logger.warn(
      {
        event: 'stale_leader_order',
        order: kind,
        newest_token: this.newest,
        ...fields,
        ...(entry?.suppressed ? { suppressed: entry.suppressed } : {}),
      },
      kind === 'run_task'
        ? 'task from a replica that no longer leads: answered stale_leader'
        : 'order from a replica that no longer leads: ignored',
    );
  }
}

/** What a kept result costs: its payload (JSON length or binary bytes) plus the frame around it. */
function resultBytes(outcome: TaskOutcome): number {
  return (outcome.resultJson?.length ?? 0) + (outcome.inferResponse?.byteLength ?? 0) + 256;
}

/**
 * IPv4 addresses if there are any, else IPv6: a dual-stack name lists each replica twice (A and
 * AAAA), and `localhost` may give 127.0.0.1 and ::1 for one process.
 */
function pickFamily(addresses: ResolvedAddress[]): ResolvedAddress[] {
  const v4 = addresses.filter((a) => a.family === 4);
  const chosen = v4.length > 0 ? v4 : addresses.filter((a) => a.family === 6);
  return [...new Map(chosen.map((a) => [a.address, a])).values()];
}
