// Prometheus metrics of the scaler, on an injected Registry (no global state).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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
  readonly triggerBacklog: Gauge<'namespace' | 'scaled_object' | 'trigger'>;
  readonly triggerDesiredReplicas: Gauge<'namespace' | 'scaled_object' | 'trigger'>;
  readonly triggerActive: Gauge<'namespace' | 'scaled_object' | 'trigger'>;
  readonly triggerDemand: Gauge<'namespace' | 'scaled_object' | 'trigger' | 'term'>;
  readonly triggerWinner: Gauge<'namespace' | 'scaled_object' | 'trigger' | 'term'>;
  readonly triggerBusyGpus: Gauge<'namespace' | 'scaled_object' | 'trigger'>;
  readonly triggerArrivalRate: Gauge<'namespace' | 'scaled_object' | 'trigger'>;
  readonly cachedSources: Gauge;
  private cacheSize: () => number = () => 0;
  private readonly triggerSeries = new Map<string, TriggerSeries>();

  constructor(registry = new Registry(), options: { defaultMetrics?: boolean } = {}) {
    this.registry = registry;
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: PREFIX });
    const registers = [registry];
    const triggerLabels = ['namespace', 'scaled_object', 'trigger'] as const;
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
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
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
    this.triggerBacklog = new Gauge({
      name: `${PREFIX}trigger_backlog`,
      help: 'Backlog (messages) of the trigger at its last evaluation.',
      labelNames: triggerLabels,
      registers,
    });
    this.triggerDesiredReplicas = new Gauge({
      name: `${PREFIX}trigger_desired_replicas`,
      help: 'Desired replicas (D) answered for the trigger.',
      labelNames: triggerLabels,
      registers,
    });
    this.triggerActive = new Gauge({
      name: `${PREFIX}trigger_active`,
      help: '1 when the trigger is active (KEDA keeps at least one replica).',
      labelNames: triggerLabels,
      registers,
    });
    this.triggerDemand = new Gauge({
      name: `${PREFIX}trigger_demand_replicas`,
      help: 'Replica demand of each model term before bounds (only the terms computed at the last evaluation).',
      labelNames: [...triggerLabels, 'term'],
      registers,
    });
    this.triggerWinner = new Gauge({
      name: `${PREFIX}trigger_winning_term`,
      help: 'The term that fixed the desired replica count: one series per trigger, value 1, labelled with the winning term.',
      labelNames: [...triggerLabels, 'term'],
      registers,
    });
    this.triggerBusyGpus = new Gauge({
      name: `${PREFIX}trigger_busy_gpus`,
      help: 'Busy GPU-equivalents seen for the trigger.',
      labelNames: triggerLabels,
      registers,
    });
    this.triggerArrivalRate = new Gauge({
      name: `${PREFIX}trigger_arrival_rate_per_second`,
      help: 'Estimated arrival rate (messages per second) for the trigger.',
      labelNames: triggerLabels,
      registers,
    });
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

  /**
   * Exports the decision as the trigger's gauges. Called on every evaluation (thousands a
   * second), so the label objects are made once per trigger and a series is written only when
   * its value changed: prom-client hashes the labels and allocates an entry on every set.
   */
  recordDecision(trigger: Trigger, decision: Decision): void {
    let series = this.triggerSeries.get(trigger.id);
    if (series === undefined) {
      series = new TriggerSeries(triggerLabels(trigger));
      this.triggerSeries.set(trigger.id, series);
    }
    const { signals, demands, winner } = decision.explanation;
    series.set(this.triggerBacklog, SLOT_BACKLOG, series.labels, signals.backlog);
    series.set(this.triggerDesiredReplicas, SLOT_DESIRED, series.labels, decision.desiredReplicas);
    series.set(this.triggerActive, SLOT_ACTIVE, series.labels, decision.active ? 1 : 0);
    if (signals.busyGpus !== undefined) series.set(this.triggerBusyGpus, SLOT_BUSY_GPUS, series.labels, signals.busyGpus);
    if (signals.arrivalRatePerSecond !== undefined) series.set(this.triggerArrivalRate, SLOT_ARRIVAL, series.labels, signals.arrivalRatePerSecond);
    // Demand: one series per term the model computed for this decision; a term that drops out
    // (hold, prewarm come and go) loses its series rather than showing a stale value.
    DEMAND_TERMS.forEach((term, i) => {
      const value = (demands as Partial<Record<DemandTerm, number>>)[term];
      if (value !== undefined) series.set(this.triggerDemand, SLOT_DEMAND + i, series.termLabels(i), value);
      else if (series.written(SLOT_DEMAND + i)) series.remove(this.triggerDemand, SLOT_DEMAND + i, series.termLabels(i));
    });
    // Winner: an info-style gauge, one series per trigger (the current winner, value 1).
    if (series.winner !== winner) {
      if (series.winner !== undefined) this.triggerWinner.remove(series.termLabels(DEMAND_TERMS.indexOf(series.winner)));
      this.triggerWinner.set(series.termLabels(DEMAND_TERMS.indexOf(winner)), 1);
      series.winner = winner;
    }
  }

  /** Drops the series of a trigger nobody asks about any more. */
  forgetTrigger(trigger: Trigger): void {
    this.triggerSeries.delete(trigger.id);
    const labels = triggerLabels(trigger);
    for (const gauge of [this.triggerBacklog, this.triggerDesiredReplicas, this.triggerActive, this.triggerBusyGpus, this.triggerArrivalRate]) {
      gauge.remove(labels);
    }
    for (const term of DEMAND_TERMS) this.triggerDemand.remove({ ...labels, term });
    for (const term of DEMAND_TERMS) this.triggerWinner.remove({ ...labels, term });
  }
}

