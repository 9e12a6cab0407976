// GRPC_MAX_RECEIVE_MESSAGE_BYTES on a real server: a message over the limit is refused with
// RESOURCE_EXHAUSTED (from its length prefix, before it is buffered), one under it is answered, and
// the connection goes on serving.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestScaler, grpcError, ref, startTestScaler } from '../support/scaler.ts';

const LIMIT_BYTES = 4096;
const rabbit = { 'rabbitmq.host': 'amqp://rabbit:5672/', 'rabbitmq.queueName': 'jobs' };

let t: TestScaler;
beforeAll(async () => {
  t = await startTestScaler({ GRPC_MAX_RECEIVE_MESSAGE_BYTES: LIMIT_BYTES });
});
afterAll(async () => {
  await t?.[Symbol.asyncDispose]();
});

describe('the receive-message limit', () => {
  it('refuses a GetMetricSpec over the limit with RESOURCE_EXHAUSTED, and answers the next one', async () => {
    const err = await grpcError(t.client.getMetricSpec(ref({ ...rabbit, 'rabbitmq.queueName': 'q'.repeat(LIMIT_BYTES) })));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    const spec = await t.client.getMetricSpec(ref(rabbit));
    expect(spec.metricSpecs).toHaveLength(1);
  });

  it('takes a message just under the limit', async () => {
    const err = await grpcError(t.client.getMetricSpec(ref({ ...rabbit, padding: 'p'.repeat(LIMIT_BYTES - 200) })));
    // Read and parsed: the unknown key is named, not the size.
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain('padding');
  });

  it('refuses an oversized StreamIsActive before any stream is opened', async () => {
    const call = t.client.streamIsActive(ref({ ...rabbit, padding: 'p'.repeat(2 * LIMIT_BYTES) }));
    const err = await new Promise<{ code: number }>((resolve) => call.on('error', resolve));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    const open = (await t.scaler.metrics.openStreams.get()).values.reduce((sum, v) => sum + v.value, 0);
    expect(open).toBe(0);
  });
});
