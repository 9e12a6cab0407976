// Policy (c): this scaler's model through the server's own code path. A real Engine (trigger
// schema, read cache, rate estimation, model) runs on the simulated clock and reads a simulated
// broker through a SourceDriver registered in a SourceRegistry, exactly as the gRPC handlers do:
// IsActive and GetMetrics call engine.evaluate, StreamIsActive re-evaluates every second: the path
// the gRPC handlers take. With `deployment`, as several scaler processes behind KEDA's round robin
// (each call to the next; StreamIsActive on the first), replaced at given moments (a rollout, one
// process after another), with their state in memory or in a store they share (test/support/stateCluster.ts).
import { Registry } from 'prom-client';
import { Engine } from '../../src/engine.ts';
import { SourceRegistry } from '../../src/sources/index.ts';
import type { Source, SourceDriver, SourceReading } from '../../src/sources/source.ts';
import { DEFAULT_STATE_RETENTION_MS } from '../../src/config.ts';
import { PUBLISH_INTERVAL_MS } from '../../src/state/payload.ts';
import { SharedState } from '../../src/state/shared.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import type { GpuSourceConfig, KafkaSourceConfig, RabbitmqSourceConfig } from '../../src/trigger/types.ts';
import { type Fleet, SIMULATED_GPU, type SimulatedGpu } from './fleet.ts';
import { type KedaBacklog, type Pause, kedaPolicy } from './policies.ts';
import { RECOMMENDED_SCALED_OBJECT, type ScaledObjectSettings, describeScaledObject } from './recommended.ts';
import { MAX_REPLICAS, type Policy, type SimContext } from './simulate.ts';
import { StateCluster } from '../../test/support/stateCluster.ts';
import { type TimelineEntry, timelineEntry } from './timeline.ts';

/** The management API's figures of the simulated queue, as they are that second. */
const SIMULATED_RABBITMQ = (f: Fleet): SourceReading => ({
  backlog: f.waiting + f.unacked,
  waiting: f.waiting,
  inFlight: f.unacked,
  arrivedTotal: f.arrived,
  orderedQueues: 1,
  servedTotal: f.acked,
  consumers: f.readyCount,
});

/** The Java client's and kafka-python's default auto.commit.interval.ms, in seconds. */
const KAFKA_COMMIT_INTERVAL_S = 5;

/** RabbitMQ's default collect_statistics_interval: how often the management API's figures move. */
const RABBITMQ_STATISTICS_INTERVAL_S = 5;

/**
 * What a source reports of the simulated queue (docs/sources.md): `rabbitmq`, the management API
 * (backlog = waiting + unacknowledged, each apart, the publish and ack counters, consumers);
 * `rabbitmq-amqp`, a passive declare (ready messages and consumers); `sqs`, visible and in-flight
 * messages (no counters, no consumers); `kafka`, consumer-group lag (waiting and in service
 * together), log-end and committed offsets, group members.
 */
export const SIMULATED_SOURCES = {
  rabbitmq: SIMULATED_RABBITMQ,
  // The management API as a broker serves it: every figure the statistics emitted last, every
  // collect_statistics_interval (5 s by default) from a phase of the run's own (SimulatedQueueDriver).
  'rabbitmq-stats': SIMULATED_RABBITMQ,
  'rabbitmq-amqp': (f: Fleet): SourceReading => ({ backlog: f.waiting, waiting: f.waiting, consumers: f.readyCount }),
  sqs: (f: Fleet): SourceReading => ({ backlog: f.waiting + f.unacked, waiting: f.waiting, inFlight: f.unacked }),
  kafka: (f: Fleet): SourceReading => ({
    backlog: f.waiting + f.unacked,
    // The simulated queue is one: a topic of one partition.
    arrivedTotal: f.arrived,
    orderedQueues: 1,
    servedTotal: f.served,
    consumers: f.readyCount,
  }),
  // Kafka as consumers leave it that commit what they served every 5 s (the Java client's and
  // kafka-python's auto.commit.interval.ms, with requests served within it: docs/sources.md,
  // "Commits"), each from when it joined: what a consumer served since its last commit counts in
  // the lag (SimulatedQueueDriver). KEDA's triggers read this lag too (kedaBacklogFor).
  'kafka-commits': (f: Fleet): SourceReading => ({
    backlog: f.arrived - f.committed,
    arrivedTotal: f.arrived,
    orderedQueues: 1,
    servedTotal: f.committed,
    consumers: f.readyCount,
  }),
} as const satisfies Readonly<Record<string, (fleet: Fleet) => SourceReading>>;

export type SimulatedSource = keyof typeof SIMULATED_SOURCES;

/** Whether the simulated source is Kafka: the model's trigger is then a Kafka trigger (QUEUE_METADATA), else RabbitMQ's. */
const isKafka = (source: SimulatedSource): boolean => source.startsWith('kafka');

