// Policy (c): this scaler's model through the server's own code path. A real Engine (trigger
// schema, read cache, rate estimation, model) runs on the simulated clock and reads a simulated
// broker through a SourceDriver registered in a SourceRegistry, exactly as the gRPC handlers do:
// IsActive and GetMetrics call engine.evaluate, StreamIsActive re-evaluates every second: the path
// the gRPC handlers take.
import { Registry } from 'prom-client';
import { Engine } from '../../src/engine.ts';
import type { TriggerRef } from '../../src/trigger/types.ts';
import { SourceRegistry } from '../../src/sources/index.ts';
import type { Source, SourceDriver, SourceReading } from '../../src/sources/source.ts';
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
}

export function modelPolicy(
  overrides: Record<string, string> = {},
  { so = RECOMMENDED_SCALED_OBJECT, name = 'model', source = 'rabbitmq' }: ModelPolicyOptions = {},
): Policy {
  const metadata = { ...MODEL_METADATA, ...overrides };
  const shown = Object.entries(metadata)
    .filter(([k]) => !k.startsWith('rabbitmq.'))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return kedaPolicy(
    name,
    `this scaler (Engine + model), external-push, ${shown}${source === 'rabbitmq' ? '' : `, reading the queue as ${source} reports it`}; ${describeScaledObject(so)}`,
    { cooldownSeconds: so.cooldownSeconds, behavior: so.behavior, pollingIntervalSeconds: so.pollingIntervalSeconds },
    (ctx) => {
      const engine = new Engine({
        registry: new SourceRegistry([new SimulatedQueueDriver(ctx.fleet, source) as SourceDriver]),
        cacheTtlMs: 1000,
        sourceTimeoutMs: 2000,
        logger: silentLogger(),
        metrics: new ScalerMetrics(new Registry(), { defaultMetrics: false }),
        now: () => Math.round(ctx.now() * 1000),
      });
      const ref: TriggerRef = { name: 'inference', namespace: 'bench', metadata };
      const trigger = engine.trigger(ref);
      const active = async () => (await engine.evaluate(trigger)).decision.active;
      return {
        isActive: active,
        metrics: async () => [{ value: (await engine.evaluate(trigger)).metricValue, target: 1 }],
        stream: { intervalS: STREAM_INTERVAL_MS / 1000, check: active },
      };
    },
  );
}
