// Policy (c): this scaler's model through the server's own code path. A real Engine (trigger
// schema, read cache, rate estimation, model) runs on the simulated clock and reads a simulated
// broker through a SourceDriver registered in a SourceRegistry, exactly as the gRPC handlers do:
// IsActive and GetMetrics call engine.evaluate, StreamIsActive re-evaluates every second: the path
// the gRPC handlers take. With `restart`, the scaler's process is replaced at the given moments (a
// rollout, an eviction): a new Engine that knows nothing, or one that reads what the last one
// published to a state store, through the records' JSON codec and schema as Redis holds them.
import { Registry } from 'prom-client';
import { Engine } from '../../src/engine.ts';
import { SourceRegistry } from '../../src/sources/index.ts';
import type { Source, SourceDriver, SourceReading } from '../../src/sources/source.ts';
import { decodeRecord, encodeRecord } from '../../src/state/codec.ts';
import { MemoryStateStore } from '../../src/state/memory.ts';
import { PUBLISH_INTERVAL_MS, STATE_FORMAT, type SharedTriggerState, sharedStateSchema } from '../../src/state/payload.ts';
import { SharedState } from '../../src/state/shared.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import type { RabbitmqSourceConfig } from '../../src/trigger/types.ts';
import type { Fleet } from './fleet.ts';
import { kedaPolicy } from './policies.ts';
import { RECOMMENDED_SCALED_OBJECT, type ScaledObjectSettings, describeScaledObject } from './recommended.ts';
import { MAX_REPLICAS, type Policy } from './simulate.ts';

/**
 * What a source reports of the simulated queue (docs/sources.md): `rabbitmq`, the management API
 * (backlog = waiting + unacknowledged, each apart, the publish and ack counters, consumers);
 * `rabbitmq-amqp`, a passive declare (ready messages and consumers); `sqs`, visible and in-flight
 * messages (no counters, no consumers); `kafka`, consumer-group lag (waiting and in service
 * together), log-end and committed offsets, group members.
 */
export const SIMULATED_SOURCES = {
  rabbitmq: (f: Fleet): SourceReading => ({
    backlog: f.waiting + f.inService,
    waiting: f.waiting,
    inFlight: f.inService,
    arrivedTotal: f.arrived,
    servedTotal: f.served,
    consumers: f.readyCount,
  }),
  'rabbitmq-amqp': (f: Fleet): SourceReading => ({ backlog: f.waiting, waiting: f.waiting, consumers: f.readyCount }),
  sqs: (f: Fleet): SourceReading => ({ backlog: f.waiting + f.inService, waiting: f.waiting, inFlight: f.inService }),
  kafka: (f: Fleet): SourceReading => ({
    backlog: f.waiting + f.inService,
    arrivedTotal: f.arrived,
    servedTotal: f.served,
    consumers: f.readyCount,
  }),
} as const satisfies Readonly<Record<string, (fleet: Fleet) => SourceReading>>;

export type SimulatedSource = keyof typeof SIMULATED_SOURCES;

/** A broker that reports the simulated queue as `source` does (the trigger's metadata stays RabbitMQ's: only the reading differs). */
class SimulatedQueueDriver implements SourceDriver<RabbitmqSourceConfig> {
  readonly kind = 'rabbitmq' as const;
  private readonly fleet: Fleet;
  private readonly source: SimulatedSource;

  constructor(fleet: Fleet, source: SimulatedSource) {
    this.fleet = fleet;
    this.source = source;
  }

  identity(config: RabbitmqSourceConfig): string {
    return `simulated|${config.queueName}`;
  }

  create(config: RabbitmqSourceConfig): Source {
    const { fleet } = this;
    const reading = SIMULATED_SOURCES[this.source];
    return {
      identity: this.identity(config),
      label: `simulated queue "${config.queueName}"`,
      kind: 'rabbitmq',
      read: async (): Promise<SourceReading> => reading(fleet),
    };
  }

