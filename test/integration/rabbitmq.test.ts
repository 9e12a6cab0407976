// The scaler core against a real RabbitMQ, driven over gRPC exactly as KEDA drives it.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitmqDriver } from '../../src/sources/rabbitmq.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import type { RabbitmqSourceConfig } from '../../src/trigger/types.ts';
import type { Signals } from '../../src/model/types.ts';
import { RabbitFixture, RabbitUser } from '../support/rabbitmq.ts';
import { type TestScaler, eventually, grpcError, ref, requireService, startTestScaler } from '../support/scaler.ts';
import { TcpProxy } from '../support/tcpProxy.ts';

let rabbit: RabbitFixture;
let t: TestScaler;
let amqpUrl: string;
let managementUrl: string;

beforeAll(async () => {
  amqpUrl = requireService('RABBITMQ_URL');
  managementUrl = requireService('RABBITMQ_MANAGEMENT_URL');
  rabbit = await RabbitFixture.connect(amqpUrl);
  t = await startTestScaler();
});

afterAll(async () => {
  await t?.[Symbol.asyncDispose]();
  await rabbit?.[Symbol.asyncDispose]();
});

const trigger = (queue: string, extra: Record<string, string> = {}) => ({
  scalerAddress: 'keda-inference-scaler.keda:9090',
  'rabbitmq.host': amqpUrl,
  'rabbitmq.queueName': queue,
  keepWarm: '0',
  ...extra,
});

describe('GetMetricSpec', () => {
  it('answers from the metadata alone with target 1 in both fields', async () => {
    const spec = await t.client.getMetricSpec(ref(trigger('no-io-needed-for-spec')));
    expect(spec.metricSpecs).toEqual([{ metricName: 'inference-desired-replicas', targetSize: 1, targetSizeFloat: 1 }]);
  });
});

describe('GetMetrics and IsActive over amqp', () => {
  it.each([
    [0, 1, false],
    [1, 1, true],
    [23, 5, true],
    [1000, 100, true],
  ])('%d messages -> %d desired replicas, active %s', async (messages, desired, active) => {
    const queue = await rabbit.queue(messages);
    const metadata = trigger(queue);
    const metrics = await t.client.getMetrics(ref(metadata, `so-${messages}`));
    expect(metrics.metricValues).toEqual([
      { metricName: 'inference-desired-replicas', metricValue: desired, metricValueFloat: desired },
    ]);
    // What KEDA's HPA computes with the AverageValue target from GetMetricSpec.
    const [spec] = (await t.client.getMetricSpec(ref(metadata))).metricSpecs;
    expect(Math.ceil(metrics.metricValues[0]!.metricValueFloat / spec!.targetSizeFloat)).toBe(desired);
    expect((await t.client.isActive(ref(metadata, `so-${messages}`))).result).toBe(active);
    const evaluation = t.scaler.engine.lastEvaluations().find((e) => e.trigger.name === `so-${messages}`);
    expect(evaluation?.decision.explanation.signals.backlog).toBe(messages);
  });

  it('honours messagesPerReplica, activationBacklog and the bounds', async () => {
    const queue = await rabbit.queue(7);
    const metadata = trigger(queue, { messagesPerReplica: '0.7', activationBacklog: '7', maxReplicas: '50' });
    expect((await t.client.getMetrics(ref(metadata))).metricValues[0]!.metricValueFloat).toBe(10);
    expect((await t.client.isActive(ref(metadata))).result).toBe(false);
    const capped = trigger(queue, { messagesPerReplica: '1', minReplicas: '2', maxReplicas: '3' });
    expect((await t.client.getMetrics(ref(capped))).metricValues[0]!.metricValueFloat).toBe(3);
  });

  it('reads a vhost given by rabbitmq.vhostName', async () => {
    const queue = await rabbit.queue(3);
    const metadata = trigger(queue, { 'rabbitmq.host': amqpUrl.replace(/\/?$/, '/nonexistent'), 'rabbitmq.vhostName': '/' });
    await t.client.getMetrics(ref(metadata, 'vhost'));
    expect(t.scaler.engine.lastEvaluations().find((e) => e.trigger.name === 'vhost')?.decision.explanation.signals.backlog).toBe(
      3,
    );
  });
});

