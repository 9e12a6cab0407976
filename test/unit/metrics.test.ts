import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/model/types.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import type { Trigger } from '../../src/trigger/types.ts';

const trigger = {
  id: 'ns/so/abc123',
  name: 'so',
  namespace: 'ns',
  metricName: 'inference-desired-replicas',
  sources: [{ kind: 'rabbitmq' }],
  // Metrics read only the identity fields and the sources' kinds; scaling plays no part here.
} as unknown as Trigger;

function decision(
  backlog: number,
  desiredReplicas: number,
  winner: 'backlog' | 'minReplicas' | 'hold',
  arrival?: number,
  hold?: number,
): Decision {
  return {
    desiredReplicas,
    active: backlog > 0,
    explanation: {
      signals: { backlog, ...(arrival !== undefined ? { arrivalRatePerSecond: arrival } : {}) },
      demands: { backlog: Math.ceil(backlog / 5), ...(hold !== undefined ? { hold } : {}) },
      winner,
      activeReason: '',
      details: {},
    },
  } as Decision;
}

/** Value of each series of a family in the served text, keyed by its term label (or '' without one). */
async function values(metrics: ScalerMetrics, name: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await metrics.render()).split('\n')) {
    const m = /^keda_inference_scaler_(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    out[/(?:^|,)term="(\w+)"/.exec(m[2] ?? '')?.[1] ?? ''] = Number(m[3]);
  }
  return out;
}

/** The sample lines of one family, in the order served. */
async function lines(metrics: ScalerMetrics, name: string): Promise<string[]> {
  const text = await metrics.render();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`keda_inference_scaler_${name}{`) || l.startsWith(`keda_inference_scaler_${name} `));
}

/** Metrics that read the last decisions from `last` (trigger id -> evaluation), as the engine's are. */
function withTriggers() {
  const metrics = new ScalerMetrics(undefined, { defaultMetrics: false });
  const last = new Map<string, { trigger: Trigger; decision: Decision }>();
  metrics.observeTriggers(() => last.values());
  const record = (t: Trigger, d: Decision) => last.set(t.id, { trigger: t, decision: d });
  return { metrics, last, record };
}

/** The per-trigger gauges, each dropped with its trigger. */
const TRIGGER_GAUGES = [
  'trigger_backlog',
  'trigger_desired_replicas',
  'trigger_active',
  'trigger_demand_replicas',
  'trigger_winning_term',
  'trigger_cold_start_seconds',
];

