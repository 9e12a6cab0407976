// The benchmark's triggers: T ScaledObjects over Q RabbitMQ queues, generated the same way in
// the orchestrator and in the load generator (only the spec crosses the process boundary).
import type { ScaledObjectRef } from '../../src/server/protocol.ts';

export interface TriggerSpec {
  readonly rabbitmqUrl: string;
  /** Queue i is `${queuePrefix}${i}`. */
  readonly queuePrefix: string;
  /** ScaledObject j is `${namePrefix}${j}`. */
  readonly namePrefix: string;
  readonly triggers: number;
  readonly queues: number;
  /** Extra metadata for every trigger (e.g. keepWarm). */
  readonly extra?: Readonly<Record<string, string>>;
}

export const NAMESPACE = 'bench';

/** Trigger j reads queue j mod Q, so each queue has T/Q triggers. */
export function queueOf(spec: TriggerSpec, j: number): string {
  return `${spec.queuePrefix}${j % spec.queues}`;
}

export function triggerRef(spec: TriggerSpec, j: number): ScaledObjectRef {
  return {
    name: `${spec.namePrefix}${j}`,
    namespace: NAMESPACE,
    scalerMetadata: {
      'rabbitmq.host': spec.rabbitmqUrl,
      'rabbitmq.queueName': queueOf(spec, j),
      messagesPerReplica: '5',
      ...spec.extra,
    },
  };
}

export function triggerRefs(spec: TriggerSpec): ScaledObjectRef[] {
  return Array.from({ length: spec.triggers }, (_, j) => triggerRef(spec, j));
}