/**
 * What KEDA's own trigger reads as the backlog where the model reads `source`: Kafka's trigger the
 * same lag (committed offsets: with kafka-commits, the served and uncommitted messages too); the
 * queue triggers waiting and in flight as they are (undefined: policies.ts's own).
 */
export function kedaBacklogFor(source: SimulatedSource = 'rabbitmq'): KedaBacklog | undefined {
  const reading = SIMULATED_SOURCES[source];
  return isKafka(source) ? (fleet) => reading(fleet).backlog : undefined;
}

/** A broker that reports the simulated queue as `source` does (the trigger's metadata is RabbitMQ's, or Kafka's for Kafka: only the reading differs). */
export class SimulatedQueueDriver implements SourceDriver<RabbitmqSourceConfig | KafkaSourceConfig> {
  readonly kind: 'rabbitmq' | 'kafka';
  private readonly fleet: Fleet;
  private readonly source: SimulatedSource;
  /** rabbitmq-stats: the figures of the last statistics emission. */
  private emitted: SourceReading | undefined;

  /** Consumers each ready replica opens (a channel per thread): the broker counts them all. */
  private readonly consumersPerReplica: number;

  constructor(ctx: SimContext, source: SimulatedSource, consumersPerReplica = 1) {
    this.fleet = ctx.fleet;
    this.source = source;
    this.kind = isKafka(source) ? 'kafka' : 'rabbitmq';
    this.consumersPerReplica = consumersPerReplica;
    if (source === 'kafka-commits') {
      let sinceS = 0;
      ctx.every(1, 1, () => {
        ctx.fleet.commit(sinceS, ctx.now(), KAFKA_COMMIT_INTERVAL_S);
        sinceS = ctx.now();
      });
    }
    if (source === 'rabbitmq-stats') {
      this.emitted = SIMULATED_RABBITMQ(ctx.fleet);
      // A phase of the run's own, from its seed: the broker's timer is not the trace's. With each
      // emission, the publish and ack rates over the interval before it (publish_details.rate,
      // ack_details.rate), which the source reports and the model takes for λ and μ.
      const phaseS = (ctx.seed * 0.618) % RABBITMQ_STATISTICS_INTERVAL_S;
      ctx.every(phaseS, RABBITMQ_STATISTICS_INTERVAL_S, () => {
        const last = this.emitted!;
        const next = SIMULATED_RABBITMQ(ctx.fleet);
        const per = (now: number | undefined, then: number | undefined) =>
          ((now ?? 0) - (then ?? 0)) / RABBITMQ_STATISTICS_INTERVAL_S;
        this.emitted = {
          ...next,
          arrivalRatePerSecond: per(next.arrivedTotal, last.arrivedTotal),
          serviceRatePerSecond: per(next.servedTotal, last.servedTotal),
        };
      });
    }
  }

  identity(): string {
    return `simulated|${this.kind}`;
  }

  create(): Source {
    const { fleet } = this;
    const reading = SIMULATED_SOURCES[this.source];
    return {
      identity: this.identity(),
      label: `simulated ${this.kind} queue`,
      kind: this.kind,
      read: async (): Promise<SourceReading> => {
        const r = this.emitted ?? reading(fleet);
        return this.consumersPerReplica === 1 || r.consumers === undefined
          ? r
          : { ...r, consumers: r.consumers * this.consumersPerReplica };
      },
    };
  }

  async closeIdle(): Promise<void> {}

  async close(): Promise<void> {}
}

/** Prometheus' scrape of the exporter (as keda-queue-gpu's, policies.ts). */
const GPU_SCRAPE_INTERVAL_S = 15;

/** A GPU source reading the simulated fleet's busy GPU-equivalents as Prometheus last scraped them. */
class SimulatedGpuDriver implements SourceDriver<GpuSourceConfig> {
  readonly kind = 'gpu' as const;
  private scraped = 0;

  constructor(ctx: SimContext, gpu: SimulatedGpu) {
    ctx.every(0, GPU_SCRAPE_INTERVAL_S, () => {
      this.scraped = SIMULATED_GPU[gpu](ctx.fleet);
    });
  }

  identity(): string {
    return 'simulated|gpus';
  }

  create(): Source {
    return {
      identity: this.identity(),
      label: 'simulated GPUs',
      kind: 'gpu',
      read: async (): Promise<SourceReading> => ({ backlog: 0, busyGpus: this.scraped }),
    };
  }

  async closeIdle(): Promise<void> {}

  async close(): Promise<void> {}
}

/** The GPU keys of a trigger that blends the queue with the simulated GPUs (the default query's target and activation). */
const GPU_METADATA: Readonly<Record<string, string>> = {
  'gpu.serverAddress': 'http://simulated-prometheus:9090',
  'gpu.query': 'sum(DCGM_FI_DEV_GPU_UTIL) / 100',
};