describe('ScalerMetrics per-trigger families', () => {
  it('exports the latest decision, also when a later one repeats or changes values', async () => {
    const { metrics, record } = withTriggers();
    record(trigger, decision(12, 3, 'backlog', 2));
    expect(await values(metrics, 'trigger_backlog')).toEqual({ '': 12 });
    expect(await values(metrics, 'trigger_arrival_rate_per_second')).toEqual({ '': 2 });
    record(trigger, decision(0, 1, 'minReplicas', 0));
    expect(await values(metrics, 'trigger_backlog')).toEqual({ '': 0 });
    expect(await values(metrics, 'trigger_desired_replicas')).toEqual({ '': 1 });
    expect(await values(metrics, 'trigger_active')).toEqual({ '': 0 });
    expect(await values(metrics, 'trigger_arrival_rate_per_second')).toEqual({ '': 0 });
    expect(await values(metrics, 'trigger_demand_replicas')).toEqual({ backlog: 0 });
    expect(await values(metrics, 'trigger_winning_term')).toEqual({ minReplicas: 1 });
  });

  it("exports a Kafka lag whole, with what its consumers served and have not committed (the brokers' tools show that lag)", async () => {
    const { metrics, record } = withTriggers();
    const lagging = decision(4, 3, 'backlog');
    record(trigger, { ...lagging, explanation: { ...lagging.explanation, signals: { backlog: 4, uncommittedServed: 20 } } });
    expect(await values(metrics, 'trigger_backlog')).toEqual({ '': 24 });
  });

  it.each([
    // the cold start the model plans with; the consumersPerReplica the consumers suggest
    { family: 'trigger_cold_start_seconds', detail: 'coldStartSeconds', value: 41.5 },
    { family: 'trigger_consumers_per_replica_suggested', detail: 'consumersPerReplicaSuggested', value: 4 },
  ])('exports $family only where the decision has $detail', async ({ family, detail, value }) => {
    const { metrics, record } = withTriggers();
    record(trigger, decision(12, 3, 'backlog'));
    expect(await values(metrics, family)).toEqual({});
    const named = decision(12, 3, 'backlog');
    record(trigger, { ...named, explanation: { ...named.explanation, details: { [detail]: value } } });
    expect(await values(metrics, family)).toEqual({ '': value });
  });

  it('keeps one winning_term series per trigger: the current winner', async () => {
    const { metrics, record } = withTriggers();
    const other = { ...trigger, id: 'ns/so2/def456', name: 'so2' } as Trigger;
    record(trigger, decision(12, 3, 'backlog'));
    record(other, decision(0, 1, 'minReplicas'));
    expect(await values(metrics, 'trigger_winning_term')).toEqual({ backlog: 1, minReplicas: 1 });
    record(trigger, decision(0, 3, 'hold', undefined, 3));
    expect((await lines(metrics, 'trigger_winning_term')).sort()).toEqual([
      'keda_inference_scaler_trigger_winning_term{namespace="ns",scaled_object="so",trigger="abc123",term="hold"} 1',
      'keda_inference_scaler_trigger_winning_term{namespace="ns",scaled_object="so2",trigger="def456",term="minReplicas"} 1',
    ]);
  });

  it('exports demand only for the terms of the last decision, and optional signals only when known', async () => {
    const { metrics, record } = withTriggers();
    record(trigger, decision(10, 2, 'backlog', 1));
    expect(await values(metrics, 'trigger_demand_replicas')).toEqual({ backlog: 2 });
    record(trigger, decision(0, 4, 'hold', undefined, 4));
    expect(await values(metrics, 'trigger_demand_replicas')).toEqual({ backlog: 0, hold: 4 });
    // No arrival estimate in this decision: no stale series from the one before.
    expect(await values(metrics, 'trigger_arrival_rate_per_second')).toEqual({});
    expect(await values(metrics, 'trigger_busy_gpus')).toEqual({});
    record(trigger, decision(0, 1, 'minReplicas'));
    expect(await values(metrics, 'trigger_demand_replicas')).toEqual({ backlog: 0 });
  });

  it('labels series with namespace, ScaledObject and the metadata hash only', async () => {
    const { metrics, record } = withTriggers();
    record(trigger, decision(4, 1, 'backlog'));
    expect(await lines(metrics, 'trigger_backlog')).toEqual([
      'keda_inference_scaler_trigger_backlog{namespace="ns",scaled_object="so",trigger="abc123"} 4',
    ]);
  });

  it('drops every series of a trigger the engine no longer holds', async () => {
    const { metrics, last, record } = withTriggers();
    record(trigger, decision(7, 2, 'backlog'));
    last.delete(trigger.id);
    for (const name of TRIGGER_GAUGES) {
      expect(await values(metrics, name)).toEqual({});
    }
    record(trigger, decision(7, 2, 'backlog'));
    expect(await values(metrics, 'trigger_backlog')).toEqual({ '': 7 });
    expect(await values(metrics, 'trigger_winning_term')).toEqual({ backlog: 1 });
  });

  it('leaves the backlog out for a trigger with no queue (GPU only), where a 0 would read as an empty queue', async () => {
    const { metrics, record } = withTriggers();
    record({ ...trigger, sources: [{ kind: 'gpu' }] } as unknown as Trigger, decision(0, 3, 'backlog'));
    expect(await values(metrics, 'trigger_backlog')).toEqual({});
    expect(await values(metrics, 'trigger_desired_replicas')).toEqual({ '': 3 });
    record({ ...trigger, sources: [{ kind: 'gpu' }, { kind: 'kafka' }] } as unknown as Trigger, decision(0, 3, 'backlog'));
    expect(await values(metrics, 'trigger_backlog')).toEqual({ '': 0 });
  });

  it('leaves every per-trigger family out with triggerMetrics: false (TRIGGER_METRICS=false), and keeps the rest', async () => {
    const metrics = new ScalerMetrics(undefined, { defaultMetrics: false, triggerMetrics: false });
    metrics.observeTriggers(() => [{ trigger, decision: decision(7, 2, 'backlog') }]);
    metrics.observeCacheSize(() => 3);
    const text = await metrics.render();
    expect(text).not.toContain('keda_inference_scaler_trigger_');
    expect(text).toContain('keda_inference_scaler_cached_sources 3');
    expect(text).toContain('keda_inference_scaler_grpc_requests_total');
  });

  it('shows streams refused at the limit at 0 from the start, so that an alert on their increase sees the first ones', async () => {
    const text = await new ScalerMetrics(undefined, { defaultMetrics: false }).render();
    expect(text).toContain('keda_inference_scaler_grpc_requests_total{method="StreamIsActive",code="RESOURCE_EXHAUSTED"} 0');
    expect(text).toContain('keda_inference_scaler_grpc_requests_total{method="StreamMetricSpec",code="RESOURCE_EXHAUSTED"} 0');
  });

  it('reports the read cache size as cached_sources', async () => {
    const metrics = new ScalerMetrics(undefined, { defaultMetrics: false });
    metrics.observeCacheSize(() => 42);
    expect(await values(metrics, 'cached_sources')).toEqual({ '': 42 });
  });

  it('reports the reads waiting for the event loop as source_reads_waiting', async () => {
    const metrics = new ScalerMetrics(undefined, { defaultMetrics: false });
    expect(await values(metrics, 'source_reads_waiting')).toEqual({ '': 0 });
    metrics.observeReadsWaiting(() => 17);
    expect(await values(metrics, 'source_reads_waiting')).toEqual({ '': 17 });
  });
});

