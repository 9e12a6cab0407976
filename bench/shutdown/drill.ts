// Shutdown during load, as a pod is stopped: the scaler (src/main.ts, as a process) with open
// StreamIsActive streams, a grpc.health.v1 Watch and GetMetrics calls in flight on a slow broker
// gets SIGTERM; the drill times what each client sees and how the process exits. Also: a second
// SIGTERM during a stop that is stuck, and a stop with the broker blackholed. Used by
// bench/shutdown/main.ts (prints the figures) and test/integration/shutdown.test.ts (asserts them).
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { ScalerProcess } from '../../test/support/process.ts';
import { RabbitFixture } from '../../test/support/rabbitmq.ts';
import { KedaClient, ref } from '../../test/support/scaler.ts';
import { TcpProxy } from '../../test/support/tcpProxy.ts';

export interface DrillOptions {
  readonly amqpUrl: string;
  /** StreamIsActive streams open when SIGTERM comes. */
  readonly streams: number;
  /** GetMetrics calls in flight (on a broker slowed by brokerDelayMs) when SIGTERM comes. */
  readonly inFlight: number;
  readonly shutdownTimeoutMs: number;
  /** Every byte to and from the broker this late, so reads take twice this. */
  readonly brokerDelayMs: number;
}

interface CallOutcome {
  /** 'OK' with the right value, 'OK wrong value', or the gRPC status name. */
  readonly outcome: string;
  /** ms from SIGTERM to the answer. */
  readonly atMs: number;
}

export interface DrillResult {
  /** ms from SIGTERM until a Watch client saw NOT_SERVING. */
  readonly notServingMs: number | undefined;
  /** ms from SIGTERM until the last stream ended, and how they ended (status -> count). */
  readonly lastStreamEndMs: number | undefined;
  readonly streamEnds: Record<string, number>;
  /** Streams that ended before the Watch saw NOT_SERVING. */
  readonly streamsEndedBeforeNotServing: number;
  /** ms from SIGTERM until the health Watch stream ended, and how. */
  readonly watchEndMs: number | undefined;
  readonly watchEnd: string | undefined;
  readonly inFlight: readonly CallOutcome[];
  /** How many of those calls were still unanswered when SIGTERM was sent. */
  readonly inFlightAtSigterm: number;
  /** A call sent once the health Watch saw NOT_SERVING (a new call to a stopping server). */
  readonly afterNotServing: CallOutcome | undefined;
  readonly exitCode: number | null;
  readonly exitMs: number;
  readonly logs: string;
}

const BACKLOG = 12;
const EXPECTED = 3; // ceil(12 / 5)
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface HealthClient extends grpc.Client {
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
}

function exited(scaler: ScalerProcess): Promise<number | null> {
  if (scaler.child.exitCode !== null) return Promise.resolve(scaler.child.exitCode);
  return new Promise((resolve) => scaler.child.once('exit', (code) => resolve(code)));
}

