// Prometheus metrics of the scaler, on an injected Registry (no global state).
import { setImmediate } from 'node:timers/promises';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { wholeBacklog } from '../model/signals.ts';
import { DEMAND_TERMS, type Decision, type DemandTerm } from '../model/types.ts';
import type { Trigger } from '../trigger/types.ts';

const PREFIX = 'keda_inference_scaler_';

/**
 * A gauge whose value is read when it is scraped, from the function given to the setter this
 * returns (0 until then): what another module owns (the cache's size, the reads waiting, the
 * leases held) is asked, never pushed.
 */
function readAtScrape(name: string, help: string, registers: Registry[]): (read: () => number) => void {
  let read = () => 0;
  new Gauge({
    name: `${PREFIX}${name}`,
    help,
    registers,
    collect() {
      this.set(read());
    },
  });
  return (source) => {
    read = source;
  };
}

/** What an uncaught error was: a thrown exception, or a rejected promise nobody awaited. */
export const UNCAUGHT_KINDS = ['exception', 'rejection'] as const;
export type UncaughtKind = (typeof UNCAUGHT_KINDS)[number];

export class ScalerMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'method' | 'code'>;
  readonly requestSeconds: Histogram<'method'>;
  readonly openStreams: Gauge<'method'>;
  readonly sourceQueries: Counter<'kind' | 'result'>;
  readonly sourceQuerySeconds: Histogram<'kind'>;
  readonly sourceErrors: Counter<'kind' | 'code'>;
  readonly uncaughtErrors: Counter<'kind'>;
  readonly stateStore: StateStoreMetrics;
  /** Where cached_sources reads the read cache's size at scrape time. */
  readonly observeCacheSize: (size: () => number) => void;
  /** Where source_reads_waiting reads the reads waiting for the event loop at scrape time. */
  readonly observeReadsWaiting: (count: () => number) => void;
  /** Where triggers_retained reads how many forgotten triggers' learned histories are kept, at scrape time. */
  readonly observeRetained: (count: () => number) => void;
  /**
   * With TLS on the gRPC port: the served certificate's expiry and the reloads that failed, read at
   * scrape time (a renewal the scaler cannot take shows before the certificate expires).
   */
  observeTls(tls: { readonly expiresAtMs: number; readonly reloadFailures: number }): void {
    new Gauge({
      name: `${PREFIX}tls_certificate_expiry_timestamp_seconds`,
      help: 'When the certificate the gRPC port serves expires (Unix seconds); a renewed one taken by the reload moves it.',
      registers: [this.registry],
      collect() {
        this.set(tls.expiresAtMs / 1000);
      },
    });
    let counted = 0;
    new Counter({
      name: `${PREFIX}tls_reload_failures_total`,
      help: 'Reloads of TLS_CERT_FILE / TLS_KEY_FILE / TLS_CLIENT_CA_FILE that found them unreadable or inconsistent (the current certificate kept).',
      registers: [this.registry],
      collect() {
        this.inc(tls.reloadFailures - counted);
        counted = tls.reloadFailures;
      },
    });
  }

  private evaluations: () => Iterable<TriggerEvaluation> = () => [];
  private readonly triggerFamilies: readonly TriggerFamily[] = [];

  constructor(registry = new Registry(), options: { defaultMetrics?: boolean; triggerMetrics?: boolean } = {}) {
    this.registry = registry;
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: PREFIX });
    const registers = [registry];
    this.requests = new Counter({
      name: `${PREFIX}grpc_requests_total`,
      help: 'gRPC requests answered, by method and status code (a stream once when opened, and again with INTERNAL for each check that fails with a defect).',
      labelNames: ['method', 'code'],
      registers,
    });
    // At 0 from the start: an alert on increase() sees the first refusals (a series that first
    // appears at 40 has no increase to show).
    for (const method of ['StreamIsActive', 'StreamMetricSpec']) this.requests.inc({ method, code: 'RESOURCE_EXHAUSTED' }, 0);
    this.requestSeconds = new Histogram({
      name: `${PREFIX}grpc_request_duration_seconds`,
      help: 'Latency of unary gRPC requests.',
      labelNames: ['method'],
      // From 50 us: a call answered from the cache takes microseconds, one that reads a broker
      // milliseconds; the first buckets tell the two apart.
      buckets: [0.00005, 0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.uncaughtErrors = new Counter({
      name: `${PREFIX}uncaught_errors_total`,
      help: 'Errors nothing caught (kind: exception, rejection), logged at error with the process kept serving: a defect.',
      labelNames: ['kind'],
      registers,
    });
    for (const kind of UNCAUGHT_KINDS) this.uncaughtErrors.inc({ kind }, 0);
    this.openStreams = new Gauge({
      name: `${PREFIX}grpc_open_streams`,
      help: 'Server streams open now, by method.',
      labelNames: ['method'],
      registers,
    });
    this.sourceQueries = new Counter({
      name: `${PREFIX}source_queries_total`,
      help: 'Queries sent to sources (brokers, Prometheus), cache hits excluded.',
      labelNames: ['kind', 'result'],
      registers,
    });
    this.sourceQuerySeconds = new Histogram({
      name: `${PREFIX}source_query_duration_seconds`,
      help: 'Latency of source queries.',
      labelNames: ['kind'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers,
    });
    this.sourceErrors = new Counter({
      name: `${PREFIX}source_errors_total`,
      help: 'Failed source queries, by gRPC status code they map to; a GPU query without series while its workload runs counts NOT_FOUND once per trigger and reading.',
      labelNames: ['kind', 'code'],
      registers,
    });
    // Per-trigger families are computed from the last evaluations when scraped: nothing is
    // written on the hot path, and no series outlives its trigger. TRIGGER_METRICS=false leaves
    // them out.
    if (options.triggerMetrics ?? true) {
      // They are written in the Prometheus text format, after the registry's families.
      if (registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE) {
        throw new Error(`per-trigger metrics need a registry in the Prometheus text format, not ${registry.contentType}`);
      }
      const family = (name: string, help: string, values: TriggerValues) => new TriggerFamily(`${PREFIX}${name}`, help, values);
      // A figure of the explanation's details, for the triggers whose decision has it.
      const detail = (name: string, help: string, key: string) =>
        family(name, help, (e, put) => {
          const value = e.decision.explanation.details[key];
          if (typeof value === 'number') put(value);
        });
      this.triggerFamilies = [
        // Only for a trigger with a queue: a GPU-only one has no backlog, and a 0 would read as an empty queue.
        family(
          'trigger_backlog',
          'Backlog (messages) of the trigger at its last evaluation (triggers with a queue only).',
          (e, put) => {
            // The whole lag, as the brokers' own tools show it (with what consumers served and have not committed).
            if (e.trigger.sources.some((source) => source.kind !== 'gpu')) put(wholeBacklog(e.decision.explanation.signals));
          },
        ),
        family('trigger_desired_replicas', 'Desired replicas (D) answered for the trigger.', (e, put) =>
          put(e.decision.desiredReplicas),
        ),
        family('trigger_active', '1 when the trigger is active (KEDA keeps at least one replica).', (e, put) =>
          put(e.decision.active ? 1 : 0),
        ),
        family(
          'trigger_demand_replicas',
          'Replica demand of each model term before bounds (only the terms computed at the last evaluation).',
          (e, put) => {
            const demands = e.decision.explanation.demands as Partial<Record<DemandTerm, number>>;
            for (const term of DEMAND_TERMS) {
              const value = demands[term];
              if (value !== undefined) put(value, TERM_LABELS[term]);
            }
          },
        ),
        family(
          'trigger_winning_term',
          'The term that fixed the desired replica count: one series per trigger, value 1, labelled with the winning term.',
          (e, put) => put(1, TERM_LABELS[e.decision.explanation.winner]),
        ),
        family('trigger_busy_gpus', 'Busy GPU-equivalents seen for the trigger.', (e, put) => {
          const { busyGpus } = e.decision.explanation.signals;
          if (busyGpus !== undefined) put(busyGpus);
        }),
        family('trigger_arrival_rate_per_second', 'Estimated arrival rate (messages per second) for the trigger.', (e, put) => {
          const { arrivalRatePerSecond } = e.decision.explanation.signals;
          if (arrivalRatePerSecond !== undefined) put(arrivalRatePerSecond);
        }),
        detail(
          'trigger_cold_start_seconds',
          'Cold start the model plans with (seconds from a replica asked for to serving): learned from the consumers, or configured.',
          'coldStartSeconds',
        ),
        // A hint, for the triggers that have one: an alert or a table over many triggers finds them.
        detail(
          'trigger_consumers_per_replica_suggested',
          "consumersPerReplica the brokers' consumers suggest, where they count 1.75 times the replicas asked or more for ten minutes (model/consumerRatio.ts).",
          'consumersPerReplicaSuggested',
        ),
      ];
    }
    this.stateStore = new StateStoreMetrics(registry);
    this.observeCacheSize = readAtScrape(
      'cached_sources',
      'Distinct sources (queues, topics, queries) in the read cache: one broker query per source per interval.',
      registers,
    );
    this.observeReadsWaiting = readAtScrape(
      'source_reads_waiting',
      'Source reads waiting for the event loop to have room (LOOP_TARGET_UTILIZATION): a burst of first-seen triggers.',
      registers,
    );
    this.observeRetained = readAtScrape(
      'triggers_retained',
      'Triggers no one asked about for 30 minutes (a paused or deleted ScaledObject) whose learned history this replica keeps for STATE_RETENTION_MS, at most 2,000.',
      registers,
    );
  }

  /**
   * The exposition text of every family, in chunks of some 64 KB: the registry's families, then
   * the per-trigger families. Serve this (the HTTP server streams it with backpressure), not
   * `registry.metrics()`, which holds no per-trigger family.
   *
   * The per-trigger families are written here, not by prom-client's renderer, which holds every
   * series' objects and the whole text until the end: each trigger's labels are formatted once, a
   * chunk at a time, and the event loop gets a turn every thousand triggers. Figures:
   * docs/performance.md and `npm run bench:metrics`.
   */
  async *exposition(): AsyncGenerator<string, void, undefined> {
    yield await this.registry.metrics();
    if (this.triggerFamilies.length === 0) return;
    const evaluations: TriggerEvaluation[] = [];
    const labels: string[] = [];
    for (const evaluation of this.evaluations()) {
      const { trigger } = evaluation;
      evaluations.push(evaluation);
      // Labels never carry URLs or secrets: the trigger label is the metadata hash from its id.
      const hash = trigger.id.slice(trigger.id.lastIndexOf('/') + 1);
      labels.push(
        `namespace="${escapeLabel(trigger.namespace)}",scaled_object="${escapeLabel(trigger.name)}",trigger="${escapeLabel(hash)}"`,
      );
    }
    let chunk = '';
    for (const family of this.triggerFamilies) {
      chunk += family.header;
      let current = '';
      const put = (value: number, extra = ''): void => {
        chunk += `${family.name}{${current}${extra}} ${formatValue(value)}\n`;
      };
      for (let i = 0; i < evaluations.length; i++) {
        if (i % YIELD_EVERY === YIELD_EVERY - 1) await setImmediate();
        current = labels[i]!;
        family.values(evaluations[i]!, put);
        if (chunk.length >= CHUNK_CHARS) {
          yield chunk;
          chunk = '';
        }
      }
    }
    if (chunk !== '') yield chunk;
  }

  /** The whole exposition text at once (tests, tools); the HTTP server streams `exposition()`. */
  async render(): Promise<string> {
    let text = '';
    for await (const chunk of this.exposition()) text += chunk;
    return text;
  }

  /** Where the per-trigger families read the triggers' last evaluations at scrape time. */
  observeTriggers(evaluations: () => Iterable<TriggerEvaluation>): void {
    this.evaluations = evaluations;
  }
}

/**
 * The state store's metrics (src/state). No label carries a trigger or a key: their number stays
 * fixed however many triggers there are.
 */
export class StateStoreMetrics {
  readonly up: Gauge;
  readonly errors: Counter<'op'>;
  readonly recordsRejected: Counter<'reason'>;
  readonly clockOffset: Gauge;
  /** Where state_leases_held reads the number of leases held at scrape time. */
  readonly observeLeases: (count: () => number) => void;
  /** Where state_triggers reads how many triggers hold each role at scrape time. */
  readonly observeRoles: (count: () => Readonly<Record<'writer' | 'follower' | 'local', number>>) => void;

  constructor(registry: Registry) {
    const registers = [registry];
    this.up = new Gauge({
      name: `${PREFIX}state_store_up`,
      help: 'Whether the state store answers (1) or not (0: each replica evaluates on its own state). Always 1 for the in-memory store.',
      registers,
    });
    this.errors = new Counter({
      name: `${PREFIX}state_store_errors_total`,
      help: 'State store operations that failed (timeout, refused, not connected), by operation: connect, lease, publish, read, subscribe.',
      labelNames: ['op'],
      registers,
    });
    this.recordsRejected = new Counter({
      name: `${PREFIX}state_records_rejected_total`,
      help: "State records not used: unreadable, envelope, format (another scaler version), payload (fails validation), clock (written more than a minute ahead of this replica's clock), too-large (not published), oversized (over twice the bound, not read), lease (another type under a lease key).",
      labelNames: ['reason'],
      registers,
    });
    this.clockOffset = new Gauge({
      name: `${PREFIX}state_store_clock_offset_seconds`,
      help: "The state store's clock less this replica's, read every minute (NaN until read: the in-memory store, or a store that refuses TIME). Replicas whose figures differ by a second or more read each other's records moved to their own clocks; keep the nodes' clocks synchronized all the same.",
      registers,
    });
    this.clockOffset.set(Number.NaN);
    this.observeLeases = readAtScrape(
      'state_leases_held',
      'Keys (triggers) whose lease this replica holds: it is their writer.',
      registers,
    );
    let roles = () => ({ writer: 0, follower: 0, local: 0 });
    new Gauge({
      name: `${PREFIX}state_triggers`,
      help: "Triggers this replica shares through the state store, by role: writer (holds the lease, publishes), follower (decides from the writer's record), local (the store does not answer for it: decides from its own state).",
      labelNames: ['role'],
      registers,
      collect() {
        for (const [role, count] of Object.entries(roles())) this.set({ role }, count);
      },
    });
    this.observeRoles = (source) => {
      roles = source;
    };
  }
}

/** What the per-trigger families show: a trigger and its last decision. */
export interface TriggerEvaluation {
  readonly trigger: Trigger;
  readonly decision: Decision;
}

/** Writes one trigger's series of a family: `put(value, extra labels as ',key="value"')`. */
type TriggerValues = (evaluation: TriggerEvaluation, put: (value: number, extraLabels?: string) => void) => void;

/**
 * A gauge family whose series are computed from the triggers' last evaluations when scraped,
 * instead of being set on every evaluation: with thousands of evaluations a second and 10,000
 * triggers, a prom-client set() would cost a label hash and a retained entry per series.
 */
class TriggerFamily {
  readonly name: string;
  readonly header: string;
  readonly values: TriggerValues;

  constructor(name: string, help: string, values: TriggerValues) {
    this.name = name;
    this.values = values;
    this.header = `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} gauge\n`;
  }
}

/** Triggers rendered between two turns of the event loop during a scrape (a few milliseconds). */
const YIELD_EVERY = 1000;
/** Characters per chunk of the streamed exposition text. */
const CHUNK_CHARS = 64 * 1024;

const TERM_LABELS = Object.fromEntries(DEMAND_TERMS.map((term) => [term, `,term="${term}"`])) as Record<DemandTerm, string>;

/** A label value in the text format: backslash, double quote and newline escaped. */
function escapeLabel(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : value;
}

/** A sample value in the text format (NaN and the infinities as Prometheus writes them). */
function formatValue(value: number): string {
  if (Number.isFinite(value)) return `${value}`;
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? '+Inf' : '-Inf';
}
