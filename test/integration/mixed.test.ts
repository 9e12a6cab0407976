// One trigger over RabbitMQ + SQS + Kafka at once, against the real servers: its backlog is the
// sum of the three, and an error in any one of them fails the whole call (never a partial sum).
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaFixture } from '../support/kafka.ts';
import { RabbitFixture } from '../support/rabbitmq.ts';
import { type TestScaler, grpcError, ref, requireService, startTestScaler } from '../support/scaler.ts';
import { SQS_TEST_REGION, SqsFixture, useLocalAwsCredentials } from '../support/sqs.ts';
import { TcpProxy } from '../support/tcpProxy.ts';

let rabbit: RabbitFixture;
let sqs: SqsFixture;
let kafka: KafkaFixture;
let t: TestScaler;
let sqsEndpoint: string;
let brokers: string;
let amqpUrl: string;

beforeAll(async () => {
  amqpUrl = requireService('RABBITMQ_URL');
  sqsEndpoint = requireService('SQS_ENDPOINT');
  brokers = requireService('KAFKA_BROKERS');
  useLocalAwsCredentials();
  [rabbit, kafka] = await Promise.all([RabbitFixture.connect(amqpUrl), KafkaFixture.connect(brokers)]);
  sqs = new SqsFixture(sqsEndpoint);
  t = await startTestScaler();
});

afterAll(async () => {
  await t?.[Symbol.asyncDispose]();
  await Promise.allSettled([rabbit?.[Symbol.asyncDispose](), sqs?.[Symbol.asyncDispose](), kafka?.[Symbol.asyncDispose]()]);
});

/** A RabbitMQ queue with 4 messages, an SQS queue with 3 visible + 2 in flight, a Kafka topic with lag 6. */
async function threeSources(): Promise<Record<string, string>> {
  const [queue, queueURL, topic] = await Promise.all([rabbit.queue(4), sqs.queue(), kafka.topic([2, 4])]);
  await sqs.send(queueURL, 5);
  await sqs.receive(queueURL, 2);
  return {
    scalerAddress: 'keda-inference-scaler.keda:9090',
    'rabbitmq.host': amqpUrl,
    'rabbitmq.queueName': queue,
    'sqs.queueURL': queueURL,
    'sqs.awsRegion': SQS_TEST_REGION,
    'sqs.awsEndpoint': sqsEndpoint,
    'kafka.bootstrapServers': brokers,
    'kafka.topic': topic,
    'kafka.consumerGroup': KafkaFixture.uniqueName('kis-mixed'),
    'kafka.offsetResetPolicy': 'earliest',
    keepWarm: '0',
  };
}

function backlogSeen(name: string): number | undefined {
  return t.scaler.engine.lastEvaluations().find((e) => e.trigger.name === name)?.decision.explanation.signals.backlog;
}

describe('a trigger with RabbitMQ, SQS and Kafka sources', () => {
  it('answers the sum of the three backlogs', async () => {
    const metadata = await threeSources();
    const exact = { ...metadata, messagesPerReplica: '1' };
    const { metricValues } = await t.client.getMetrics(ref(exact, 'mixed-exact'));
    expect(metricValues[0]!.metricValueFloat).toBe(4 + 5 + 6);
    expect(backlogSeen('mixed-exact')).toBe(15);
    // Default metadata: ceil(15 / 5); RabbitMQ has no partition cap, so the sum is not capped.
    expect((await t.client.getMetrics(ref(metadata, 'mixed-default'))).metricValues[0]!.metricValueFloat).toBe(3);
    expect(backlogSeen('mixed-default')).toBe(15);
    expect((await t.client.isActive(ref(metadata, 'mixed-default'))).result).toBe(true);
  });

  it('fails the whole call when any one source fails, with that source named', async () => {
    const metadata = await threeSources();
    expect((await t.client.getMetrics(ref(metadata, 'mixed-ok'))).metricValues[0]!.metricValueFloat).toBe(3);

    const noQueue = { ...metadata, 'rabbitmq.queueName': 'kis-mixed-no-such-queue' };
    const rabbitErr = await grpcError(t.client.getMetrics(ref(noQueue, 'mixed-rabbit')));
    expect(rabbitErr.code).toBe(status.NOT_FOUND);
    expect(rabbitErr.details).toContain('kis-mixed-no-such-queue');

    const noSqs = { ...metadata, 'sqs.queueURL': metadata['sqs.queueURL']!.replace(/[^/]+$/, 'kis-mixed-missing') };
    const sqsErr = await grpcError(t.client.getMetrics(ref(noSqs, 'mixed-sqs')));
    expect(sqsErr.code).toBe(status.NOT_FOUND);
    expect(sqsErr.details).toContain('sqs queue "kis-mixed-missing"');

    const proxy = TcpProxy.forUrl(`kafka://${brokers.split(',')[0]!}`);
    await proxy.start();
    const dead = `127.0.0.1:${proxy.port}`;
    await proxy.stop();
    const noKafka = { ...metadata, 'kafka.bootstrapServers': dead };
    const kafkaErr = await grpcError(t.client.getMetrics(ref(noKafka, 'mixed-kafka')));
    expect(kafkaErr.code).toBe(status.UNAVAILABLE);
    expect(kafkaErr.details).toContain(dead);
    expect((await grpcError(t.client.isActive(ref(noKafka, 'mixed-kafka')))).code).toBe(status.UNAVAILABLE);

    // No partial answer was recorded for the failing triggers.
    for (const name of ['mixed-rabbit', 'mixed-sqs', 'mixed-kafka']) expect(backlogSeen(name)).toBeUndefined();
  });
});
