// The scaler's stop (server.ts): health says NOT_SERVING before anything ends, its Watch streams
// end instead of holding grpc-js's tryShutdown until the timeout, a source or store whose close
// never finishes (a blackholed broker: amqplib waits for CloseOk forever) cannot keep the stop
// past SHUTDOWN_TIMEOUT_MS, and a stream that reaches the service after endStreams ends at once.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine.ts';
import { ExternalScalerService } from '../../src/server/externalScaler.ts';
import type { SourceDriver } from '../../src/sources/source.ts';
import { createLogger, silentLogger } from '../../src/telemetry/logger.ts';
import { logLines } from '../support/logLines.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import type { RabbitmqSourceConfig } from '../../src/trigger/types.ts';
import { ref, startTestScaler } from '../support/scaler.ts';
import { fakeRabbitDriver } from '../support/fakeDriver.ts';
import { ServerReflection } from '../support/reflection.ts';

interface HealthClient extends grpc.Client {
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
}

/** A RabbitMQ driver that reads 3 messages from any queue; its close never finishes when `stuck`. */
function fakeRabbit(stuck: boolean): SourceDriver<RabbitmqSourceConfig> {
  return fakeRabbitDriver(
    async () => ({ backlog: 3 }),
    () => (stuck ? new Promise<void>(() => undefined) : Promise.resolve()),
  );
}

const metadata = { 'rabbitmq.host': 'amqp://rabbit:5672', 'rabbitmq.queueName': 'jobs' };