// Found by review: amqplib decodes a URL's user and password as Latin-1, so a password with a
// letter outside ASCII was refused over amqp and taken over http.
describe('a password with letters outside ASCII', () => {
  it.each(['amqp', 'http'] as const)('is taken over %s, as the broker has it', async (protocol) => {
    await using user = await RabbitUser.create(managementUrl, 'pässwörd-');
    const queue = await rabbit.queue(3);
    const host = user.in(protocol === 'amqp' ? amqpUrl : managementUrl);
    const metadata = trigger(queue, { 'rabbitmq.host': host, 'rabbitmq.protocol': protocol, messagesPerReplica: '1' });
    // Over http once the broker's statistics count the new queue's messages (FAILED_PRECONDITION,
    // then fewer, until then); a refused password would be UNAUTHENTICATED all along.
    const name = `utf8-${protocol}`;
    const backlog = await eventually(
      async () => {
        await t.client.getMetrics(ref(metadata, name)).catch((err: ServiceError) => {
          if (err.code === status.UNAUTHENTICATED) throw new Error(err.details);
        });
        const signals = t.scaler.engine.lastEvaluations().find((x) => x.trigger.name === name)?.decision.explanation.signals;
        return signals?.backlog === 3 ? signals.backlog : undefined;
      },
      10_000,
      250,
    );
    expect(backlog).toBe(3);
  });
});

describe('a vhost the user may not open, and one that does not exist', () => {
  // The management API tells them apart (401, 404); over amqp RabbitMQ closes the handshake alike
  // for both, and the answer names both causes. Never UNAVAILABLE: the broker is up.
  it.each([
    ['http', 'UNAUTHENTICATED'],
    ['amqp', 'NOT_FOUND'],
  ] as const)('over %s: the refused one %s, the missing one NOT_FOUND, each naming the vhost', async (protocol, refusedCode) => {
    await using user = await RabbitUser.create(managementUrl);
    const vhost = await user.foreignVhost();
    const host = user.in(protocol === 'amqp' ? amqpUrl : managementUrl);
    const ask = (vhostName: string, name: string) =>
      grpcError(
        t.client.getMetrics(
          ref(trigger('jobs', { 'rabbitmq.host': host, 'rabbitmq.protocol': protocol, 'rabbitmq.vhostName': vhostName }), name),
        ),
      );
    const refused = await ask(vhost, `refused-${protocol}`);
    expect(refused.code, refused.details).toBe(status[refusedCode]);
    expect(refused.details).toContain(`(vhost "${vhost}")`);
    const missing = await ask(`${vhost}-missing`, `missing-${protocol}`);
    expect(missing.code, missing.details).toBe(status.NOT_FOUND);
    expect(missing.details).toContain(`(vhost "${vhost}-missing")`);
    for (const err of [refused, missing]) expect(err.details).not.toContain(user.password);
  });

  // Found by review: amqp://h/ml/ opens vhost "ml/" (amqplib, and KEDA), and the answer said "ml".
  it('over amqp, names the vhost a URL with a trailing slash opens: with the slash', async () => {
    const vhost = `kis-slash-${randomUUID().slice(0, 8)}`;
    const host = `${amqpUrl.replace(/\/+$/, '')}/${vhost}/`;
    const err = await grpcError(t.client.getMetrics(ref(trigger('jobs', { 'rabbitmq.host': host }), 'trailing-slash')));
    expect(err.code, err.details).toBe(status.NOT_FOUND);
    expect(err.details).toContain(`(vhost "${vhost}/")`);
  });
});

