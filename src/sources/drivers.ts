// The source drivers the server runs with. New source kinds register here.
//
// Each driver is imported on first use of its kind (SourceRegistry.load): the broker clients
// (kafkajs, the AWS SDK, amqplib, the Prometheus/HTTP client) weigh megabytes of heap and code
// that an installation reading only one kind of source should not carry.
import type { Logger } from '../telemetry/logger.ts';
import type { LazySourceDriver } from './source.ts';

/** What every driver is made with: where to log, and the bound on one query. */
export interface DriverOptions {
  readonly logger: Logger;
  readonly timeoutMs: number;
}

export function defaultDrivers(options: DriverOptions): LazySourceDriver[] {
  return [
    { kind: 'rabbitmq', load: async () => new (await import('./rabbitmq.ts')).RabbitmqDriver(options) },
    { kind: 'gpu', load: async () => new (await import('./gpu.ts')).GpuDriver(options) },
    { kind: 'sqs', load: async () => new (await import('./sqs.ts')).SqsDriver(options) },
    { kind: 'kafka', load: async () => new (await import('./kafka.ts')).KafkaDriver(options) },
  ];
}
