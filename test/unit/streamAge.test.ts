// Long-lived streams and the server's maximum connection age: a stream ends itself with OK before
// its connection is closed under it. KEDA re-opens a stream that ended with OK (Go's io.EOF) after
// 2 s and resets its backoff; one cut with UNAVAILABLE ("Connection dropped", the connection's
// grace run out) doubles its backoff, 2 s up to 1 min, and keeps it (pkg/scalers/external_scaler.go).
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SourceDriver } from '../../src/sources/source.ts';
import { type TestScaler, ref, startTestScaler } from '../support/scaler.ts';
import { fakeRabbitDriver } from '../support/fakeDriver.ts';

const MAX_AGE_MS = 1500;

/** A RabbitMQ driver that reads 3 messages from any queue, with no broker. */
const threeMessages = fakeRabbitDriver(async () => ({ backlog: 3 }));

let t: TestScaler;
beforeAll(async () => {
  t = await startTestScaler({ GRPC_MAX_CONNECTION_AGE_MS: MAX_AGE_MS }, { drivers: () => [threeMessages as SourceDriver] });
});
afterAll(async () => {
  await t?.[Symbol.asyncDispose]();
});

const metadata = { 'rabbitmq.host': 'amqp://rabbit:5672', 'rabbitmq.queueName': 'jobs' };

/** Opens a stream; resolves with its first answer, its end status and when each came (ms after opening). */
function openStream(name: string) {
  const opened = performance.now();
  const stream = t.client.streamIsActive(ref(metadata, name));
  stream.on('error', () => undefined); // 'status' says how it ended
  const first = new Promise<boolean>((resolve) => stream.once('data', (m: { result: boolean }) => resolve(m.result)));
  const ended = new Promise<{ code: string; afterMs: number }>((resolve) =>
    stream.on('status', (s: grpc.StatusObject) => resolve({ code: grpc.status[s.code]!, afterMs: performance.now() - opened })),
  );
  return { first, ended };
}

describe('a StreamIsActive on a connection past its maximum age', () => {
  it('ends with OK within the age, then opens again at once on a fresh connection', async () => {
    const stream = openStream('aged');
    expect(await stream.first).toBe(true);
    const end = await stream.ended;
    expect(end.code).toBe('OK');
    expect(end.afterMs).toBeGreaterThanOrEqual(0.8 * MAX_AGE_MS - 50);
    // As KEDA does after io.EOF: the next stream answers at once.
    const again = openStream('aged');
    expect(await again.first).toBe(true);
    await again.ended;
  });

  it('ends with OK also when opened just before its connection reached its age', async () => {
    // A connection a second old, then a stream on it: the connection's age comes first, and the
    // stream is not cut (UNAVAILABLE) when the connection's grace ends, but ends itself.
    const first = openStream('early');
    await first.first;
    await new Promise((r) => setTimeout(r, 1000));
    const late = openStream('late');
    expect(await late.first).toBe(true);
    expect((await first.ended).code).toBe('OK');
    expect((await late.ended).code).toBe('OK');
  });
});
