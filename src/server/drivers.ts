// The source drivers the server runs with. New source kinds register here.
import { GpuDriver } from '../sources/gpu.ts';
import { KafkaDriver } from '../sources/kafka.ts';
import { RabbitmqDriver } from '../sources/rabbitmq.ts';
import type { SourceDriver } from '../sources/source.ts';
import { SqsDriver } from '../sources/sqs.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ServerConfig } from './server.ts';

export function defaultDrivers(logger: Logger, config: ServerConfig): SourceDriver[] {
  const timeoutMs = config.SOURCE_TIMEOUT_MS;
  return [
    new RabbitmqDriver({ logger, timeoutMs }),
    new GpuDriver({ logger, timeoutMs }),
    new SqsDriver({ logger, timeoutMs }),
    new KafkaDriver({ logger, timeoutMs }),
  ] as SourceDriver[];
}
