// Policy (c): this scaler's model through the server's own code path. A real Engine (trigger
// schema, read cache, rate estimation, model) runs on the simulated clock and reads a simulated
// broker through a SourceDriver registered in a SourceRegistry, exactly as the gRPC handlers do:
// IsActive and GetMetrics call engine.evaluate, StreamIsActive re-evaluates every second.
import { Registry } from 'prom-client';
import { Engine, type TriggerRef } from '../../src/engine.ts';
import { SourceRegistry } from '../../src/sources/index.ts';
import type { Source, SourceDriver, SourceReading } from '../../src/sources/source.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import type { RabbitmqSourceConfig } from '../../src/trigger/types.ts';
import type { Fleet } from './fleet.ts';
import type { HpaBehavior } from './hpa.ts';
import { kedaPolicy } from './policies.ts';
import { MAX_REPLICAS, type Policy } from './simulate.ts';

/** A broker that reports the simulated queue: backlog (waiting + unacknowledged), counters, consumers. */
export class SimulatedQueueDriver implements SourceDriver<RabbitmqSourceConfig> {
  readonly kind = 'rabbitmq' as const;
  private readonly fleet: Fleet;

  constructor(fleet: Fleet) {
    this.fleet = fleet;
  }

  identity(config: RabbitmqSourceConfig): string {
    return `simulated|${config.queueName}`;
  }

  create(config: RabbitmqSourceConfig): Source {
    const fleet = this.fleet;
    return {
      identity: this.identity(config),
      label: `simulated queue "${config.queueName}"`,
      kind: 'rabbitmq',
      read: async (): Promise<SourceReading> => ({
        backlog: fleet.waiting + fleet.inService,
        arrivedTotal: fleet.arrived,
        servedTotal: fleet.served,
        consumers: fleet.readyCount,
      }),
    };
  }

  async close(): Promise<void> {}
}

/** The ScaledObject this scaler recommends, as the simulator runs it. */
export const RECOMMENDED = {
  type: 'external-push',
  cooldownSeconds: 0,
  streamIntervalMs: 1000,
  metadata: {
    'rabbitmq.host': 'http://simulated:15672',
    'rabbitmq.queueName': 'requests',
    coldStartSeconds: '60',
    drainSeconds: '60',
    keepWarm: 'auto',
    maxReplicas: String(MAX_REPLICAS),
  } as Record<string, string>,
  behavior: {
    // The model paces itself (cold-start projection, scale-down hold): the HPA should follow D.
    scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 1000, periodSeconds: 15 }] },
    scaleDown: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
  } satisfies HpaBehavior,
};

export function modelPolicy(overrides: Record<string, string> = {}): Policy {
  const metadata = { ...RECOMMENDED.metadata, ...overrides };
  const shown = Object.entries(metadata)
    .filter(([k]) => !k.startsWith('rabbitmq.'))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return kedaPolicy(
    'model',
    `this scaler (Engine + model), ${RECOMMENDED.type}, cooldownPeriod ${RECOMMENDED.cooldownSeconds} s, ${shown}; HPA behavior: no stabilization, scale-up 1000 %/15 s`,
    { cooldownSeconds: RECOMMENDED.cooldownSeconds, behavior: RECOMMENDED.behavior },
    (ctx) => {
      const engine = new Engine({
        registry: new SourceRegistry([new SimulatedQueueDriver(ctx.fleet) as SourceDriver]),
        cacheTtlMs: 1000,
        sourceTimeoutMs: 2000,
        logger: silentLogger(),
        metrics: new ScalerMetrics(new Registry(), { defaultMetrics: false }),
        now: () => Math.round(ctx.now() * 1000),
      });
      const ref: TriggerRef = { name: 'inference', namespace: 'bench', metadata };
      const active = async () => (await engine.evaluate(ref)).decision.active;
      return {
        isActive: active,
        metrics: async () => [{ value: (await engine.evaluate(ref)).metricValue, target: 1 }],
        stream: { intervalS: RECOMMENDED.streamIntervalMs / 1000, check: active },
      };
    },
  );
}
