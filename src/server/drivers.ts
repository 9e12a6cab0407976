// The source drivers the server runs with. New source kinds register here.
//
// Each driver is imported on first use of its kind (SourceRegistry.load): the broker clients
// (kafkajs, the AWS SDK, amqplib, the Prometheus/HTTP client) weigh megabytes of heap and code
// that an installation reading only one kind of source should not carry.
import type { LazySourceDriver } from '../sources/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ServerConfig } from './server.ts';

export function defaultDrivers(logger: Logger, config: ServerConfig): LazySourceDriver[] {
  const options = { logger, timeoutMs: config.SOURCE_TIMEOUT_MS };
  return [
    { kind: 'rabbitmq', load: async () => new (await import('../sources/rabbitmq.ts')).RabbitmqDriver(options) },
    { kind: 'gpu', load: async () => new (await import('../sources/gpu.ts')).GpuDriver(options) },
    { kind: 'sqs', load: async () => new (await import('../sources/sqs.ts')).SqsDriver(options) },
    { kind: 'kafka', load: async () => new (await import('../sources/kafka.ts')).KafkaDriver(options) },
  ];
}
