// The SQS source against a real SQS-compatible server, driven over gRPC exactly as KEDA drives it.
// Credentials reach the scaler only through the AWS SDK's default chain (here: the environment).
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestScaler, grpcError, ref, requireService, startTestScaler } from '../support/scaler.ts';
import { SQS_TEST_REGION, SqsFixture, useLocalAwsCredentials } from '../support/sqs.ts';
import { TcpProxy } from '../support/tcpProxy.ts';

let sqs: SqsFixture;
let t: TestScaler;
let endpoint: string;

beforeAll(async () => {
  endpoint = requireService('SQS_ENDPOINT');
  useLocalAwsCredentials();
  sqs = new SqsFixture(endpoint);
  t = await startTestScaler();
});

afterAll(async () => {
  await t?.[Symbol.asyncDispose]();
  await sqs?.[Symbol.asyncDispose]();
});

const trigger = (queueURL: string, extra: Record<string, string> = {}) => ({
  scalerAddress: 'keda-inference-scaler.keda:9090',
  'sqs.queueURL': queueURL,
  'sqs.awsRegion': SQS_TEST_REGION,
  'sqs.awsEndpoint': endpoint,
  keepWarm: '0',
  ...extra,
});

function backlogSeen(name: string): number | undefined {
  return t.scaler.engine.lastEvaluations().find((e) => e.trigger.name === name)?.decision.explanation.signals.backlog;
}

/** Desired replicas and the backlog behind them, as KEDA and the explain endpoint see them. */
async function metrics(
  metadata: Record<string, string>,
  name: string,
): Promise<{ desired: number; backlog: number | undefined }> {
  const { metricValues } = await t.client.getMetrics(ref(metadata, name));
  expect(metricValues).toHaveLength(1);
  expect(metricValues[0]!.metricValue).toBe(metricValues[0]!.metricValueFloat);
  return { desired: metricValues[0]!.metricValueFloat, backlog: backlogSeen(name) };
}

describe('SQS backlog', () => {
  it('counts visible, in-flight (received, not deleted) and delayed messages per the flags', async () => {
    const queue = await sqs.queue();
    await sqs.send(queue, 5);
    await sqs.receive(queue, 2); // 3 visible, 2 in flight
    await sqs.send(queue, 4, 300); // 4 delayed
    const cases = [
      [{}, 5], // defaults: visible + in flight
      [{ 'sqs.scaleOnInFlight': 'false' }, 3],
      [{ 'sqs.scaleOnDelayed': 'true' }, 9],
      [{ 'sqs.scaleOnInFlight': 'false', 'sqs.scaleOnDelayed': 'true' }, 7],
    ] as const;
    for (const [flags, backlog] of cases) {
      const name = `sqs-flags-${JSON.stringify(flags).replace(/\W+/g, '-')}`;
      expect(await metrics(trigger(queue, { ...flags, messagesPerReplica: '1' }), name)).toEqual({ desired: backlog, backlog });
      // Waiting and in-flight messages apart, whatever B counts: the model drains only the waiting ones.
      const signals = t.scaler.engine.lastEvaluations().find((e) => e.trigger.name === name)?.decision.explanation.signals;
      expect(signals).toMatchObject({ waiting: 'sqs.scaleOnDelayed' in flags ? 7 : 3, inFlight: 2 });
    }
  });

  it.each([
    [0, 1, false],
    [1, 1, true],
    [23, 5, true],
    [600, 100, true],
  ])('with default metadata, %d messages -> D = clamp(ceil(B/5), 1, 100) = %d, active %s', async (messages, desired, active) => {
    const queue = await sqs.queue();
    await sqs.send(queue, messages);
    const metadata = trigger(queue);
    const name = `sqs-default-${messages}`;
    expect(await metrics(metadata, name)).toEqual({ desired, backlog: messages });
    const [spec] = (await t.client.getMetricSpec(ref(metadata, name))).metricSpecs;
    expect(spec).toEqual({ metricName: 'inference-desired-replicas', targetSize: 1, targetSizeFloat: 1 });
    expect((await t.client.isActive(ref(metadata, name))).result).toBe(active);
  });

  it('reads a local server from the queue URL alone (its origin is the endpoint)', async () => {
    const queue = await sqs.queue();
    await sqs.send(queue, 2);
    const metadata = trigger(queue);
    delete (metadata as Record<string, string>)['sqs.awsEndpoint'];
    expect(await metrics(metadata, 'sqs-no-endpoint')).toEqual({ desired: 1, backlog: 2 });
  });
});

describe('SQS errors', () => {
  it('gives INVALID_ARGUMENT for metadata that is wrong, credentials included (they never go in metadata)', async () => {
    const bad = await grpcError(t.client.getMetricSpec(ref(trigger('not a url'))));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/sqs\.queueURL: got "not a url"/);
    const creds = await grpcError(t.client.getMetrics(ref(trigger('http://127.0.0.1:1/1/q', { 'sqs.awsAccessKeyID': 'AKIA' }))));
    expect(creds.code).toBe(status.INVALID_ARGUMENT);
    expect(creds.details).toMatch(/sqs\.awsAccessKeyID: unknown key/);
    const flag = await grpcError(t.client.getMetrics(ref(trigger('http://127.0.0.1:1/1/q', { 'sqs.scaleOnDelayed': 'maybe' }))));
    expect(flag.details).toMatch(/sqs\.scaleOnDelayed: got "maybe"; allowed: true or false/);
  });

  it('gives UNAVAILABLE for an endpoint where nothing listens', async () => {
    const queue = await sqs.queue();
    const proxy = TcpProxy.forUrl(endpoint);
    await proxy.start();
    const dead = proxy.rewrite(endpoint);
    await proxy.stop();
    const err = await grpcError(t.client.getMetrics(ref(trigger(queue, { 'sqs.awsEndpoint': dead }), 'sqs-dead')));
    expect(err.code).toBe(status.UNAVAILABLE);
  });
});
