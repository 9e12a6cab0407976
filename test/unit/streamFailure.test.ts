// A StreamIsActive whose source cannot be read sends nothing: KEDA keeps the last answer it had (a
// streamed false would let it scale the workload to zero). An audit found this guarded only by the
// fuzzer, whose 60 ms watch ended before a Kafka or SQS read failed, and by the integration faults.
// Metadata the source refuses when read is another matter: it will not read later, and the stream
// ends with INVALID_ARGUMENT (found by review: it stayed open and silent).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidTrigger, SourceUnavailable } from '../../src/errors.ts';
import type { SourceDriver } from '../../src/sources/source.ts';
import { fakeRabbitDriver } from '../support/fakeDriver.ts';
import { type TestScaler, ref, startTestScaler } from '../support/scaler.ts';

const INTERVAL_MS = 50;
const queue = { down: true, backlog: 0 };
let reads = 0;
const driver = fakeRabbitDriver(async (queueName) => {
  // A query the source refuses as malformed (Prometheus' bad_data), found only when read.
  if (queueName === 'refused') throw new InvalidTrigger(['gpu.query: Prometheus refused it: parse error']);
  reads++;
  if (queue.down) throw new SourceUnavailable('rabbitmq queue "jobs": connection refused');
  return { backlog: queue.backlog };
});

let t: TestScaler;
beforeAll(async () => {
  t = await startTestScaler(
    { STREAM_INTERVAL_MS: INTERVAL_MS, CACHE_TTL_MS: INTERVAL_MS },
    { drivers: () => [driver as SourceDriver] },
  );
});
afterAll(async () => {
  await t?.[Symbol.asyncDispose]();
});

const metadata = { 'rabbitmq.host': 'amqp://rabbit:5672', 'rabbitmq.queueName': 'jobs', keepWarm: '0' };

/** Resolves once `n` more reads were attempted. */
async function readsPast(n: number): Promise<void> {
  const target = reads + n;
  while (reads < target) await new Promise((r) => setTimeout(r, INTERVAL_MS / 5));
}

describe('a StreamIsActive whose source fails', () => {
  it('sends nothing while the source fails, never false, before and after an answer; true or false once it reads again', async () => {
    const sent: boolean[] = [];
    const stream = t.client.streamIsActive(ref(metadata, 'failing'));
    stream.on('data', (m: { result: boolean }) => sent.push(m.result));
    stream.on('error', () => undefined);
    // Failing from the first read: ten reads failed, nothing sent.
    await readsPast(10);
    expect(sent).toEqual([]);
    // It reads: work, so true.
    queue.down = false;
    queue.backlog = 3;
    await readsPast(3);
    await expect.poll(() => sent, { timeout: 2000 }).toEqual([true]);
    // Failing again while the queue would read empty: still nothing, not false.
    queue.down = true;
    queue.backlog = 0;
    await readsPast(10);
    expect(sent).toEqual([true]);
    // Read again and empty (keepWarm 0): now false, once.
    queue.down = false;
    await expect.poll(() => sent, { timeout: 2000 }).toEqual([true, false]);
    stream.cancel();
  });
});

describe('a StreamIsActive whose source refuses the metadata when read', () => {
  it('ends with INVALID_ARGUMENT naming the key, instead of staying open and silent', async () => {
    const sent: boolean[] = [];
    const stream = t.client.streamIsActive(ref({ ...metadata, 'rabbitmq.queueName': 'refused' }, 'refused'));
    stream.on('data', (m: { result: boolean }) => sent.push(m.result));
    const ended = await new Promise<{ code: number; details: string }>((resolve) => stream.on('error', resolve));
    expect(ended.code).toBe(3);
    expect(ended.details).toContain('gpu.query');
    expect(sent).toEqual([]);
    const counted = (await t.scaler.metrics.requests.get()).values.find(
      (v) => v.labels.method === 'StreamIsActive' && v.labels.code === 'INVALID_ARGUMENT',
    );
    expect(counted?.value).toBe(1);
    expect((await t.scaler.metrics.openStreams.get()).values.reduce((sum, v) => sum + v.value, 0)).toBe(0);
  });
});