/** The simulated queue's keys in the trigger, RabbitMQ's or Kafka's (isKafka). */
const QUEUE_METADATA = {
  rabbitmq: { 'rabbitmq.host': 'http://simulated:15672', 'rabbitmq.queueName': 'requests' },
  kafka: { 'kafka.bootstrapServers': 'simulated:9092', 'kafka.consumerGroup': 'workers', 'kafka.topic': 'requests' },
} as const;

/** The trigger's metadata in the simulator (the defaults, on the simulated queue: QUEUE_METADATA). */
const MODEL_METADATA: Readonly<Record<string, string>> = {
  drainSeconds: '60',
  keepWarm: 'auto',
  maxReplicas: String(MAX_REPLICAS),
};

/** external-push: KEDA's stream; the server re-evaluates every second. */
const STREAM_INTERVAL_MS = 1000;

export interface ModelPolicyOptions {
  /** The ScaledObject's KEDA and HPA settings (the recommended ones by default). */
  readonly so?: ScaledObjectSettings;
  readonly name?: string;
  /** What the source reports of the queue (the management API's RabbitMQ by default). */
  readonly source?: SimulatedSource;
  /** Several scaler processes, restarted at moments, with or without a store (one process, never restarted, by default). */
  readonly deployment?: Deployment;
  /** Told what the model answered at each HPA sync (--timeline). */
  readonly onSync?: (entry: TimelineEntry) => void;
  /** A GPU source beside the queue, reading the simulated GPUs so (none by default). */
  readonly gpu?: SimulatedGpu;
  /** Consumers each replica opens on the queue, as the broker counts them (1 by default). */
  readonly consumersPerReplica?: number;
}

/** What the model's trigger reads of the simulated fleet: its queue as a source reports it, and the GPUs. */
export type ModelReads = Pick<ModelPolicyOptions, 'source' | 'gpu' | 'consumersPerReplica'>;

export interface Deployment {
  /** Scaler processes behind KEDA's round robin. */
  readonly replicas: number;
  /** Moments (seconds into the trace) a rollout replaces every process, one after another. */
  readonly restartAtS: readonly number[];
  /**
   * Moments (seconds into the trace) the ScaledObject's trigger is edited: KEDA sends every call
   * after it with the new metadata (EDITED_SETTING changed, which by itself changes next to nothing).
   */
  readonly editAtS?: readonly number[];
  /** The ScaledObject paused (KEDA asks nothing, the workload keeps its replicas) at these moments. */
  readonly pauseAtS?: readonly Pause[];
  /** How long each process keeps what a trigger no one asks about learned (STATE_RETENTION_MS; its default when absent). */
  readonly retentionS?: number;
  /** true: they share a state store (STATE_STORE_URL set); false: each keeps its state in memory. */
  readonly store: boolean;
}

/** A deployment whether or not it shares a store (the two are run side by side). */
export type Deployed = Omit<Deployment, 'store'>;

/**
 * What an edit changes: the prior of a cold start that every run has learned long before, so that
 * what an edit costs is what the scaler forgets with it (docs/deploy.md). Every other edit undoes
 * the one before: the trigger's metadata as it was, the trigger the scaler knew first.
 */
const EDITED_SETTING = ['coldStartPriorSeconds', '61'] as const;

/** A rollout replaces the processes this far apart (a pod at a time). */
const ROLLOUT_STEP_S = 15;
/** How often a process renews its leases and re-reads the records it follows (SharedState.start: lease/3). */
const LEASE_ROUND_S = 1;

