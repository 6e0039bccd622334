import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ReplicaState } from './replication/replica-role.js';
import { COMMON_QUEUE } from './routing/queues.js';

/** What the gauges read at scrape time. */
export interface MetricsSource {
  queueDepths(): Map<string, number>;
  readonly workerCount: number;
  /** Workers quarantined now [0 when not given]. */
  readonly quarantinedCount?: number;
  /** Peers whose worker upgrades are refused now for flapping [0 when not given]. */
  readonly quarantinedPeerCount?: number;
}

/** Counts kept elsewhere that /metrics reports too. */
export interface ExternalCounts {
  /** Log records the log shipper had to drop (collector down or slow). */
  logRecordsDropped?: () => number;
  /** Tasks in the task store by status (async tasks and stored sync results), read at scrape time. */
  storedTasks?: () => Promise<Record<string, number>>;
  /** Replicated mode only: the replica's role and lease epoch [unset: the replica metrics are not exported]. */
  replica?: () => ReplicaState;
  /** Replicated mode only: whether the shared Redis answers now [unset: not exported]. */
  sharedStoreUp?: () => boolean;
}

/** The dispatcher's Prometheus metrics, on a registry of their own (several dispatchers may share a process). */
export interface DispatcherMetrics {
  readonly registry: Registry;
  /** Producer requests to /run-task by outcome: `completed` or an error code. */
  readonly tasks: Counter<'outcome'>;
  /** Task results whose label was already loaded (TaskResult.labelMiss false, task ran). */
  readonly labelHits: Counter;
  /** Task results whose label had to be loaded (TaskResult.labelMiss true). */
  readonly labelMisses: Counter;
  /** Label loads reported by workers (LabelEvent loaded). */
  readonly labelLoads: Counter;
  /** Label evictions reported by workers (LabelEvent evicted). */
  readonly labelEvictions: Counter;
  /** Tasks sent again after a worker loss, a failed load or a refusal. */
  readonly taskRetries: Counter;
  /** Time spent in the routing core per decision. */
  readonly routingDecisionSeconds: Histogram;
  /** Quarantines started, by reason (`task_timeout`, `lost_with_tasks`). */
  readonly workerQuarantines: Counter<'reason'>;
  /** Worker WebSocket upgrades refused, by error code (`worker_quarantined`, `unauthorized`, ...). */
  readonly workerUpgradesRefused: Counter<'code'>;
  /** Task store call latency, by operation (`create`, `get`, `finish`, ...). */
  readonly taskStoreSeconds: Histogram<'op'>;
  /** Results written to the task store once (a second result for an ended task is not counted), by final status. */
  readonly resultsStored: Counter<'status'>;
  /** Callbacks the receiver accepted (2xx). */
  readonly callbacksSent: Counter;
  /** Callbacks given up on after the last retry (or refused for good by the receiver). */
  readonly callbacksFailed: Counter;
  /** Times this replica took over as the leader (replicated mode; not exported when standalone). */
  readonly failovers: Counter;
  /** Tasks this replica accepted and handed to the leader through Redis (replicated mode). */
  readonly forwardedTasks: Counter;
}

