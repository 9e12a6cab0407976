import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/model/types.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import type { Trigger } from '../../src/trigger/types.ts';

const trigger = {
  id: 'ns/so/abc123',
  name: 'so',
  namespace: 'ns',
  metricName: 'inference-desired-replicas',
  sources: [],
  // Metrics read only the identity fields; scaling plays no part here.
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

/** Value of each series of a metric, keyed by its labels' term (or '' without one). */
async function values(metrics: ScalerMetrics, name: string): Promise<Record<string, number>> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === `keda_inference_scaler_${name}`);
  const out: Record<string, number> = {};
  for (const v of (metric?.values ?? []) as { labels: Record<string, string | number>; value: number }[]) {
    out[String(v.labels.term ?? '')] = v.value;
  }
  return out;
}

/** Metrics that read the last decisions from `last` (trigger id -> evaluation), as the engine's are. */
function withTriggers() {
  const metrics = new ScalerMetrics(undefined, { defaultMetrics: false });
  const last = new Map<string, { trigger: Trigger; decision: Decision }>();
  metrics.observeTriggers(() => last.values());
  const record = (t: Trigger, d: Decision) => last.set(t.id, { trigger: t, decision: d });
  return { metrics, last, record };
}

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

  it('keeps one winning_term series per trigger: the current winner', async () => {
    const { metrics, record } = withTriggers();
    const other = { ...trigger, id: 'ns/so2/def456', name: 'so2' } as Trigger;
    record(trigger, decision(12, 3, 'backlog'));
    record(other, decision(0, 1, 'minReplicas'));
    expect(await values(metrics, 'trigger_winning_term')).toEqual({ backlog: 1, minReplicas: 1 });
    record(trigger, decision(0, 3, 'hold', undefined, 3));
    const text = await metrics.registry.getSingleMetricAsString('keda_inference_scaler_trigger_winning_term');
    const lines = text.split('\n').filter((l) => l.startsWith('keda_inference_scaler_trigger_winning_term{'));
    expect(lines.sort()).toEqual([
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
    const text = await metrics.registry.getSingleMetricAsString('keda_inference_scaler_trigger_backlog');
    expect(text).toContain('keda_inference_scaler_trigger_backlog{namespace="ns",scaled_object="so",trigger="abc123"} 4');
  });

  it('drops every series of a trigger the engine no longer holds', async () => {
    const { metrics, last, record } = withTriggers();
    record(trigger, decision(7, 2, 'backlog'));
    last.delete(trigger.id);
    for (const name of ['trigger_backlog', 'trigger_desired_replicas', 'trigger_active', 'trigger_demand_replicas', 'trigger_winning_term']) {
      expect(await values(metrics, name)).toEqual({});
    }
    record(trigger, decision(7, 2, 'backlog'));
    expect(await values(metrics, 'trigger_backlog')).toEqual({ '': 7 });
    expect(await values(metrics, 'trigger_winning_term')).toEqual({ backlog: 1 });
  });

  it('leaves every per-trigger family out with triggerMetrics: false (TRIGGER_METRICS=false), and keeps the rest', async () => {
    const metrics = new ScalerMetrics(undefined, { defaultMetrics: false, triggerMetrics: false });
    metrics.observeTriggers(() => [{ trigger, decision: decision(7, 2, 'backlog') }]);
    metrics.observeCacheSize(() => 3);
    const text = await metrics.registry.metrics();
    expect(text).not.toContain('keda_inference_scaler_trigger_');
    expect(text).toContain('keda_inference_scaler_cached_sources 3');
    expect(text).toContain('keda_inference_scaler_grpc_requests_total');
  });

  it('reports the read cache size as cached_sources', async () => {
    const metrics = new ScalerMetrics(undefined, { defaultMetrics: false });
    metrics.observeCacheSize(() => 42);
    expect(await values(metrics, 'cached_sources')).toEqual({ '': 42 });
  });
});
