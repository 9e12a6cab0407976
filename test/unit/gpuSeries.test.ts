// A GPU query that matched no series (issue 16): never read as idle GPUs. The rule as a table over
// the pure function, then through the engine with the real GPU driver against a small Prometheus
// stand-in, with gpu.ignoreNullValues true and false.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine.ts';
import { SourceNotFound } from '../../src/errors.ts';
import { emptyHistory } from '../../src/model/decide.ts';
import { unanswerableWithoutGpuSeries } from '../../src/model/gpuSeries.ts';
import { sumSignals } from '../../src/model/signals.ts';
import type { Signals, TriggerHistory } from '../../src/model/types.ts';
import { GpuDriver } from '../../src/sources/gpu.ts';
import { SourceRegistry } from '../../src/sources/index.ts';
import type { SourceDriver } from '../../src/sources/source.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import type { RabbitmqSourceConfig, TriggerRef } from '../../src/trigger/types.ts';
import { scaling } from '../support/scaling.ts';
import { fakeRabbitDriver } from '../support/fakeDriver.ts';

describe('sumSignals with a GPU query that matched no series', () => {
  const gpu = { kind: 'gpu', backlog: 0, gpuTargetUtilization: 0.8, gpuActivationThreshold: 0.2 } as const;

  it('gives no busy GPUs at all (not 0) when no GPU source was read, and counts the source', () => {
    expect(sumSignals([{ ...gpu, noSeries: true }])).toEqual({
      backlog: 0,
      gpuSourcesWithoutSeries: 1,
      gpuTargetUtilization: 0.8,
      gpuActivationThreshold: 0.2,
    });
  });

  it('sums the GPU sources that were read, as a lower bound', () => {
    expect(
      sumSignals([
        { ...gpu, busyGpus: 1.5 },
        { ...gpu, noSeries: true },
      ]),
    ).toMatchObject({
      busyGpus: 1.5,
      gpuSourcesWithoutSeries: 1,
    });
  });
});

describe('unanswerableWithoutGpuSeries', () => {
  const running: TriggerHistory = { ...emptyHistory(), lastActive: true };
  const atZero: TriggerHistory = { ...emptyHistory(), lastActive: false };
  const none = { backlog: 0, gpuSourcesWithoutSeries: 1, gpuActivationThreshold: 0.2 } satisfies Signals;

  it.each([
    { name: 'every GPU query matched series', signals: { backlog: 0, busyGpus: 0 }, history: running, answer: true },
    { name: 'no series, workload at zero (last answer inactive)', signals: none, history: atZero, answer: true },
    {
      name: 'no series, no answer yet, no consumers seen (taken as at zero)',
      signals: none,
      history: emptyHistory(),
      answer: true,
    },
    {
      name: 'no series, no answer yet, the queue sees no consumers (at zero)',
      signals: { ...none, consumers: 0 },
      history: emptyHistory(),
      answer: true,
    },
    {
      name: 'no series, no answer yet (a restart), the queue sees consumers (running)',
      signals: { ...none, consumers: 2 },
      history: emptyHistory(),
      answer: false,
    },
    // Found by review: in flight is work the queue sees, answered active from it (decide.ts).
    {
      name: 'no series, running, the queue empty but messages in flight',
      signals: { ...none, inFlight: 3 },
      history: running,
      answer: true,
    },
    {
      name: 'no series, last answer inactive though consumers linger (scaling to zero)',
      signals: { ...none, consumers: 2 },
      history: atZero,
      answer: true,
    },
    // A consumer that died uncleanly stays counted until the broker's heartbeat gives up, its GPU
    // series gone: still the workload at zero, not one that lost its exporter.
    {
      name: 'no series, last answer inactive, consumers counted at the decision before too',
      signals: { ...none, consumers: 2 },
      history: { ...atZero, lastReady: 2 },
      answer: true,
    },
    { name: 'no series, running, the queue has work', signals: { ...none, backlog: 3 }, history: running, answer: true },
    {
      name: 'no series, running, a Kafka lag of messages served and not yet committed (work until committed)',
      signals: { ...none, uncommittedServed: 5 },
      history: running,
      answer: true,
    },
    {
      name: 'no series, running, backlog within activationBacklog',
      signals: { ...none, backlog: 3 },
      history: running,
      scaling: { activationBacklog: 5 },
      answer: false,
    },
    { name: 'no series, running, another GPU source busy', signals: { ...none, busyGpus: 2 }, history: running, answer: true },
    { name: 'no series, running, another GPU source idle', signals: { ...none, busyGpus: 0.1 }, history: running, answer: false },
    { name: 'no series, running, nothing else shows work', signals: none, history: running, answer: false },
    {
      name: "no series, no answer yet, the ScaledObject's last (before an edit) active",
      signals: none,
      history: emptyHistory(),
      workloadActive: true,
      answer: false,
    },
    {
      name: "no series, no answer yet, the ScaledObject's last (before an edit) inactive",
      signals: { ...none, consumers: 2 },
      history: emptyHistory(),
      workloadActive: false,
      answer: true,
    },
    {
      name: "no series, last answer inactive, the ScaledObject's other trigger active",
      signals: none,
      history: atZero,
      workloadActive: true,
      answer: true,
    },
  ])('$name: answerable $answer', ({ signals, history, answer, ...rest }) => {
    const overrides = 'scaling' in rest ? rest.scaling : {};
    const workloadActive = 'workloadActive' in rest ? rest.workloadActive : undefined;
    const why = unanswerableWithoutGpuSeries(signals, { ...scaling, ...overrides }, history, workloadActive);
    if (answer) expect(why).toBeUndefined();
    else expect(why).toMatch(/matched no series while the workload is running .*not read as idle GPUs/i);
  });
});

