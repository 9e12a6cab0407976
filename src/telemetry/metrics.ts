// Prometheus metrics of the scaler, on an injected Registry (no global state).
import { Counter, Gauge, type GaugeConfiguration, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DEMAND_TERMS, type Decision, type DemandTerm } from '../model/types.ts';
import type { Trigger } from '../trigger/types.ts';

const PREFIX = 'keda_inference_scaler_';

export class ScalerMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'method' | 'code'>;
  readonly requestSeconds: Histogram<'method'>;
  readonly openStreams: Gauge<'method'>;
  readonly sourceQueries: Counter<'kind' | 'result'>;
  readonly sourceQuerySeconds: Histogram<'kind'>;
  readonly sourceErrors: Counter<'kind' | 'code'>;
  readonly cachedSources: Gauge;
  private cacheSize: () => number = () => 0;
  private evaluations: () => Iterable<TriggerEvaluation> = () => [];

  constructor(registry = new Registry(), options: { defaultMetrics?: boolean; triggerMetrics?: boolean } = {}) {
    this.registry = registry;
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: PREFIX });
    const registers = [registry];
    this.requests = new Counter({
      name: `${PREFIX}grpc_requests_total`,
      help: 'gRPC requests answered, by method and status code.',
      labelNames: ['method', 'code'],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: `${PREFIX}grpc_request_duration_seconds`,
      help: 'Latency of unary gRPC requests.',
      labelNames: ['method'],
      // From 50 us: a call answered from the cache takes microseconds, one that reads a broker
      // milliseconds; the first buckets tell the two apart.
      buckets: [0.00005, 0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
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
      help: 'Failed source queries, by gRPC status code they map to.',
      labelNames: ['kind', 'code'],
      registers,
    });
    // Per-trigger families are read from the last evaluations when scraped: nothing is written
    // on the hot path, and no series outlives its trigger. TRIGGER_METRICS=false leaves them out
    // (a scrape at 10,000 triggers renders some 60,000 series).
    if (options.triggerMetrics ?? true) {
      const evaluations = () => this.evaluations();
      const perTrigger = (name: string, help: string, values: TriggerValues, extraLabels: string[] = []) =>
        new TriggerGauge({ name: `${PREFIX}${name}`, help, labelNames: [...TRIGGER_LABELS, ...extraLabels], registers, evaluations, values });
      perTrigger('trigger_backlog', 'Backlog (messages) of the trigger at its last evaluation.', (e, put) =>
        put(e.decision.explanation.signals.backlog),
      );
      perTrigger('trigger_desired_replicas', 'Desired replicas (D) answered for the trigger.', (e, put) =>
        put(e.decision.desiredReplicas),
      );
      perTrigger('trigger_active', '1 when the trigger is active (KEDA keeps at least one replica).', (e, put) =>
        put(e.decision.active ? 1 : 0),
      );
      perTrigger(
        'trigger_demand_replicas',
        'Replica demand of each model term before bounds (only the terms computed at the last evaluation).',
        (e, put) => {
          const demands = e.decision.explanation.demands as Partial<Record<DemandTerm, number>>;
          for (const term of DEMAND_TERMS) {
            const value = demands[term];
            if (value !== undefined) put(value, { term });
          }
        },
        ['term'],
      );
      perTrigger(
        'trigger_winning_term',
        'The term that fixed the desired replica count: one series per trigger, value 1, labelled with the winning term.',
        (e, put) => put(1, { term: e.decision.explanation.winner }),
        ['term'],
      );
      perTrigger('trigger_busy_gpus', 'Busy GPU-equivalents seen for the trigger.', (e, put) => {
        const { busyGpus } = e.decision.explanation.signals;
        if (busyGpus !== undefined) put(busyGpus);
      });
      perTrigger('trigger_arrival_rate_per_second', 'Estimated arrival rate (messages per second) for the trigger.', (e, put) => {
        const { arrivalRatePerSecond } = e.decision.explanation.signals;
        if (arrivalRatePerSecond !== undefined) put(arrivalRatePerSecond);
      });
    }
    const cacheSize = () => this.cacheSize();
    this.cachedSources = new Gauge({
      name: `${PREFIX}cached_sources`,
      help: 'Distinct sources (queues, topics, queries) in the read cache: one broker query per source per interval.',
      registers,
      collect() {
        this.set(cacheSize());
      },
    });
  }

  /** Where cachedSources reads the read cache's size at scrape time. */
  observeCacheSize(size: () => number): void {
    this.cacheSize = size;
  }

  /** Where the per-trigger families read the triggers' last evaluations at scrape time. */
  observeTriggers(evaluations: () => Iterable<TriggerEvaluation>): void {
    this.evaluations = evaluations;
  }
}

/** What the per-trigger families show: a trigger and its last decision. */
export interface TriggerEvaluation {
  readonly trigger: Trigger;
  readonly decision: Decision;
}

const TRIGGER_LABELS = ['namespace', 'scaled_object', 'trigger'] as const;

/** Writes one trigger's series of a family: `put(value, extra labels)`. */
type TriggerValues = (evaluation: TriggerEvaluation, put: (value: number, extra?: Record<string, string>) => void) => void;

/**
 * A gauge family whose series are computed from the triggers' last evaluations when scraped,
 * instead of being set on every evaluation: with thousands of evaluations a second and
 * 10,000 triggers, set() would cost a label hash and a retained entry per series.
 */
class TriggerGauge extends Gauge {
  private readonly evaluations: () => Iterable<TriggerEvaluation>;
  private readonly values: TriggerValues;

  constructor(
    options: GaugeConfiguration<string> & {
      evaluations: () => Iterable<TriggerEvaluation>;
      values: TriggerValues;
    },
  ) {
    const { evaluations, values, ...config } = options;
    super(config);
    this.evaluations = evaluations;
    this.values = values;
  }

  override async get(): ReturnType<Gauge['get']> {
    const out: Awaited<ReturnType<Gauge['get']>>['values'] = [];
    for (const evaluation of this.evaluations()) {
      const { trigger } = evaluation;
      // Labels never carry URLs or secrets: the trigger label is the metadata hash from its id.
      const labels = { namespace: trigger.namespace, scaled_object: trigger.name, trigger: trigger.id.slice(trigger.id.lastIndexOf('/') + 1) };
      this.values(evaluation, (value, extra) => out.push({ value, labels: extra === undefined ? labels : { ...labels, ...extra } }));
    }
    // The base object (name, help, type) with no series of its own: this gauge is never set.
    return { ...(await super.get()), values: out };
  }
}
