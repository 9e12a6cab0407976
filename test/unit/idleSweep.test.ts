// The server's idle sweep (server.ts): once KEDA asks about nothing (the last ScaledObject
// deleted), no call comes to sweep what the calls left, so a timer offers the engine a sweep. The
// engine's sweep itself is tested in engine.test.ts; this is the timer that drives it.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SourceDriver } from '../../src/sources/source.ts';
import { fakeRabbitDriver } from '../support/fakeDriver.ts';
import { ref, startTestScaler } from '../support/scaler.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('the server’s idle sweep', () => {
  it('forgets a trigger no one asked about for the idle window, with no call to start the sweep', async () => {
    // Only intervals and the clock are faked: the gRPC call below runs on real sockets and timeouts.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    const driver = fakeRabbitDriver(async () => ({ backlog: 3 }));
    await using t = await startTestScaler({}, { drivers: () => [driver as SourceDriver] });
    await t.client.getMetrics(ref({ 'rabbitmq.host': 'amqp://rabbit:5672', 'rabbitmq.queueName': 'jobs' }));
    expect(t.scaler.engine.lastEvaluations()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(29 * 60_000);
    expect(t.scaler.engine.lastEvaluations()).toHaveLength(1);
    // Past the idle window (30 minutes), a tick of the timer (a minute) sweeps: the engine sweeps
    // at most once a tenth of the window (3 minutes), so by 34 minutes.
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    expect(t.scaler.engine.lastEvaluations()).toEqual([]);
  });
});
