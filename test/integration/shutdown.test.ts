// Shutdown during load, as a pod is stopped (bench/shutdown/drill.ts against a real scaler
// process): SIGTERM with 100 open StreamIsActive streams, a health Watch and calls in flight on a
// slow broker. Health turns NOT_SERVING before any stream ends, the calls in flight are answered,
// the streams end with OK (KEDA re-opens those after 2 s), the process exits 0 within
// SHUTDOWN_TIMEOUT_MS, also with its broker blackholed; a second SIGTERM forces the exit.
import { describe, expect, it } from 'vitest';
import { secondSigterm, sigtermBrokerBlackholed, sigtermDuringLoad } from '../../bench/shutdown/drill.ts';
import { requireService } from '../support/scaler.ts';

const SHUTDOWN_TIMEOUT_MS = 10_000;

describe('SIGTERM during load', () => {
  it('turns health NOT_SERVING first, answers the calls in flight, ends 100 streams with OK and exits 0 in time', async () => {
    const r = await sigtermDuringLoad({
      amqpUrl: requireService('RABBITMQ_URL'),
      streams: 100,
      inFlight: 20,
      shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
      brokerDelayMs: 600,
    });
    expect(r.notServingMs, r.logs).toBeDefined();
    expect(r.streamsEndedBeforeNotServing).toBe(0);
    expect(r.streamEnds).toEqual({ OK: 100 });
    expect(r.watchEnd).toBe('OK');
    // Still unanswered when SIGTERM came (the broker is slow), and answered right before the exit.
    expect(r.inFlightAtSigterm).toBe(20);
    expect(r.inFlight.map((c) => c.outcome)).toEqual(Array.from({ length: 20 }, () => 'OK'));
    for (const c of r.inFlight) expect(c.atMs).toBeLessThan(r.exitMs);
    // A call that reaches a stopping server is refused with a status KEDA retries, never answered wrong.
    expect(['UNAVAILABLE', 'OK']).toContain(r.afterNotServing?.outcome);
    expect(r.exitCode).toBe(0);
    expect(r.exitMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
  }, 60_000);

  it('exits 0 within SHUTDOWN_TIMEOUT_MS when the broker never answers the close', async () => {
    const r = await sigtermBrokerBlackholed(requireService('RABBITMQ_URL'), 3000);
    expect(r.exitCode).toBe(0);
    expect(r.exitMs).toBeLessThan(3000);
  }, 30_000);

  it('exits at once on a second SIGTERM while the first stop still waits', async () => {
    const r = await secondSigterm(requireService('RABBITMQ_URL'));
    expect(r.stillRunningAfterFirst).toBe(true);
    expect(r.exitCode).toBe(1);
    expect(r.afterSecondMs).toBeLessThan(1000);
  }, 30_000);
});