  async close(): Promise<void> {}
}

/** The trigger's metadata in the simulator (the defaults, on a simulated RabbitMQ queue). */
const MODEL_METADATA: Readonly<Record<string, string>> = {
  'rabbitmq.host': 'http://simulated:15672',
  'rabbitmq.queueName': 'requests',
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
  /** Replace the scaler's process at these moments (seconds into the trace), with or without a state store. */
  readonly restart?: Restart;
}

interface Restart {
  readonly atS: readonly number[];
  /** true: the new process reads the learned state the last one published (STATE_STORE_URL set). */
  readonly store: boolean;
}

/**
 * A state store that outlives the scaler's processes, holding each record as Redis does: JSON text,
 * read back through the codec and the payload's schema (a record the schema refuses fails the run).
 */
class PersistentStore extends MemoryStateStore<SharedTriggerState> {
  override async publish(key: string, payload: SharedTriggerState, atMs: number) {
    const text = encodeRecord({ format: STATE_FORMAT, scalerVersion: 'bench', writerId: this.writerId, atMs, payload });
    const decoded = decodeRecord(text, STATE_FORMAT, sharedStateSchema);
    if (!decoded.ok) throw new Error(`the state record does not read back: ${decoded.reason}, ${decoded.detail}`);
    return super.publish(key, decoded.record.payload, atMs);
  }
}

export function modelPolicy(
  overrides: Record<string, string> = {},
  { so = RECOMMENDED_SCALED_OBJECT, name = 'model', source = 'rabbitmq', restart }: ModelPolicyOptions = {},
): Policy {
  const metadata = { ...MODEL_METADATA, ...overrides };
  const shown = Object.entries(metadata)
    .filter(([k]) => !k.startsWith('rabbitmq.'))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const restarts =
    restart === undefined
      ? ''
      : `, the scaler restarted at ${restart.atS.join(', ')} s ${restart.store ? 'with a state store' : 'with its state in memory'}`;
  return kedaPolicy(
    name,
    `this scaler (Engine + model), external-push, ${shown}${source === 'rabbitmq' ? '' : `, reading the queue as ${source} reports it`}${restarts}; ${describeScaledObject(so)}`,
    { cooldownSeconds: so.cooldownSeconds, behavior: so.behavior, pollingIntervalSeconds: so.pollingIntervalSeconds },
    (ctx) => {
      const now = () => Math.round(ctx.now() * 1000);
      const registry = new SourceRegistry([new SimulatedQueueDriver(ctx.fleet, source) as SourceDriver]);
      const metrics = new ScalerMetrics(new Registry(), { defaultMetrics: false });
      const store = restart?.store
        ? new PersistentStore({
            writerId: 'bench',
            scalerVersion: 'bench',
            format: STATE_FORMAT,
            leaseMs: 3000,
            recordTtlMs: 30 * 60_000,
            metrics: metrics.stateStore,
            now,
          })
        : undefined;
      // One scaler process: its own Engine (cache, rates, learned state), and its view of the store.
      const start = () => {
        const engine = new Engine({
          registry,
          cacheTtlMs: 1000,
          sourceTimeoutMs: 2000,
          logger: silentLogger(),
          metrics,
          now,
          ...(store && {
            shared: new SharedState(store, { logger: silentLogger(), publishIntervalMs: PUBLISH_INTERVAL_MS, now }),
          }),
        });
        return { engine, trigger: engine.trigger({ name: 'inference', namespace: 'bench', metadata }) };
      };
      let scaler = start();
      for (const atS of restart?.atS ?? []) ctx.at(atS, () => void (scaler = start()));
      const evaluate = () => scaler.engine.evaluate(scaler.trigger);
      const active = async () => (await evaluate()).decision.active;
      return {
        isActive: active,
        metrics: async () => [{ value: (await evaluate()).metricValue, target: 1 }],
        stream: { intervalS: STREAM_INTERVAL_MS / 1000, check: active },
      };
    },
  );
}
