// Real Kafka helpers for tests: fresh topics with a known number of messages per partition,
// consumer-group commits made on the broker (OffsetCommit, as a consumer would), and the test
// broker's SASL and TLS listeners.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Admin, Kafka, Partitioners, type Producer, logLevel } from 'kafkajs';
import { patchIdleRequestQueue } from '../../src/sources/kafkajsRequestQueue.ts';
import { type ServiceEnv, optionalListeners } from './services.ts';

// The fixture's own connections get the product's fix too (no 1 ms loop, no warning).
patchIdleRequestQueue();

/** The test broker's SASL_PLAINTEXT and SSL listeners, with the user and the PEM material for them. */
export interface SecureKafka {
  readonly saslBrokers: string;
  readonly username: string;
  readonly password: string;
  readonly tlsBrokers: string;
  readonly ca: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

/** The secure listeners from `scripts/services.sh up`; fails with directions when they are not there. */
export function secureKafka(services: ServiceEnv): SecureKafka {
  const get = optionalListeners(services, 'KAFKA_', 'Kafka', 'SASL/SSL listeners');
  return {
    saslBrokers: get('KAFKA_SASL_BROKERS'),
    username: get('KAFKA_SASL_USERNAME'),
    password: get('KAFKA_SASL_PASSWORD'),
    tlsBrokers: get('KAFKA_TLS_BROKERS'),
    ca: readFileSync(get('KAFKA_TLS_CA_FILE'), 'utf8'),
    clientCert: readFileSync(get('KAFKA_TLS_CLIENT_CERT_FILE'), 'utf8'),
    clientKey: readFileSync(get('KAFKA_TLS_CLIENT_KEY_FILE'), 'utf8'),
  };
}

export class KafkaFixture implements AsyncDisposable {
  readonly kafka: Kafka;
  readonly admin: Admin;
  private producer: Producer;
  private readonly topics: string[] = [];

  private constructor(kafka: Kafka, admin: Admin, producer: Producer) {
    this.kafka = kafka;
    this.admin = admin;
    this.producer = producer;
  }

  static async connect(brokers: string): Promise<KafkaFixture> {
    const kafka = new Kafka({ clientId: 'kis-test-fixture', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await Promise.all([admin.connect(), producer.connect()]);
    return new KafkaFixture(kafka, admin, producer);
  }

  static uniqueName(prefix: string): string {
    return `${prefix}-${randomUUID().slice(0, 8)}`;
  }

  /** A fresh topic holding messagesPerPartition[i] messages in partition i. */
  async topic(messagesPerPartition: readonly number[], prefix = 'kis-test'): Promise<string> {
    const topic = KafkaFixture.uniqueName(prefix);
    await this.admin.createTopics({ topics: [{ topic, numPartitions: messagesPerPartition.length }], waitForLeaders: true });
    this.topics.push(topic);
    await this.produce(topic, messagesPerPartition);
    return topic;
  }

  async produce(topic: string, messagesPerPartition: readonly number[]): Promise<void> {
    const messages = messagesPerPartition.flatMap((n, partition) =>
      Array.from({ length: n }, (_, i) => ({ partition, value: `job ${partition}/${i}` })),
    );
    if (messages.length > 0) await this.producer.send({ topic, acks: -1, messages });
  }

  /**
   * Writes `n` messages to partition 0 of the topic in a transaction left open (a Flink or Kafka
   * Streams exactly-once producer mid-transaction): the high watermark moves past them, the last
   * stable offset stays before them. Abort it when done.
   */
  async openTransaction(topic: string, n: number): Promise<{ abort(): Promise<void> }> {
    const producer = this.kafka.producer({
      transactionalId: KafkaFixture.uniqueName('kis-txn'),
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    try {
      const txn = await producer.transaction();
      await txn.send({ topic, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ partition: 0, value: `txn ${i}` })) });
      return {
        abort: async () => {
          await txn.abort().finally(() => producer.disconnect());
        },
      };
    } catch (err) {
      await producer.disconnect();
      throw err;
    }
  }

  /** Commits `offsets[i]` for partition i (undefined: no commit there) for the group. */
  async commit(group: string, topic: string, offsets: readonly (number | undefined)[]): Promise<void> {
    const partitions = offsets.flatMap((offset, partition) =>
      offset === undefined ? [] : [{ partition, offset: String(offset) }],
    );
    await this.admin.setOffsets({ groupId: group, topic, partitions });
  }

  /** The group's committed offsets on the topic, "-1" where none. */
  async committed(group: string, topic: string): Promise<string[]> {
    const [t] = await this.admin.fetchOffsets({ groupId: group, topics: [topic] });
    return (t?.partitions ?? []).sort((a, b) => a.partition - b.partition).map((p) => p.offset);
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.admin.deleteTopics({ topics: [topic] });
    this.topics.splice(this.topics.indexOf(topic), 1);
    // A kafkajs client that used a topic fails every metadata refresh once it is deleted: a new producer.
    await this.producer.disconnect();
    this.producer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await this.producer.connect();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.topics.length > 0) await this.admin.deleteTopics({ topics: this.topics }).catch(() => undefined);
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
  }
}
