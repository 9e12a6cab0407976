// A source driver with no broker behind it, for tests of what sits above the sources (engine,
// server, shared state): RabbitMQ-kind triggers, each queue's source answering with `read`; or
// one source of any kind (fakeSourceDriver).
import type { Source, SourceDriver, SourceReading } from '../../src/sources/source.ts';
import type { RabbitmqSourceConfig } from '../../src/trigger/types.ts';

/** Sources answer `read(queueName)`; the driver's close is `close` (one that never finishes stands for a blackholed broker). */
export function fakeRabbitDriver(
  read: (queueName: string) => Promise<SourceReading>,
  close: () => Promise<void> = () => Promise.resolve(),
): SourceDriver<RabbitmqSourceConfig> {
  return {
    kind: 'rabbitmq',
    identity: (c) => `fake:${c.queueName}`,
    create: (c): Source => ({
      identity: `fake:${c.queueName}`,
      label: `fake ${c.queueName}`,
      kind: 'rabbitmq',
      read: () => read(c.queueName),
    }),
    closeIdle: () => Promise.resolve(),
    close,
  };
}

/** A driver of `kind` whose every trigger reads one source, answering with `read`. */
export function fakeSourceDriver(kind: Source['kind'], read: () => Promise<SourceReading>): SourceDriver {
  const identity = `fake:${kind}`;
  return {
    kind,
    identity: () => identity,
    create: (): Source => ({ identity, label: `fake ${kind}`, kind, read }),
    closeIdle: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}