/** SIGTERM with streams open, a Watch open and calls in flight. */
export async function sigtermDuringLoad(options: DrillOptions): Promise<DrillResult> {
  await using rabbit = await RabbitFixture.connect(options.amqpUrl);
  await using proxy = TcpProxy.forUrl(options.amqpUrl);
  await proxy.start();
  const queues = await Promise.all(Array.from({ length: 10 }, () => rabbit.queue(BACKLOG, 'kis-shutdown')));
  await using scaler = await ScalerProcess.start({
    SHUTDOWN_TIMEOUT_MS: String(options.shutdownTimeoutMs),
    CACHE_TTL_MS: '100',
    SOURCE_TIMEOUT_MS: String(4 * options.brokerDelayMs + 1000),
  });
  const metadata = (i: number) => ({
    'rabbitmq.host': proxy.rewrite(options.amqpUrl),
    'rabbitmq.queueName': queues[i % queues.length]!,
    messagesPerReplica: '5',
  });
  const client = new KedaClient(`127.0.0.1:${scaler.grpcPort}`);
  const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
  const health = new Health(`127.0.0.1:${scaler.grpcPort}`, grpc.credentials.createInsecure()) as unknown as HealthClient;
  try {
    // Streams open and answered (true: every queue has work).
    const streams = Array.from({ length: options.streams }, (_, i) => client.streamIsActive(ref(metadata(i), `stream-${i}`)));
    await Promise.all(streams.map((s) => new Promise((resolve, reject) => s.once('data', resolve).once('error', reject))));
    let sigtermAt = 0;
    const since = () => performance.now() - sigtermAt;
    // When answered, in ms after SIGTERM once it is sent (negative: answered before it).
    const call = (md: Record<string, string>, name: string) => {
      const answered = (outcome: string) => {
        const at = performance.now();
        return {
          outcome,
          get atMs() {
            return at - sigtermAt;
          },
        };
      };
      return client.getMetrics(ref(md, name)).then(
        (r): CallOutcome => answered(r.metricValues[0]?.metricValueFloat === EXPECTED ? 'OK' : 'OK wrong value'),
        (e: grpc.ServiceError): CallOutcome => answered(grpc.status[e.code] ?? String(e.code)),
      );
    };
    let notServingMs: number | undefined;
    let lastStreamEndMs: number | undefined;
    let streamsEndedBeforeNotServing = 0;
    const streamEnds: Record<string, number> = {};
    const ended = streams.map(
      (s) =>
        new Promise<void>((resolve) => {
          const done = (how: string) => {
            if (sigtermAt === 0) return resolve();
            streamEnds[how] = (streamEnds[how] ?? 0) + 1;
            lastStreamEndMs = since();
            if (notServingMs === undefined) streamsEndedBeforeNotServing++;
            resolve();
          };
          s.on('status', (st: grpc.StatusObject) => done(grpc.status[st.code]));
          s.on('error', () => undefined); // 'status' says how
        }),
    );
    const watch = health.Watch({ service: '' });
    let watchEndMs: number | undefined;
    let watchEnd: string | undefined;
    watch.on('data', (m: { status: string }) => {
      if (m.status === 'NOT_SERVING' && sigtermAt > 0) notServingMs ??= since();
    });
    watch.on('status', (st: grpc.StatusObject) => {
      watchEndMs = since();
      watchEnd = grpc.status[st.code];
    });
    watch.on('error', () => undefined);
    await new Promise((resolve) => watch.once('data', resolve));
    // Calls that read the slow broker: the broker slowed first and the cached readings (100 ms)
    // left to age, so each call waits on a read of at least one round trip (2 x brokerDelayMs).
    proxy.delay(options.brokerDelayMs);
    await sleep(300);
    let answeredBeforeSigterm = 0;
    const inFlight = Array.from({ length: options.inFlight }, (_, i) =>
      call(metadata(i), `call-${i}`).then((c) => {
        if (sigtermAt === 0) answeredBeforeSigterm++;
        return c;
      }),
    );
    await sleep(300);
    const exit = exited(scaler);
    sigtermAt = performance.now();
    scaler.child.kill('SIGTERM');
    for (let waited = 0; notServingMs === undefined && waited < 5000; waited += 10) await sleep(10);
    const afterNotServing = await call(metadata(0), 'after-not-serving');
    const exitCode = await exit;
    const exitMs = since();
    await Promise.race([Promise.all(ended), sleep(2000)]);
    return {
      notServingMs,
      lastStreamEndMs,
      streamEnds,
      streamsEndedBeforeNotServing,
      watchEndMs,
      watchEnd,
      inFlight: (await Promise.all(inFlight)).map((c) => ({ outcome: c.outcome, atMs: c.atMs })),
      inFlightAtSigterm: options.inFlight - answeredBeforeSigterm,
      afterNotServing,
      exitCode,
      exitMs,
      logs: scaler.logs,
    };
  } finally {
    client.close();
    health.close();
  }
}

/** A stop that cannot finish (a call waits on a blackholed broker), then a second SIGTERM. */
export async function secondSigterm(
  amqpUrl: string,
): Promise<{ exitCode: number | null; afterSecondMs: number; stillRunningAfterFirst: boolean }> {
  await using rabbit = await RabbitFixture.connect(amqpUrl);
  await using proxy = TcpProxy.forUrl(amqpUrl);
  await proxy.start();
  const queue = await rabbit.queue(BACKLOG, 'kis-shutdown');
  await using scaler = await ScalerProcess.start({
    SHUTDOWN_TIMEOUT_MS: '60000',
    SOURCE_TIMEOUT_MS: '60000',
    CACHE_TTL_MS: '100',
  });
  const md = { 'rabbitmq.host': proxy.rewrite(amqpUrl), 'rabbitmq.queueName': queue };
  await scaler.client.getMetrics(ref(md, 'stuck'));
  proxy.blackhole();
  await sleep(200);
  const pending = scaler.client.getMetrics(ref(md, 'stuck'), undefined).catch(() => undefined);
  await sleep(200);
  const exit = exited(scaler);
  scaler.child.kill('SIGTERM');
  await sleep(1000);
  const stillRunningAfterFirst = scaler.child.exitCode === null;
  const second = performance.now();
  scaler.child.kill('SIGTERM');
  const exitCode = await exit;
  const afterSecondMs = performance.now() - second;
  void pending;
  return { exitCode, afterSecondMs, stillRunningAfterFirst };
}

/** SIGTERM while the broker's connection is blackholed and nothing is in flight. */
export async function sigtermBrokerBlackholed(
  amqpUrl: string,
  shutdownTimeoutMs: number,
): Promise<{ exitCode: number | null; exitMs: number }> {
  await using rabbit = await RabbitFixture.connect(amqpUrl);
  await using proxy = TcpProxy.forUrl(amqpUrl);
  await proxy.start();
  const queue = await rabbit.queue(BACKLOG, 'kis-shutdown');
  await using scaler = await ScalerProcess.start({ SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs) });
  await scaler.client.getMetrics(ref({ 'rabbitmq.host': proxy.rewrite(amqpUrl), 'rabbitmq.queueName': queue }, 'held'));
  proxy.blackhole();
  const exit = exited(scaler);
  const start = performance.now();
  scaler.child.kill('SIGTERM');
  const exitCode = await exit;
  return { exitCode, exitMs: performance.now() - start };
}