describe('GetMetrics over the management API (protocol http)', () => {
  /** The signals of the trigger named `name` at its last evaluation. */
  const signalsOf = (name: string) =>
    t.scaler.engine.lastEvaluations().find((x) => x.trigger.name === name)?.decision.explanation.signals;
  /**
   * GetMetrics until the signals satisfy `ready`: the management API's figures lag by its statistics
   * interval (1 s in the test bed), and a new queue's first figures took over 15 s once on a loaded
   * 2-core machine (CI, 2026-12-06).
   */
  const signalsWhen = (metadata: Record<string, string>, name: string, ready: (s: Signals) => boolean) =>
    eventually(
      async () => {
        await t.client.getMetrics(ref(metadata, name));
        const s = signalsOf(name);
        return s !== undefined && ready(s) ? s : undefined;
      },
      30_000,
      300,
    );

  // Found by review: RabbitMQ answers 400 for a path prefix it was not configured with, which read as an outage.
  it('gives FAILED_PRECONDITION, not UNAVAILABLE, for a path prefix the management API does not have (HTTP 400)', async () => {
    const host = `${managementUrl.replace(/\/+$/, '')}/not-a-prefix/`;
    const err = await grpcError(
      t.client.getMetrics(ref(trigger('jobs', { 'rabbitmq.host': host, 'rabbitmq.protocol': 'http' }), 'no-such-prefix')),
    );
    expect(err.code, err.details).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/management API refused the request \(HTTP 400\); check rabbitmq.host and its path prefix/);
  });

  it('counts ready and unacknowledged messages unless excluded', async () => {
    const queue = await rabbit.queue(12);
    const all = trigger(queue, { 'rabbitmq.host': managementUrl, 'rabbitmq.protocol': 'http' });
    const ready = { ...all, 'rabbitmq.excludeUnacknowledged': 'true' };
    await signalsWhen(all, 'http-all', (s) => s.backlog === 12);
    await t.client.getMetrics(ref(ready, 'http-ready'));
    expect(signalsOf('http-ready')?.backlog).toBe(12);
    expect((await t.client.isActive(ref(all, 'http-all'))).result).toBe(true);
  });

  it('tells waiting messages from the unacknowledged ones a consumer holds (amqp sees ready ones only)', async () => {
    const queue = await rabbit.queue(12);
    const release = await rabbit.holdUnacked(queue, 4);
    try {
      const http = trigger(queue, { 'rabbitmq.host': managementUrl, 'rabbitmq.protocol': 'http' });
      const s = await signalsWhen(http, 'http-split', (x) => x.inFlight === 4 && x.waiting === 8 && x.consumers === 1);
      expect(s).toMatchObject({ backlog: 12, waiting: 8, inFlight: 4, consumers: 1 });
      await t.client.getMetrics(ref(trigger(queue), 'amqp-split'));
      const amqp = signalsOf('amqp-split');
      expect(amqp).toMatchObject({ backlog: 8, waiting: 8, consumers: 1 });
      expect(amqp?.inFlight).toBeUndefined();
    } finally {
      await release();
    }
  });

  it("reads the broker's counters: messages published into the queue, and served (acknowledged)", async () => {
    const queue = await rabbit.queue(10);
    await rabbit.serve(queue, 4);
    const http = trigger(queue, { 'rabbitmq.host': managementUrl, 'rabbitmq.protocol': 'http' });
    // Counts and counters follow the broker's statistics apart: wait for both.
    const signals = await signalsWhen(
      http,
      'http-counters',
      (s) => s.arrivedTotal === 10 && s.servedTotal === 4 && s.backlog === 6,
    );
    expect(signals).toMatchObject({ backlog: 6, waiting: 6, arrivedTotal: 10, servedTotal: 4 });
  });
});

describe('StreamIsActive', () => {
  it('sends the current answer at once, then true within 2 s of a message arriving', async () => {
    const queue = await rabbit.queue(0);
    const stream = t.client.streamIsActive(ref(trigger(queue), 'stream'));
    const answers: { result: boolean; atMs: number }[] = [];
    stream.on('data', (m: { result: boolean }) => answers.push({ result: m.result, atMs: Date.now() }));
    stream.on('error', () => undefined);
    await eventually(async () => (answers.length > 0 ? true : undefined), 5000, 20);
    expect(answers[0]!.result).toBe(false);
    const publishedAt = Date.now();
    await rabbit.publish(queue, 1);
    const woke = await eventually(async () => answers.find((a) => a.result), 5000, 10);
    expect(woke.atMs - publishedAt).toBeLessThan(2000);
    // A change, not every tick: no further true while the queue stays non-empty, through the
    // stream's checks (250 ms) of two more broker readings (a second each: the third is asked for
    // only once the second has expired, long after its checks answered).
    const queries = t.scaler.engine.cache.queryCount;
    await eventually(async () => (t.scaler.engine.cache.queryCount >= queries + 3 ? true : undefined), 6000, 20);
    expect(answers.filter((a) => a.result)).toHaveLength(1);
    stream.cancel();
  });

  it('ends with INVALID_ARGUMENT for bad metadata', async () => {
    const stream = t.client.streamIsActive(ref({ 'rabbitmq.queueName': 'q', 'rabbitmq.bogus': 'x' }));
    const err = await new Promise<ServiceError>((resolve) => stream.on('error', resolve));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/rabbitmq\.bogus: unknown key/);
  });
});

describe('StreamMetricSpec', () => {
  it('sends the current specs as soon as the stream opens, equal to GetMetricSpec', async () => {
    const metadata = trigger('spec-stream');
    const stream = t.client.streamMetricSpec(ref(metadata));
    const first = await new Promise((resolve, reject) => stream.once('data', resolve).once('error', reject));
    expect(first).toEqual(await t.client.getMetricSpec(ref(metadata)));
    stream.cancel();
  });
});

describe('bad metadata', () => {
  it.each([
    [
      { 'rabbitmq.queueName': 'q', 'rabbitmq.host': 'amqp://h', messagesPerReplica: 'lots' },
      /messagesPerReplica: got "lots"; allowed: a number from 0.000001 to 1000000/,
    ],
    [
      { 'rabbitmq.queueName': 'q', 'rabbitmq.host': 'amqp://h', 'rabbitmq.protocol': 'mqtt' },
      /rabbitmq\.protocol: got "mqtt"; allowed: auto, amqp or http/,
    ],
    [{ queueName: 'q' }, /queueName: unknown key/],
    [{ scalerAddress: 'x:9090' }, /no source/],
  ])('answers INVALID_ARGUMENT naming the key on every RPC (%j)', async (metadata, pattern) => {
    for (const call of [
      t.client.getMetricSpec(ref(metadata)),
      t.client.getMetrics(ref(metadata)),
      t.client.isActive(ref(metadata)),
    ]) {
      const err = await grpcError(call);
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(pattern);
    }
  });
});