export function modelPolicy(
  overrides: Record<string, string> = {},
  {
    so = RECOMMENDED_SCALED_OBJECT,
    name = 'model',
    source = 'rabbitmq',
    deployment,
    onSync,
    gpu,
    consumersPerReplica = 1,
  }: ModelPolicyOptions = {},
): Policy {
  const queue = QUEUE_METADATA[isKafka(source) ? 'kafka' : 'rabbitmq'];
  const metadata: Readonly<Record<string, string>> = {
    ...queue,
    ...MODEL_METADATA,
    ...(gpu !== undefined && GPU_METADATA),
    ...overrides,
  };
  const shown = Object.entries(metadata)
    .filter(([k]) => !Object.hasOwn(queue, k))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return kedaPolicy(
    name,
    `this scaler (Engine + model), external-push, ${shown}${source === 'rabbitmq' ? '' : `, reading the queue as ${source} reports it`}${gpu === undefined ? '' : `, with the GPUs read as ${gpu} (scraped every ${GPU_SCRAPE_INTERVAL_S} s)`}${consumersPerReplica === 1 ? '' : `, ${consumersPerReplica} consumers a replica on the queue`}${deployment === undefined ? '' : `, ${describeDeployment(deployment)}`}; ${describeScaledObject(so)}`,
    {
      cooldownSeconds: so.cooldownSeconds,
      behavior: so.behavior,
      pollingIntervalSeconds: so.pollingIntervalSeconds,
      ...(deployment?.pauseAtS !== undefined && { pauses: deployment.pauseAtS }),
    },
    (ctx) => {
      const { replicas = 1, restartAtS = [], editAtS = [], store = false, retentionS } = deployment ?? {};
      const retentionMs = retentionS === undefined ? DEFAULT_STATE_RETENTION_MS : retentionS * 1000;
      const now = () => Math.round(ctx.now() * 1000);
      const registry = new SourceRegistry([
        new SimulatedQueueDriver(ctx, source, consumersPerReplica) as SourceDriver,
        ...(gpu !== undefined ? [new SimulatedGpuDriver(ctx, gpu) as SourceDriver] : []),
      ]);
      const metrics = new ScalerMetrics(new Registry(), { defaultMetrics: false });
      const cluster = store ? new StateCluster(now, undefined, retentionMs) : undefined;
      let started = 0;
      // One scaler process: its own Engine (cache, rates, learned state), and its client of the store.
      const start = () => {
        const shared =
          cluster &&
          new SharedState(cluster.client(`scaler-${started++}`), {
            logger: silentLogger(),
            publishIntervalMs: PUBLISH_INTERVAL_MS,
            now,
          });
        const engine = new Engine({
          registry,
          cacheTtlMs: 1000,
          sourceTimeoutMs: 2000,
          logger: silentLogger(),
          metrics,
          now,
          retentionMs,
          ...(shared && { shared }),
        });
        return { engine, shared, trigger: triggerOf(engine) };
      };
      // The trigger's metadata as KEDA sends it now (editAtS changes it).
      let edited = metadata;
      const triggerOf = (engine: Engine) => engine.trigger({ name: 'inference', namespace: 'bench', metadata: edited });
      const processes = Array.from({ length: replicas }, start);
      for (const atS of restartAtS) {
        processes.forEach((_, i) =>
          ctx.at(atS + i * ROLLOUT_STEP_S, async () => {
            // SIGTERM: the old process gives its leases up, and the new one takes its place.
            await processes[i]!.shared?.close();
            processes[i] = start();
          }),
        );
      }
      editAtS.forEach((atS, i) =>
        ctx.at(atS, () => {
          const [key, value] = EDITED_SETTING;
          edited = i % 2 === 0 ? { ...metadata, [key]: value } : metadata;
          for (const p of processes) p.trigger = triggerOf(p.engine);
        }),
      );
      if (cluster !== undefined)
        ctx.every(LEASE_ROUND_S, LEASE_ROUND_S, async () => {
          await Promise.all(processes.flatMap((p) => (p.shared === undefined ? [] : [p.shared.refresh(true)])));
        });
      // KEDA's round robin: each call to the next process. The stream is one call: it stays with the first.
      let calls = 0;
      const next = () => processes[calls++ % replicas]!;
      const evaluate = (p: (typeof processes)[number]) => p.engine.evaluate(p.trigger);
      return {
        isActive: async () => (await evaluate(next())).decision.active,
        metrics: async () => {
          const evaluation = await evaluate(next());
          onSync?.(timelineEntry(ctx.now(), ctx.fleet, evaluation));
          return [{ value: evaluation.metricValue, target: 1 }];
        },
        stream: { intervalS: STREAM_INTERVAL_MS / 1000, check: async () => (await evaluate(processes[0]!)).decision.active },
      };
    },
  );
}

/** The deployment in words; without `store`, without the state's place. */
export function describeDeployment({
  replicas,
  restartAtS,
  editAtS = [],
  pauseAtS = [],
  retentionS,
  store,
}: Deployed & { store?: boolean }): string {
  const parts = [
    ...(replicas > 1 ? [`${replicas} scaler replicas behind round robin`] : []),
    ...(restartAtS.length > 0 ? [`${replicas > 1 ? 'rolled out' : 'the scaler restarted'} at ${restartAtS.join(', ')} s`] : []),
    ...(editAtS.length > 0
      ? [
          `the trigger's ${EDITED_SETTING[0]} edited at ${editAtS.join(', ')} s${editAtS.length > 1 ? ', each edit undoing the one before' : ''}`,
        ]
      : []),
    ...(pauseAtS.length > 0
      ? [`the ScaledObject paused at ${pauseAtS.map(({ atS, forS }) => `${atS} s for ${forS} s`).join(', ')}`]
      : []),
    ...(retentionS !== undefined ? [`what a trigger learned kept ${retentionS} s after it was last asked about`] : []),
  ];
  return `${parts.join(', ')}${store === undefined ? '' : store ? ' with a state store' : ' with the state in memory'}`;
}