describe('ScalerMetrics.render', () => {
  it('escapes label values and writes NaN and the infinities as Prometheus reads them', async () => {
    const { metrics, record } = withTriggers();
    const odd = { ...trigger, id: 'ns/we"ird/abc123', name: 'we"ird\\so\nx' } as Trigger;
    const d = decision(Number.NaN, 2, 'backlog', Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY);
    record(odd, d);
    expect(await lines(metrics, 'trigger_backlog')).toEqual([
      'keda_inference_scaler_trigger_backlog{namespace="ns",scaled_object="we\\"ird\\\\so\\nx",trigger="abc123"} NaN',
    ]);
    expect(await lines(metrics, 'trigger_arrival_rate_per_second')).toEqual([
      'keda_inference_scaler_trigger_arrival_rate_per_second{namespace="ns",scaled_object="we\\"ird\\\\so\\nx",trigger="abc123"} +Inf',
    ]);
    expect(await lines(metrics, 'trigger_demand_replicas')).toContain(
      'keda_inference_scaler_trigger_demand_replicas{namespace="ns",scaled_object="we\\"ird\\\\so\\nx",trigger="abc123",term="hold"} -Inf',
    );
  });

  it('serves the registry families first, then each per-trigger family once with its HELP and TYPE', async () => {
    const { metrics, record } = withTriggers();
    record(trigger, decision(4, 1, 'backlog'));
    const text = await metrics.render();
    expect(text.indexOf('# TYPE keda_inference_scaler_grpc_requests_total counter')).toBeGreaterThanOrEqual(0);
    expect(text.indexOf('# TYPE keda_inference_scaler_grpc_requests_total counter')).toBeLessThan(
      text.indexOf('# TYPE keda_inference_scaler_trigger_backlog gauge'),
    );
    for (const name of TRIGGER_GAUGES) {
      expect(text.split(`# TYPE keda_inference_scaler_${name} gauge\n`)).toHaveLength(2);
      expect(text.split(`# HELP keda_inference_scaler_${name} `)).toHaveLength(2);
    }
  });

  it('streams a large fleet in chunks of whole lines, across turns of the event loop', async () => {
    const { metrics, record } = withTriggers();
    for (let i = 0; i < 2_500; i++)
      record({ ...trigger, id: `ns/so-${i}/h${i}`, name: `so-${i}` } as Trigger, decision(i, 1 + (i % 4), 'backlog'));
    const chunks: string[] = [];
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    for await (const chunk of metrics.exposition()) chunks.push(chunk);
    clearInterval(ticker);
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks) expect(chunk.endsWith('\n')).toBe(true);
    expect(turns).toBeGreaterThan(0);
    const served = await lines(metrics, 'trigger_backlog');
    expect(served).toHaveLength(2_500);
    expect(served[2_499]).toBe(
      'keda_inference_scaler_trigger_backlog{namespace="ns",scaled_object="so-2499",trigger="h2499"} 2499',
    );
    expect(chunks.join('')).toBe(await metrics.render());
  });
});

describe('ScalerMetrics with an OpenMetrics registry', () => {
  it('refuses per-trigger families, which are written in the Prometheus text format', () => {
    const openMetrics = () => {
      const registry = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>();
      registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      return registry as unknown as Registry;
    };
    expect(() => new ScalerMetrics(openMetrics(), { defaultMetrics: false })).toThrow(/Prometheus text format/);
    expect(() => new ScalerMetrics(openMetrics(), { defaultMetrics: false, triggerMetrics: false })).not.toThrow();
  });
});