describe('stopping the scaler', () => {
  it('tells a health Watch NOT_SERVING, then ends the Watch with OK instead of waiting out the timeout', async () => {
    const { sink, lines } = logLines<{ level: string; msg: string }>();
    const t = await startTestScaler(
      { SHUTDOWN_TIMEOUT_MS: 8000 },
      { drivers: () => [fakeRabbit(false) as SourceDriver], logger: createLogger('info', sink) },
    );
    const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
    const health = new Health(t.address, grpc.credentials.createInsecure()) as unknown as HealthClient;
    try {
      const watch = health.Watch({ service: '' });
      watch.on('error', () => undefined); // 'status' says how it ended
      const seen: string[] = [];
      watch.on('data', (m: { status: string }) => seen.push(m.status));
      const ended = new Promise<string>((resolve) => watch.on('status', (s: grpc.StatusObject) => resolve(grpc.status[s.code]!)));
      await expect.poll(() => seen).toEqual(['SERVING']);
      await t.scaler.stop();
      expect(await ended).toBe('OK');
      expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
      // Before the fix the open Watch held tryShutdown for all of SHUTDOWN_TIMEOUT_MS, and the
      // server was then closed by force (the test's own timeout, 5 s, is shorter than that too).
      expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
      expect(lines.at(-1)?.msg).toBe('keda-inference-scaler stopped');
    } finally {
      health.close();
      await t[Symbol.asyncDispose]();
    }
  });

  // Found by review: a drain shorter than a source read cut calls that KEDA saw as INTERNAL.
  it.each([
    [1000, true],
    [10_000, false],
  ])(
    'with SHUTDOWN_TIMEOUT_MS %i, says at start whether a stop may cut a call still reading a source: %s',
    async (timeoutMs, warned) => {
      const { sink, lines } = logLines<{ level: string; msg: string; drainMs?: number }>();
      const t = await startTestScaler(
        { SHUTDOWN_TIMEOUT_MS: timeoutMs, SOURCE_TIMEOUT_MS: 2000 },
        { drivers: () => [fakeRabbit(false) as SourceDriver], logger: createLogger('info', sink) },
      );
      await t[Symbol.asyncDispose]();
      const warning = lines.find((l) => l.msg.startsWith('SHUTDOWN_TIMEOUT_MS leaves calls less time to drain'));
      expect(warning !== undefined).toBe(warned);
      if (warned) expect(warning!.drainMs).toBe(640);
    },
  );

  // Found by review: 300 (seconds meant) ended KEDA's streams every quarter second, without a word.
  it.each([
    [1500, true],
    [300_000, false],
  ])('with GRPC_MAX_CONNECTION_AGE_MS %i, warns at start that connections end that often: %s', async (ageMs, warned) => {
    const { sink, lines } = logLines<{ level: string; msg: string }>();
    const t = await startTestScaler(
      { GRPC_MAX_CONNECTION_AGE_MS: ageMs },
      { drivers: () => [fakeRabbit(false) as SourceDriver], logger: createLogger('info', sink) },
    );
    await t[Symbol.asyncDispose]();
    expect(lines.some((l) => l.level === 'warn' && l.msg.startsWith('GRPC_MAX_CONNECTION_AGE_MS is under 10 s'))).toBe(warned);
  });

  // Found by review: an open reflection stream (grpcui, a client that keeps it) held the stop for the
  // whole budget, then the server was closed by force.
  it('ends an open server reflection stream with OK instead of waiting out the timeout', async () => {
    const { sink, lines } = logLines<{ level: string; msg: string }>();
    const t = await startTestScaler(
      { SHUTDOWN_TIMEOUT_MS: 8000 },
      { drivers: () => [fakeRabbit(false) as SourceDriver], logger: createLogger('info', sink) },
    );
    const client = new ServerReflection(t.address, grpc.credentials.createInsecure());
    try {
      const call = (
        client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, unknown> }
      ).ServerReflectionInfo();
      call.on('error', () => undefined); // 'status' says how it ended
      const answered = new Promise((resolve) => call.once('data', resolve));
      const ended = new Promise<string>((resolve) => call.on('status', (s: grpc.StatusObject) => resolve(grpc.status[s.code]!)));
      call.write({ list_services: '' });
      await answered;
      const started = performance.now();
      await t.scaler.stop();
      expect(performance.now() - started).toBeLessThan(2000);
      expect(await ended).toBe('OK');
      expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
    } finally {
      client.close();
      await t[Symbol.asyncDispose]();
    }
  });

  it('finishes when a source never finishes closing, leaving that close to the exit and saying so', async () => {
    // A stop that waited for the close would never end: the test's own timeout (5 s) is the bound.
    const { sink, lines } = logLines<{ level: string; msg: string }>();
    const t = await startTestScaler(
      { SHUTDOWN_TIMEOUT_MS: 1000 },
      { drivers: () => [fakeRabbit(true) as SourceDriver], logger: createLogger('info', sink) },
    );
    await t.client.getMetrics(ref(metadata));
    await t.scaler.stop();
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toContainEqual(
      expect.stringMatching(/did not finish within the shutdown budget; leaving it to the exit$/),
    );
    t.client.close();
  });
  it('closes by force, and says so, a call still in flight when the budget is spent', async () => {
    const { sink, lines } = logLines<{ level: string; msg: string }>();
    let reads = 0;
    const stuckRead = fakeRabbitDriver(() => {
      reads++;
      return new Promise<{ backlog: number }>(() => undefined);
    });
    const t = await startTestScaler(
      { SHUTDOWN_TIMEOUT_MS: 1000, SOURCE_TIMEOUT_MS: 60_000 },
      { drivers: () => [stuckRead as SourceDriver], logger: createLogger('info', sink) },
    );
    const call = t.client.getMetrics(ref(metadata)).then(
      () => 'answered',
      (err: grpc.ServiceError) => grpc.status[err.code],
    );
    await expect.poll(() => reads).toBe(1); // the call is in flight, waiting for its source
    await t.scaler.stop();
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toContain(
      'the gRPC server still had calls in flight after the shutdown budget; closed by force',
    );
    // Ended with the connection, not left to the client's deadline (found by this test: grpc-js'
    // forceShutdown ends no connection with channelz off).
    expect(await call).toMatch(/^(CANCELLED|UNAVAILABLE)$/);
    t.client.close();
  });
});

describe('a StreamIsActive that reaches the service after its streams were ended', () => {
  it('ends at once, and is not counted as open', async () => {
    const metrics = new ScalerMetrics(new Registry(), { defaultMetrics: false });
    const engine = {
      trigger: () => ({ metricName: 'm' }),
      evaluate: () => new Promise(() => undefined),
    } as unknown as Engine;
    const service = new ExternalScalerService({
      engine,
      logger: silentLogger(),
      metrics,
      streamIntervalMs: 1000,
      maxOpenStreams: 100,
      maxStreamAgeMs: 60_000,
    });
    service.endStreams();
    const call = Object.assign(new EventEmitter(), { request: ref(metadata), end: () => call.emit('finish'), write: () => true });
    let endedCalls = 0;
    call.on('finish', () => endedCalls++);
    (service.handlers().StreamIsActive as (c: unknown) => void)(call);
    expect(endedCalls).toBe(1);
    expect((await metrics.openStreams.get()).values.reduce((n, v) => n + v.value, 0)).toBe(0);
  });
});