/**
 * A RabbitMQ-kind driver whose one queue holds `queue.backlog` messages, read as a passive declare
 * reads them (ready messages alone): the queue does not see the messages in service, so the GPUs
 * size the fleet (decide.ts); with `inFlight`, as the management API reads it, they do not.
 */
function fakeQueue(queue: { backlog: number; inFlight?: number }): SourceDriver<RabbitmqSourceConfig> {
  return fakeRabbitDriver(async () =>
    queue.inFlight === undefined
      ? { ...queue, waiting: queue.backlog }
      : { ...queue, backlog: queue.backlog + queue.inFlight, waiting: queue.backlog },
  );
}

describe('the engine, with the real GPU driver against a Prometheus stand-in', () => {
  let server: http.Server;
  let address = '';
  /** The stand-in's one series: busy GPU-equivalents, or none (exporter gone, pods gone). */
  let busy: string | undefined;
  const queue: { backlog: number; consumers?: number; inFlight?: number } = { backlog: 0 };
  const clock = { ms: 1_000_000 };
  const logger = silentLogger();
  let engine: Engine;
  let driver: GpuDriver;
  /** An engine on the stand-in and the queue, as a process that just started has one. */
  const newEngine = () =>
    new Engine({
      registry: new SourceRegistry([driver, fakeQueue(queue) as unknown as SourceDriver]),
      cacheTtlMs: 1000,
      sourceTimeoutMs: 2000,
      logger,
      metrics: new ScalerMetrics(new Registry(), { defaultMetrics: false }),
      now: () => clock.ms,
    });

  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      const result = busy === undefined ? [] : [{ metric: {}, value: [1, busy] }];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    driver = new GpuDriver({ logger, timeoutMs: 2000 });
    engine = newEngine();
  });
  afterAll(async () => {
    await driver.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** One evaluation a cache interval after the last, so every source is read again. */
  async function evaluate(name: string, metadata: Record<string, string>) {
    clock.ms += 1100;
    const ref: TriggerRef = {
      name,
      namespace: 'ns',
      metadata: { 'gpu.serverAddress': address, 'gpu.query': 'q', keepWarm: '0', ...metadata },
    };
    return engine.evaluate(engine.trigger(ref));
  }
  const blended = { 'rabbitmq.host': 'amqp://broker', 'rabbitmq.queueName': 'jobs' };

  it('ignoreNullValues true: at zero no series is no work; the queue wakes the workload; a drained queue is then NOT_FOUND, not inactive', async () => {
    busy = undefined;
    queue.backlog = 0;
    const atZero = await evaluate('blend', blended);
    expect(atZero.decision.active).toBe(false);
    expect(atZero.decision.explanation.signals).toMatchObject({ gpuSourcesWithoutSeries: 1 });
    expect(atZero.decision.explanation.signals.busyGpus).toBeUndefined();

    queue.backlog = 12;
    const woken = await evaluate('blend', blended);
    expect(woken.decision.active).toBe(true);
    expect(woken.metricValue).toBe(3);
    expect(woken.decision.explanation.demands.gpu).toBeUndefined();

    // The queue drained onto the GPUs, whose series are still missing: they may be busy.
    queue.backlog = 0;
    const drained = await Promise.resolve(evaluate('blend', blended)).catch((e: unknown) => e);
    expect(drained).toBeInstanceOf(SourceNotFound);
    expect((drained as Error).message).toMatch(
      /^prometheus query "q" at http:\/\/127\.0\.0\.1:\d+: the GPU query matched no series/,
    );

    // The series appear (the exporter labelled the new pod): answered again, the GPUs read.
    busy = '1.5';
    const read = await evaluate('blend', blended);
    expect(read.decision.active).toBe(true);
    expect(read.decision.explanation.demands.gpu).toBe(2);
  });

  // Found by review: the GPU demand dropped out, and a saturated fleet shrank to the queue's one
  // hold later (10 replicas to 2 within 30 s), without an error.
  it('ignoreNullValues true: busy GPUs whose series vanish while the queue has work keep the fleet they asked for', async () => {
    busy = '8';
    queue.backlog = 4;
    const saturated = await evaluate('saturated', blended);
    expect(saturated.decision.explanation.demands.gpu).toBe(saturated.metricValue);
    expect(saturated.metricValue).toBeGreaterThan(2);
    busy = undefined;
    for (let i = 0; i < 120; i++) {
      const blind = await evaluate('saturated', blended);
      expect(blind.metricValue).toBe(saturated.metricValue);
      expect(blind.decision.explanation.details.gpuHeldAtFleetWithoutSeries).toBe(saturated.metricValue);
    }
    // The queue may still raise it.
    queue.backlog = 400;
    expect((await evaluate('saturated', blended)).metricValue).toBeGreaterThan(saturated.metricValue);
    queue.backlog = 0;
  });

  // Where the queue counts the messages in service (the management API), busy GPUs size nothing:
  // what they serve is what the queue measures. Their series vanishing then holds no fleet either.
  it('ignoreNullValues true: beside a queue that counts what is in service, busy GPUs and their series vanishing size nothing', async () => {
    busy = '8';
    queue.backlog = 4;
    queue.inFlight = 4;
    queue.consumers = 1;
    try {
      const read = await evaluate('counted', blended);
      expect(read.decision.explanation.demands.gpu).toBeUndefined();
      expect(read.decision.explanation.details.gpuReplicasNotSizing).toBe(10);
      expect(read.metricValue).toBe(read.decision.explanation.demands.backlog);
      busy = undefined;
      const blind = await evaluate('counted', blended);
      expect(blind.decision.explanation.details.gpuHeldAtFleetWithoutSeries).toBeUndefined();
      expect(blind.metricValue).toBe(blind.decision.explanation.demands.backlog);
    } finally {
      queue.backlog = 0;
      queue.inFlight = undefined;
      queue.consumers = undefined;
    }
  });

  // Found by review: a query edited into a typo is a trigger with no fleet of its own: beside a
  // queue that counts no consumers, its answers came from the backlog alone (10 replicas to 1).
  it('ignoreNullValues true: a query edited into one that matches nothing keeps the fleet its ScaledObject asked for', async () => {
    busy = '8';
    queue.backlog = 4;
    queue.consumers = undefined;
    const before = await evaluate('edited-blind', blended);
    expect(before.metricValue).toBeGreaterThan(2);
    busy = undefined;
    for (let i = 0; i < 60; i++) {
      const after = await evaluate('edited-blind', { ...blended, 'gpu.query': 'q-typo' });
      expect(after.metricValue).toBe(before.metricValue);
      expect(after.decision.explanation.details.gpuHeldAtFleetWithoutSeries).toBe(before.metricValue);
    }
    queue.backlog = 0;
  });

  it('ignoreNullValues true, GPU only: busy GPUs whose series vanish are NOT_FOUND until they return', async () => {
    busy = '2';
    expect((await evaluate('gpu-only', {})).decision.active).toBe(true);
    busy = undefined;
    await expect(evaluate('gpu-only', {})).rejects.toBeInstanceOf(SourceNotFound);
    await expect(evaluate('gpu-only', {})).rejects.toBeInstanceOf(SourceNotFound);
    busy = '0.01';
    expect((await evaluate('gpu-only', {})).decision.active).toBe(false);
    // Now at zero (last answer inactive): no series is the expected state.
    busy = undefined;
    expect((await evaluate('gpu-only', {})).decision.active).toBe(false);
  });

  // Found by review: each NOT_FOUND left the trigger as last seen before it, so after the idle
  // window the sweep retired its history while KEDA still asked; the next call revived it and threw
  // again, losing it, and the one after answered from nothing: inactive, the GPUs busy.
  it('GPU only, series gone for 40 minutes while KEDA asks every 30 s: NOT_FOUND throughout, never inactive', async () => {
    busy = '2';
    expect((await evaluate('gone-long', {})).decision.active).toBe(true);
    busy = undefined;
    const answers = new Set<string>();
    for (let i = 0; i < 80; i++) {
      clock.ms += 30_000 - 1100;
      const answer = await evaluate('gone-long', {}).then(
        (e) => `active ${e.decision.active}`,
        (err: unknown) => (err instanceof SourceNotFound ? 'NOT_FOUND' : String(err)),
      );
      answers.add(answer);
    }
    expect([...answers]).toEqual(['NOT_FOUND']);
  });

  it('after a silence (a paused ScaledObject resumed) the last answer still counts: a running workload whose series are gone is NOT_FOUND', async () => {
    busy = '2';
    expect((await evaluate('paused', {})).decision.active).toBe(true);
    clock.ms += 20 * 60_000;
    busy = undefined;
    await expect(evaluate('paused', {})).rejects.toBeInstanceOf(SourceNotFound);
  });

  it('a scaler that just started without a state store takes consumers on the queue for a running workload', async () => {
    const restarted = newEngine();
    const ask = (name: string) =>
      restarted.evaluate(
        restarted.trigger({
          name,
          namespace: 'ns',
          metadata: { 'gpu.serverAddress': address, 'gpu.query': 'q', keepWarm: '0', ...blended },
        }),
      );
    busy = undefined;
    queue.backlog = 0;
    queue.consumers = 3;
    await expect(ask('restarted-running')).rejects.toThrow(/no answer of this scaler's before it, and 3 consumer\(s\)/);
    queue.consumers = 0;
    clock.ms += 1100;
    expect((await ask('restarted-at-zero')).decision.active).toBe(false);
    delete queue.consumers;
  });

  it('ignoreNullValues false: no series is NOT_FOUND always, at zero and with queue work too', async () => {
    const strict = { ...blended, 'gpu.ignoreNullValues': 'false' };
    busy = undefined;
    queue.backlog = 0;
    await expect(evaluate('strict', strict)).rejects.toThrow(/matched no series \(gpu\.ignoreNullValues is false/);
    queue.backlog = 12;
    await expect(evaluate('strict', strict)).rejects.toBeInstanceOf(SourceNotFound);
    busy = '0';
    expect((await evaluate('strict', strict)).metricValue).toBe(3);
  });
});