type TriggerLabels = ReturnType<typeof triggerLabels>;

// Slots of TriggerSeries.values: the plain gauges, then one per demand term for the demand gauge.
const SLOT_BACKLOG = 0;
const SLOT_DESIRED = 1;
const SLOT_ACTIVE = 2;
const SLOT_BUSY_GPUS = 3;
const SLOT_ARRIVAL = 4;
const SLOT_DEMAND = 5;

/**
 * One trigger's label objects (shared by its series) and the last value written to each series,
 * kept small: with 10,000 triggers this is per-trigger memory.
 */
class TriggerSeries {
  readonly labels: TriggerLabels;
  private readonly byTerm: (TriggerLabels & { term: string })[] = [];
  /** Last value written per slot; a hole (undefined) for a series not written yet. */
  private readonly values: (number | undefined)[] = [];
  /** The term whose trigger_winning_term series exists. */
  winner: DemandTerm | undefined;

  constructor(labels: TriggerLabels) {
    this.labels = labels;
  }

  /** Label set of one term, made on first use and shared by the demand and winner series. */
  termLabels(i: number): TriggerLabels & { term: string } {
    return (this.byTerm[i] ??= { ...this.labels, term: DEMAND_TERMS[i]! });
  }

  /** gauge.set unless this series already holds `value`. */
  set<L extends string>(gauge: Gauge<L>, slot: number, labels: Partial<Record<L, string>>, value: number): void {
    if (Object.is(this.values[slot], value)) return;
    gauge.set(labels, value);
    this.values[slot] = value;
  }

  written(slot: number): boolean {
    return this.values[slot] !== undefined;
  }

  remove<L extends string>(gauge: Gauge<L>, slot: number, labels: Partial<Record<L, string>>): void {
    gauge.remove(labels);
    this.values[slot] = undefined;
  }
}

/** Labels never carry URLs or secrets: the trigger label is the metadata hash from its id. */
function triggerLabels(trigger: Trigger) {
  return {
    namespace: trigger.namespace,
    scaled_object: trigger.name,
    trigger: trigger.id.slice(trigger.id.lastIndexOf('/') + 1),
  };
}
