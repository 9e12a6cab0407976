// GRPC_MAX_OPEN_STREAMS on a real server: streams past the limit are refused with RESOURCE_EXHAUSTED
// (a client that opened 20,000 exhausted the heap), a refused one holds nothing, and a stream that
// closes makes room for the next. Unary calls are never refused. Each connection is told its limit
// a step at a time as its streams open (streamPacing.ts).
import { connect } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAM_OPEN_STEP, paceStreamOpens } from '../../src/server/streamPacing.ts';
import { ServerReflection } from '../support/reflection.ts';
import { type TestScaler, eventually, ref, startTestScaler } from '../support/scaler.ts';

const LIMIT = 3;
const rabbit = ref({ 'rabbitmq.host': 'amqp://127.0.0.1:1/', 'rabbitmq.queueName': 'jobs' });

let t: TestScaler;
beforeAll(async () => {
  t = await startTestScaler({ GRPC_MAX_OPEN_STREAMS: LIMIT });
});
afterAll(async () => {
  await t?.[Symbol.asyncDispose]();
});

async function openGauge(): Promise<number> {
  return (await t.scaler.metrics.openStreams.get()).values.reduce((sum, v) => sum + v.value, 0);
}

/** A StreamMetricSpec that has sent its spec (open on the server), or the error it was refused with. */
function openSpec(): Promise<{ call: grpc.ClientReadableStream<unknown>; err?: grpc.ServiceError }> {
  const call = t.client.streamMetricSpec(rabbit);
  return new Promise((resolve) => {
    call.once('data', () => resolve({ call }));
    call.once('error', (err: grpc.ServiceError) => resolve({ call, err }));
  });
}

describe('the open-streams limit', () => {
  it('refuses the stream past the limit with RESOURCE_EXHAUSTED naming the setting, and makes room when one closes', async () => {
    const held = await Promise.all(Array.from({ length: LIMIT }, openSpec));
    expect(held.map((h) => h.err)).toEqual([undefined, undefined, undefined]);
    expect(await openGauge()).toBe(LIMIT);

    const refused = await openSpec();
    expect(refused.err?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.err?.details).toContain('GRPC_MAX_OPEN_STREAMS=3');
    const active = t.client.streamIsActive(rabbit);
    const activeErr = await new Promise<grpc.ServiceError>((resolve) => active.once('error', resolve));
    expect(activeErr.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(await openGauge()).toBe(LIMIT);
    // Unary calls go on.
    expect((await t.client.getMetricSpec(rabbit)).metricSpecs).toHaveLength(1);

    held[0]!.call.cancel();
    await eventually(async () => ((await openGauge()) === LIMIT - 1 ? true : undefined), 5000, 20);
    const next = await openSpec();
    expect(next.err).toBeUndefined();
    for (const h of [...held.slice(1), next]) h.call.cancel();
    await eventually(async () => ((await openGauge()) === 0 ? true : undefined), 5000, 20);
  });
});

describe('the per-connection stream limit', () => {
  it('tells each connection, in its HTTP/2 settings, one step of streams, raised as they open (up to the open-streams limit plus room for unary calls)', async () => {
    const session = connect(`http://${t.address}`);
    const limits: number[] = [];
    session.on('remoteSettings', (settings) => {
      if (settings.maxConcurrentStreams !== undefined) limits.push(settings.maxConcurrentStreams);
    });
    try {
      await new Promise((resolve) => session.once('remoteSettings', resolve));
      expect(limits).toEqual([STREAM_OPEN_STEP]);
      // Streams of a real method that send no request stay open on the server, waiting for it.
      const held = Array.from({ length: STREAM_OPEN_STEP }, () =>
        session
          .request(
            {
              ':method': 'POST',
              ':path': '/externalscaler.ExternalScaler/StreamIsActive',
              'content-type': 'application/grpc',
              te: 'trailers',
            },
            { endStream: false },
          )
          .on('error', () => undefined),
      );
      // Raised each time half of its room filled, to a step past what was open then: with 100
      // open, between half a step and a step of room left (150-200, by how the opens were read).
      await eventually(async () => ((limits.at(-1) ?? 0) >= 1.5 * STREAM_OPEN_STEP ? true : undefined), 5000, 20);
      expect(limits.at(-1)).toBeLessThanOrEqual(2 * STREAM_OPEN_STEP);
      expect(Math.max(...limits)).toBeLessThanOrEqual(LIMIT + 1000);
      for (const stream of held) stream.close();
    } finally {
      session.destroy();
    }
  });

  it('refuses to start on a grpc-js whose HTTP/2 sessions it cannot reach', () => {
    expect(() => paceStreamOpens({} as grpc.Server, { step: 1, max: 2 })).toThrow(/cannot be paced/);
  });
});

// Found by review: GRPC_MAX_OPEN_STREAMS counts the scaler's own streams, and 600 reflection
// streams on one connection were all kept (about 7 KB each: a few connections past the heap).
describe('server reflection streams', () => {
  it('refuses the 101st open at once with RESOURCE_EXHAUSTED, and makes room when one closes', async () => {
    const client = new ServerReflection(t.address, grpc.credentials.createInsecure());
    type Reflection = { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, unknown> };
    const open = () => {
      const call = (client as unknown as Reflection).ServerReflectionInfo();
      call.write({ list_services: '' });
      return new Promise<{ call: grpc.ClientDuplexStream<unknown, unknown>; err?: grpc.ServiceError }>((resolve) => {
        call.once('data', () => resolve({ call }));
        call.once('error', (err: grpc.ServiceError) => resolve({ call, err }));
      });
    };
    try {
      const held = await Promise.all(Array.from({ length: 100 }, open));
      expect(held.filter((h) => h.err !== undefined)).toEqual([]);
      const refused = await open();
      expect(refused.err?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(refused.err?.details).toBe('100 reflection streams are open; allowed: fewer at once');
      held[0]!.call.end();
      await eventually(async () => ((await open()).err === undefined ? true : undefined), 3000, 50);
      for (const h of held) h.call.cancel();
    } finally {
      client.close();
    }
  });
});
