// The GPU source against a real Prometheus scraping the fake DCGM exporter, driven over gRPC as
// KEDA drives it. The exporter's set of GPUs is global, so the tests of this file run one after
// another and each owns a namespace label of its own.
import { randomUUID } from 'node:crypto';
import { type ServiceError, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitFixture } from '../support/rabbitmq.ts';
import { type TestScaler, eventually, grpcError, ref, requireService, startTestScaler } from '../support/scaler.ts';

interface Gpu {
  readonly pod: string;
  readonly gpu: string;
  readonly util: number;
}

/** The exporter's control API, changing one namespace's GPUs and leaving the others' alone. */
class DcgmExporter {
  private readonly url: string;
  private readonly prometheusUrl: string;

  constructor(url: string, prometheusUrl: string) {
    this.url = url;
    this.prometheusUrl = prometheusUrl;
  }

  private async all(): Promise<(Gpu & { namespace: string })[]> {
    const res = await fetch(`${this.url}/gpus`);
    if (!res.ok) throw new Error(`exporter GET /gpus: HTTP ${res.status}`);
    return (await res.json()) as (Gpu & { namespace: string })[];
  }

  /** Sets the namespace's GPUs and waits until Prometheus has scraped exactly them. */
  async set(namespace: string, gpus: readonly Gpu[]): Promise<void> {
    const others = (await this.all()).filter((g) => g.namespace !== namespace);
    const res = await fetch(`${this.url}/gpus`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([...others, ...gpus.map((g) => ({ ...g, namespace }))]),
    });
    if (!res.ok) throw new Error(`exporter PUT /gpus: HTTP ${res.status} ${await res.text()}`);
    const want = gpus.map((g) => `${g.pod}/${g.gpu}=${g.util}`).sort();
    await eventually(
      async () => {
        const seen = await this.scraped(namespace);
        return JSON.stringify(seen) === JSON.stringify(want) ? true : undefined;
      },
      20_000,
      200,
    );
  }

  async scraped(namespace: string): Promise<string[]> {
    const query = `DCGM_FI_DEV_GPU_UTIL{namespace="${namespace}"}`;
    const res = await fetch(`${this.prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
    const body = (await res.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    return body.data.result.map((s) => `${s.metric.pod}/${s.metric.gpu}=${Number(s.value[1])}`).sort();
  }

  async clear(namespaces: readonly string[]): Promise<void> {
    const keep = (await this.all()).filter((g) => !namespaces.includes(g.namespace));
    await fetch(`${this.url}/gpus`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(keep),
    });
  }
}

let t: TestScaler;
let rabbit: RabbitFixture;
let exporter: DcgmExporter;
let prometheusUrl: string;
let amqpUrl: string;
const namespaces: string[] = [];

function freshNamespace(): string {
  const ns = `kis-gpu-${randomUUID().slice(0, 8)}`;
  namespaces.push(ns);
  return ns;
}

/** `n` GPUs in pods of the namespace, each at `util` percent. */
function gpusAt(n: number, util: number): Gpu[] {
  return Array.from({ length: n }, (_, i) => ({ pod: `worker-${Math.floor(i / 2)}`, gpu: String(i % 2), util }));
}

const gpuTrigger = (namespace: string, extra: Record<string, string> = {}) => ({
  scalerAddress: 'keda-inference-scaler.keda:9090',
  'gpu.serverAddress': prometheusUrl,
  'gpu.namespace': namespace,
  'gpu.podSelector': 'worker-.*',
  'gpu.targetUtilization': '0.7',
  keepWarm: '0',
  ...extra,
});

function lastDecision(name: string) {
  return t.scaler.engine.lastEvaluations().find((e) => e.trigger.name === name)?.decision;
}

beforeAll(async () => {
  prometheusUrl = requireService('PROMETHEUS_URL');
  amqpUrl = requireService('RABBITMQ_URL');
  exporter = new DcgmExporter(requireService('DCGM_EXPORTER_URL'), prometheusUrl);
  rabbit = await RabbitFixture.connect(amqpUrl);
  t = await startTestScaler();
});

afterAll(async () => {
  await exporter?.clear(namespaces).catch(() => undefined);
  await t?.[Symbol.asyncDispose]();
  await rabbit?.[Symbol.asyncDispose]();
});

describe('busy GPU-equivalents -> desired replicas (target 0.7)', () => {
  it.each([
    { busy: 0, gpus: gpusAt(2, 0), desired: 1, active: false },
    {
      busy: 1.5,
      gpus: [
        { pod: 'worker-0', gpu: '0', util: 100 },
        { pod: 'worker-0', gpu: '1', util: 50 },
      ],
      desired: 3,
      active: true,
    },
    // 7 / 0.7 is 10.000000000000002 in floating point: 10 replicas, not 11.
    { busy: 7, gpus: gpusAt(7, 100), desired: 10, active: true },
  ])('busy $busy -> $desired replicas, active $active', async ({ gpus, busy, desired, active }) => {
    const ns = freshNamespace();
    await exporter.set(ns, gpus);
    const metadata = gpuTrigger(ns);
    const metrics = await t.client.getMetrics(ref(metadata, ns));
    expect(metrics.metricValues).toEqual([
      { metricName: 'inference-desired-replicas', metricValue: desired, metricValueFloat: desired },
    ]);
    expect((await t.client.isActive(ref(metadata, ns))).result).toBe(active);
    const decision = lastDecision(ns);
    expect(decision?.explanation.signals.busyGpus).toBeCloseTo(busy, 9);
    if (desired > 1) expect(decision?.explanation.winner).toBe('gpu');
  });

  it('reads a namespace without GPUs (scaled to zero) as no work by default, and as NOT_FOUND without ignoreNullValues', async () => {
    const ns = freshNamespace();
    const metadata = gpuTrigger(ns);
    expect((await t.client.getMetrics(ref(metadata, ns))).metricValues[0]?.metricValueFloat).toBe(1);
    expect((await t.client.isActive(ref(metadata, ns))).result).toBe(false);
    expect(lastDecision(ns)?.explanation.signals).toMatchObject({ gpuSourcesWithoutSeries: 1 });
    expect(lastDecision(ns)?.explanation.signals.busyGpus).toBeUndefined();
    const strict = await grpcError(t.client.isActive(ref(gpuTrigger(ns, { 'gpu.ignoreNullValues': 'false' }))));
    expect(strict.code).toBe(status.NOT_FOUND);
    expect(strict.details).toMatch(/matched no series \(gpu\.ignoreNullValues is false/);
  });

  it('reads a query written by hand, through a connection profile', async () => {
    const ns = freshNamespace();
    await exporter.set(ns, gpusAt(4, 80));
    await using withProfile = await startTestScaler({ profiles: { gpu: { cluster: { serverAddress: prometheusUrl } } } });
    const metadata = {
      'gpu.connection': 'cluster',
      // Per-pod average, summed: two pods at 0.8 each.
      'gpu.query': `sum(avg by (pod) (DCGM_FI_DEV_GPU_UTIL{namespace="${ns}"})) / 100`,
      'gpu.targetUtilization': '0.5',
    };
    expect((await withProfile.client.getMetrics(ref(metadata))).metricValues[0]?.metricValueFloat).toBe(4);
  });
});

describe('blended with a RabbitMQ queue', () => {
  // D = max(ceil(B / 5), ceil(G / 0.7))
  it.each([
    { messages: 12, busy: 7, gpus: gpusAt(7, 100), desired: 10, winner: 'gpu' },
    {
      messages: 60,
      busy: 1.5,
      gpus: [
        { pod: 'worker-0', gpu: '0', util: 100 },
        { pod: 'worker-0', gpu: '1', util: 50 },
      ],
      desired: 12,
      winner: 'backlog',
    },
  ])('$messages messages and $busy busy GPUs: D = $desired, won by $winner', async ({ messages, gpus, desired, winner }) => {
    const ns = freshNamespace();
    await exporter.set(ns, gpus);
    const queue = await rabbit.queue(messages, 'kis-gpu');
    const metadata = gpuTrigger(ns, { 'rabbitmq.host': amqpUrl, 'rabbitmq.queueName': queue, messagesPerReplica: '5' });
    expect((await t.client.getMetrics(ref(metadata, ns))).metricValues[0]?.metricValueFloat).toBe(desired);
    expect(lastDecision(ns)?.explanation.winner).toBe(winner);
  });

  it('stays active with an empty queue while GPUs are busy, and not when they idle at a few percent', async () => {
    const ns = freshNamespace();
    const queue = await rabbit.queue(0, 'kis-gpu');
    const metadata = gpuTrigger(ns, { 'rabbitmq.host': amqpUrl, 'rabbitmq.queueName': queue });
    await exporter.set(ns, [
      { pod: 'worker-0', gpu: '0', util: 100 },
      { pod: 'worker-0', gpu: '1', util: 50 },
    ]);
    expect((await t.client.isActive(ref(metadata, ns))).result).toBe(true);
    expect(lastDecision(ns)?.explanation.activeReason).toMatch(/busy GPUs/);
    await exporter.set(ns, gpusAt(3, 3));
    await eventually(async () => ((await t.client.isActive(ref(metadata, ns))).result === false ? true : undefined), 5000, 200);
    expect(lastDecision(ns)?.explanation.signals.busyGpus).toBeCloseTo(0.09, 9);
    // A trigger without history (the model holds a scale-down for a cold start) asks for the minimum.
    expect((await t.client.getMetrics(ref(metadata, `${ns}-fresh`))).metricValues[0]?.metricValueFloat).toBe(1);
  });
});

describe('a GPU query that matches no series is never idle GPUs (issue 16)', () => {
  it('ignoreNullValues true, GPU only: busy GPUs whose series vanish (exporter gone) are NOT_FOUND, not inactive', async () => {
    const ns = freshNamespace();
    await exporter.set(ns, gpusAt(2, 90));
    const metadata = gpuTrigger(ns);
    expect((await t.client.isActive(ref(metadata, ns))).result).toBe(true);
    await exporter.set(ns, []);
    await eventually(
      async () => ((await t.client.isActive(ref(metadata, ns)).catch(() => 'failed')) === 'failed' ? true : undefined),
      5000,
      200,
    );
    for (const call of [t.client.isActive(ref(metadata, ns)), t.client.getMetrics(ref(metadata, ns))]) {
      const err = await grpcError(call);
      expect(err.code).toBe(status.NOT_FOUND);
      expect(err.details).toMatch(/matched no series while the workload is running/);
    }
    // The exporter is back and the GPUs idle: now an answer, inactive.
    await exporter.set(ns, gpusAt(2, 1));
    await eventually(
      async () => ((await t.client.isActive(ref(metadata, ns)).catch(() => undefined))?.result === false ? true : undefined),
      5000,
      200,
    );
  });

  it('ignoreNullValues true, blended: at zero the queue wakes the workload; the drained queue with no GPU series is NOT_FOUND', async () => {
    const ns = freshNamespace();
    const queue = await rabbit.queue(0, 'kis-gpu');
    const metadata = gpuTrigger(ns, { 'rabbitmq.host': amqpUrl, 'rabbitmq.queueName': queue, messagesPerReplica: '5' });
    expect((await t.client.isActive(ref(metadata, ns))).result).toBe(false);
    await rabbit.publish(queue, 12);
    await eventually(async () => ((await t.client.isActive(ref(metadata, ns))).result ? true : undefined), 5000, 200);
    expect((await t.client.getMetrics(ref(metadata, ns))).metricValues[0]?.metricValueFloat).toBe(3);
    expect(lastDecision(ns)?.explanation.demands.gpu).toBeUndefined();
    // The messages went to the GPUs, whose series are missing (a selector typo): they may be busy.
    await rabbit.purge(queue);
    const err = await eventually(
      async () =>
        t.client.isActive(ref(metadata, ns)).then(
          () => undefined,
          (e: unknown) => e as ServiceError,
        ),
      5000,
      200,
    );
    expect(err.code).toBe(status.NOT_FOUND);
    expect((await grpcError(t.client.getMetrics(ref(metadata, ns)))).code).toBe(status.NOT_FOUND);
  });

  it('ignoreNullValues false, blended: no series is NOT_FOUND even while the queue has work', async () => {
    const ns = freshNamespace();
    const queue = await rabbit.queue(12, 'kis-gpu');
    const metadata = gpuTrigger(ns, { 'rabbitmq.host': amqpUrl, 'rabbitmq.queueName': queue, 'gpu.ignoreNullValues': 'false' });
    const err = await grpcError(t.client.getMetrics(ref(metadata, ns)));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toMatch(/matched no series \(gpu\.ignoreNullValues is false/);
    await exporter.set(ns, gpusAt(1, 0));
    await eventually(
      async () =>
        (await t.client.getMetrics(ref(metadata, ns)).catch(() => undefined))?.metricValues[0]?.metricValueFloat === 3
          ? true
          : undefined,
      5000,
      200,
    );
  });
});

describe('StreamIsActive (external-push)', () => {
  it('turns true when GPUs get busy with an empty queue, and false when they idle', async () => {
    const ns = freshNamespace();
    await exporter.set(ns, gpusAt(2, 0));
    const queue = await rabbit.queue(0, 'kis-gpu');
    const stream = t.client.streamIsActive(ref(gpuTrigger(ns, { 'rabbitmq.host': amqpUrl, 'rabbitmq.queueName': queue }), ns));
    const seen: boolean[] = [];
    stream.on('data', (m: { result: boolean }) => seen.push(m.result));
    stream.on('error', () => undefined);
    try {
      await eventually(async () => (seen.length > 0 ? true : undefined), 5000, 50);
      expect(seen).toEqual([false]);
      await exporter.set(ns, gpusAt(2, 90));
      await eventually(async () => (seen.at(-1) === true ? true : undefined), 5000, 50);
      await exporter.set(ns, gpusAt(2, 2));
      await eventually(async () => (seen.at(-1) === false ? true : undefined), 5000, 50);
      expect(seen).toEqual([false, true, false]);
    } finally {
      stream.cancel();
    }
  });
});

describe('errors, never a 0', () => {
  it('UNAVAILABLE for an address where nothing listens', async () => {
    const metadata = gpuTrigger(freshNamespace(), { 'gpu.serverAddress': 'http://127.0.0.1:9' });
    const err = await grpcError(t.client.getMetrics(ref(metadata)));
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toMatch(/ECONNREFUSED/);
  });

  it('INVALID_ARGUMENT naming gpu.query for a syntax error, while GetMetricSpec still answers', async () => {
    const metadata = { 'gpu.serverAddress': prometheusUrl, 'gpu.query': 'sum(DCGM_FI_DEV_GPU_UTIL' };
    const err = await grpcError(t.client.getMetrics(ref(metadata)));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/gpu\.query: Prometheus rejected the query .*bad_data.*parse error/);
    expect((await grpcError(t.client.isActive(ref(metadata)))).code).toBe(status.INVALID_ARGUMENT);
    expect((await t.client.getMetricSpec(ref(metadata))).metricSpecs).toHaveLength(1);
  });

  it('FAILED_PRECONDITION for a query giving several series', async () => {
    const ns = freshNamespace();
    await exporter.set(ns, gpusAt(2, 40));
    const metadata = { 'gpu.serverAddress': prometheusUrl, 'gpu.query': `DCGM_FI_DEV_GPU_UTIL{namespace="${ns}"} / 100` };
    const err = await grpcError(t.client.getMetrics(ref(metadata)));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/gave 2 series .*sum\(/);
  });

  it('FAILED_PRECONDITION for a NaN answer, even with ignoreNullValues', async () => {
    const ns = freshNamespace();
    await exporter.set(ns, gpusAt(1, 0));
    const metadata = {
      'gpu.serverAddress': prometheusUrl,
      'gpu.query': `sum(DCGM_FI_DEV_GPU_UTIL{namespace="${ns}"}) / sum(DCGM_FI_DEV_GPU_UTIL{namespace="${ns}"})`,
      'gpu.ignoreNullValues': 'true',
    };
    const err = await grpcError(t.client.isActive(ref(metadata)));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/"NaN", not a finite number/);
  });
});