/** Creates the metrics the README lists (`GET /metrics`) on a new registry. */
export function createMetrics(source: MetricsSource, external: ExternalCounts = {}): DispatcherMetrics {
  const registry = new Registry();
  const registers = [registry];
  const replica = external.replica;
  // Standalone, /metrics lists what it always did.
  const replicaRegisters = replica ? [registry] : [];
  if (replica) {
    new Gauge({
      name: 'dispatcher_replica_role',
      help: "This replica's role: 1 on the current one (leader or standby).",
      labelNames: ['role'],
      registers,
      collect() {
        const role = replica().role;
        for (const r of ['leader', 'standby'] as const) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    new Gauge({
      name: 'dispatcher_lease_epoch',
      help: 'The newest fencing token this replica has seen (the lease epoch).',
      registers,
      collect() {
        this.set(replica().epoch);
      },
    });
  }
  const sharedStoreUp = external.sharedStoreUp;
  if (sharedStoreUp) {
    new Gauge({
      name: 'dispatcher_shared_store_up',
      help: 'Replicated mode: 1 while the shared Redis answers, 0 during an outage (no replica leads then).',
      registers,
      collect() {
        this.set(sharedStoreUp() ? 1 : 0);
      },
    });
  }
  const logRecordsDropped = external.logRecordsDropped;
  if (logRecordsDropped) {
    new Gauge({
      name: 'smart_routing_log_records_dropped',
      help: 'Log records the shipper dropped since start because the log collector was down or slow.',
      registers,
      collect() {
        this.set(logRecordsDropped());
      },
    });
  }
  new Gauge({
    name: 'smart_routing_queue_depth',
    help: 'Tasks waiting, per label queue (label="*" is the common queue).',
    labelNames: ['label'],
    registers,
    collect() {
      this.reset();
      this.set({ label: COMMON_QUEUE }, 0);
      for (const [label, depth] of source.queueDepths()) this.set({ label }, depth);
    },
  });
  const storedTasks = external.storedTasks;
  if (storedTasks) {
    new Gauge({
      name: 'smart_routing_async_tasks',
      help: 'Tasks in the task store by status (async tasks, and completed sync tasks kept for idempotent retries).',
      labelNames: ['status'],
      registers,
      async collect() {
        let counts: Record<string, number>;
        try {
          counts = await storedTasks();
        } catch {
          return; // the store is away (a Redis outage): the last counts stay, /metrics still answers
        }
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    });
  }
  new Gauge({
    name: 'smart_routing_connected_workers',
    help: 'Workers connected and registered (Hello received).',
    registers,
    collect() {
      this.set(source.workerCount);
    },
  });
  new Gauge({
    name: 'smart_routing_quarantined_workers',
    help: 'Workers that get no new tasks for a cool-down (tasks timed out, or lost with tasks in flight).',
    registers,
    collect() {
      this.set(source.quarantinedCount ?? 0);
    },
  });
  new Gauge({
    name: 'smart_routing_quarantined_peers',
    help: 'Peers (a credential, or the shared token and an address) whose worker upgrades get 429 for flapping.',
    registers,
    collect() {
      this.set(source.quarantinedPeerCount ?? 0);
    },
  });
  return {
    registry,
    tasks: new Counter({
      name: 'smart_routing_tasks_total',
      help: 'Producer task requests by outcome (completed, or the error code).',
      labelNames: ['outcome'],
      registers,
    }),
    labelHits: new Counter({
      name: 'smart_routing_label_hits_total',
      help: 'Tasks that ran on a worker that already had their label loaded.',
      registers,
    }),
    labelMisses: new Counter({
      name: 'smart_routing_label_misses_total',
      help: 'Tasks that had to load their label first (from TaskResult.labelMiss).',
      registers,
    }),
    labelLoads: new Counter({
      name: 'smart_routing_label_loads_total',
      help: 'Label loads reported by workers.',
      registers,
    }),
    labelEvictions: new Counter({
      name: 'smart_routing_label_evictions_total',
      help: 'Label evictions reported by workers.',
      registers,
    }),
    taskRetries: new Counter({
      name: 'smart_routing_task_retries_total',
      help: 'Tasks sent again after a worker loss, a failed label load or a draining/no_slot refusal.',
      registers,
    }),
    routingDecisionSeconds: new Histogram({
      name: 'smart_routing_routing_decision_seconds',
      help: 'Time spent in the routing core per decision.',
      buckets: [1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025],
      registers,
    }),
    workerQuarantines: new Counter({
      name: 'smart_routing_worker_quarantines_total',
      help: 'Quarantines started, by reason (task_timeout, lost_with_tasks).',
      labelNames: ['reason'],
      registers,
    }),
    workerUpgradesRefused: new Counter({
      name: 'smart_routing_worker_upgrades_refused_total',
      help: 'Worker WebSocket upgrades refused, by error code (worker_quarantined, unauthorized, ...).',
      labelNames: ['code'],
      registers,
    }),
    taskStoreSeconds: new Histogram({
      name: 'smart_routing_task_store_seconds',
      help: 'Task store call latency, by operation.',
      labelNames: ['op'],
      buckets: [1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.1, 0.5],
      registers,
    }),
    resultsStored: new Counter({
      name: 'smart_routing_results_stored_total',
      help: 'Task endings written to the task store (each task once), by final status.',
      labelNames: ['status'],
      registers,
    }),
    callbacksSent: new Counter({
      name: 'smart_routing_callbacks_sent_total',
      help: 'Callbacks POSTed to a callback_url and accepted (2xx).',
      registers,
    }),
    callbacksFailed: new Counter({
      name: 'smart_routing_callbacks_failed_total',
      help: 'Callbacks given up on after the last retry or refused for good (4xx).',
      registers,
    }),
    failovers: new Counter({
      name: 'dispatcher_failovers_total',
      help: 'Times this replica took the leader lease.',
      registers: replicaRegisters,
    }),
    forwardedTasks: new Counter({
      name: 'dispatcher_forwarded_tasks_total',
      help: 'Tasks accepted by this replica as a standby and handed to the leader through Redis.',
      registers: replicaRegisters,
    }),
  };
}
