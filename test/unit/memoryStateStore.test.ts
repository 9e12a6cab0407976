import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MemoryStateStore } from '../../src/state/memory.ts';
import type { StateStore } from '../../src/state/types.ts';
import { StateStoreMetrics } from '../../src/telemetry/metrics.ts';

function store(now: () => number, registry = new Registry()) {
  return new MemoryStateStore<{ gaps: number[] }>({
    writerId: 'only-replica',
    scalerVersion: '0.1.0',
    format: 1,
    leaseMs: 3000,
    recordTtlMs: 60_000,
    metrics: new StateStoreMetrics(registry),
    now,
  });
}

describe("MemoryStateStore: one process, today's behaviour", () => {
  it('is always the writer, up, and never calls a subscriber or health listener', async () => {
    const s = store(() => 0);
    expect(s.kind).toBe('memory');
    const shared: StateStore<{ gaps: number[] }> = s;
    expect(await shared.acquireLease('a')).toBe(true);
    expect(await shared.acquireLease('a')).toBe(true);
    expect(shared.health).toBe('up');
    const calls: unknown[] = [];
    shared.subscribe((key) => calls.push(key));
    shared.onHealthChange((h) => calls.push(h));
    await s.publish('a', { gaps: [1] }, 0);
    expect(calls).toEqual([]);
  });

  it('reads back the latest record, the payload itself (no copy), with the envelope', async () => {
    const s = store(() => 1000);
    const payload = { gaps: [4, 8] };
    expect(await s.read('t')).toBeUndefined();
    expect(await s.publish('t', { gaps: [] }, 500)).toMatchObject({ outcome: 'published' });
    expect(await s.publish('t', payload, 900)).toEqual({ outcome: 'published', storedAtMs: 1000 });
    const record = await s.read('t');
    expect(record).toEqual({ format: 1, scalerVersion: '0.1.0', writerId: 'only-replica', atMs: 900, storedAtMs: 1000, payload });
    expect(record!.payload).toBe(payload);
  });

  it('forgets a record not published again within recordTtlMs, and sweeps keys no one asks about', async () => {
    let nowMs = 0;
    const registry = new Registry();
    const s = store(() => nowMs, registry);
    await s.publish('asked', { gaps: [] }, 0);
    await s.publish('forgotten', { gaps: [] }, 0);
    nowMs = 59_999;
    expect(await s.read('asked')).toBeDefined();
    nowMs = 60_000;
    expect(await s.read('asked')).toBeUndefined();
    // 'forgotten' is never read again: the next publish's sweep drops it.
    await s.publish('fresh', { gaps: [] }, nowMs);
    expect(await registry.getSingleMetricAsString('keda_inference_scaler_state_leases_held')).toMatch(/ 1$/m);
    expect(await registry.getSingleMetricAsString('keda_inference_scaler_state_store_up')).toMatch(/ 1$/m);
  });
});