describe('closing', () => {
  it('closes the driver when the connection drops at that very moment (amqplib close() alone never settles then)', async () => {
    await using proxy = TcpProxy.forUrl(amqpUrl);
    await proxy.start();
    const driver = new RabbitmqDriver({ logger: silentLogger(), timeoutMs: 2000 });
    const queue = await rabbit.queue(1);
    const config: RabbitmqSourceConfig = {
      kind: 'rabbitmq',
      host: proxy.rewrite(amqpUrl),
      queueName: queue,
      vhostName: undefined,
      protocol: 'amqp',
      excludeUnacknowledged: false,
      ca: undefined,
      unsafeSsl: false,
    };
    expect(await driver.create(config).read(AbortSignal.timeout(5000))).toMatchObject({ backlog: 1 });
    await proxy.stop();
    const closed = await Promise.race([driver.close().then(() => 'closed'), new Promise((r) => setTimeout(r, 5000, 'hung'))]);
    expect(closed).toBe('closed');
  });
});

describe('the read cache', () => {
  it('asks the broker once for 50 triggers on the same queue', async () => {
    const queue = await rabbit.queue(9);
    const before = t.scaler.engine.cache.queryCount;
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        t.client.getMetrics(ref(trigger(queue, { messagesPerReplica: String(1 + (i % 5)) }), `so-${i}`, `ns-${i % 7}`)),
      ),
    );
    expect(t.scaler.engine.cache.queryCount - before).toBe(1);
    expect(answers.map((a) => a.metricValues[0]!.metricValueFloat)).toContain(9);
    const text = await (await fetch(`http://127.0.0.1:${t.scaler.metricsPort}/metrics`)).text();
    expect(text).toMatch(/keda_inference_scaler_source_queries_total\{kind="rabbitmq",result="ok"\} \d+/);
    expect(text).toMatch(/keda_inference_scaler_grpc_requests_total\{method="GetMetrics",code="OK"\} \d+/);
    expect(text).toMatch(
      /keda_inference_scaler_trigger_desired_replicas\{namespace="ns-0",scaled_object="so-0",trigger="\w+"\} \d+/,
    );
  });

  it("serves /metrics that Prometheus' own parser reads (promtool check metrics)", async () => {
    const queue = await rabbit.queue(2);
    await Promise.all(Array.from({ length: 20 }, (_, i) => t.client.isActive(ref(trigger(queue), `lint-so-${i}`, 'lint-ns'))));
    const text = await (await fetch(`http://127.0.0.1:${t.scaler.metricsPort}/metrics`)).text();
    expect(text).toMatch(
      /^keda_inference_scaler_trigger_backlog\{namespace="lint-ns",scaled_object="lint-so-19",trigger="\w+"\} 2$/m,
    );
    // promtool comes with Debian's prometheus package, which scripts/services.sh installs.
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(lint.error, 'promtool not found: run scripts/services.sh up (it installs prometheus)').toBeUndefined();
    // 0: clean; 3: lint findings only; 1: the text did not parse.
    expect([0, 3]).toContain(lint.status);
    const findings = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l.trim() !== '');
    // The only findings are on prom-client's default Node.js gauges named *_total, which are not ours to rename.
    expect(
      findings.filter(
        (l) => !/^keda_inference_scaler_nodejs_\w+_total non-counter metrics should not have "_total" suffix$/.test(l),
      ),
    ).toEqual([]);
  });

  it('leaves the per-trigger families out of /metrics with TRIGGER_METRICS=false, and still answers and explains', async () => {
    const queue = await rabbit.queue(3);
    await using quiet = await startTestScaler({ TRIGGER_METRICS: false });
    const answer = await quiet.client.getMetrics(ref(trigger(queue, { messagesPerReplica: '1' }), 'quiet-so'));
    expect(answer.metricValues[0]!.metricValueFloat).toBe(3);
    const base = `http://127.0.0.1:${quiet.scaler.metricsPort}`;
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/keda_inference_scaler_grpc_requests_total\{method="GetMetrics",code="OK"\} 1/);
    expect(text).not.toContain('keda_inference_scaler_trigger_');
    expect(await (await fetch(`${base}/explain`)).text()).toContain('quiet-so');
  });
});
