// The benchmark's triggers: T ScaledObjects over Q RabbitMQ queues. Only the spec crosses to the
// load generator, which makes trigger j (`${namePrefix}${j}` in namespace "bench") read queue j
// mod Q (bench/server/loadgen-go/loadgen.go).

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
