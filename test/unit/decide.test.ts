import { describe, expect, it } from 'vitest';
import { ceilSafe, decide, emptyHistory, sameDecision, slidingMax, within } from '../../src/model/decide.ts';
import type { Signals } from '../../src/model/types.ts';
import type { ScalingConfig } from '../../src/trigger/types.ts';

const scaling: ScalingConfig = {
  messagesPerReplica: 5,
  throughputPerReplica: undefined,
  coldStartSeconds: 60,
  drainSeconds: 60,
  activationBacklog: 0,
  minReplicas: 1,
  maxReplicas: 100,
  keepWarm: 0,
};

const run = (signals: Signals, overrides: Partial<ScalingConfig> = {}) =>
  decide({ signals, scaling: { ...scaling, ...overrides }, history: emptyHistory(), nowMs: 0 }).decision;

describe('ceilSafe', () => {
  it.each([
    [7 / 0.7, 10],
    [0.1 + 0.2, 1],
    [3.000001, 4],
    [4, 4],
    [0, 0],
  ])('ceilSafe(%d) = %d', (x, expected) => expect(ceilSafe(x)).toBe(expected));
});

describe('decide without rates (KEDA queue rule)', () => {
  it.each([
    // backlog, messagesPerReplica, min, max, desired
    [0, 5, 1, 100, 1],
    [1, 5, 1, 100, 1],
    [23, 5, 1, 100, 5],
    [1000, 5, 1, 100, 100],
    [1000, 5, 1, 50, 50],
    [7, 0.7, 1, 100, 10],
    [3, 5, 2, 100, 2],
  ])('backlog %d, %d per replica, bounds [%d, %d] -> %d', (backlog, messagesPerReplica, minReplicas, maxReplicas, desired) => {
    const d = run({ backlog }, { messagesPerReplica, minReplicas, maxReplicas });
    expect(d.desiredReplicas).toBe(desired);
  });

  it('is active above the activation backlog only', () => {
    expect(run({ backlog: 0 }).active).toBe(false);
    expect(run({ backlog: 1 }).active).toBe(true);
    expect(run({ backlog: 10 }, { activationBacklog: 10 }).active).toBe(false);
    expect(run({ backlog: 11 }, { activationBacklog: 10 }).active).toBe(true);
  });

  it('caps at the replica cap and says so', () => {
    const d = run({ backlog: 100, replicaCap: 3 });
    expect(d.desiredReplicas).toBe(3);
    expect(d.explanation.winner).toBe('replicaCap');
  });

  it('takes the larger of backlog and GPU demand, and stays active while GPUs are busy', () => {
    const d = run({ backlog: 0, busyGpus: 7, gpuTargetUtilization: 0.7, gpuActivationThreshold: 0.2 });
    expect(d.desiredReplicas).toBe(10);
    expect(d.explanation.winner).toBe('gpu');
    expect(d.active).toBe(true);
    expect(run({ backlog: 0, busyGpus: 0.1, gpuTargetUtilization: 0.7, gpuActivationThreshold: 0.2 }).active).toBe(false);
  });
});

describe('decide with rates (cold-start aware)', () => {
  const withRates = { ...scaling, throughputPerReplica: 2 };
  // One decision from a history where the fleet of `asked` replicas was asked for at `askedAtMs`.
  const at = (signals: Signals, asked: number, askedAtMs: number, nowMs: number, overrides: Partial<ScalingConfig> = {}) =>
    decide({
      signals,
      scaling: { ...withRates, ...overrides },
      history: { ...emptyHistory(), lastActive: asked > 0, lastDesiredReplicas: asked, recentAsks: asked > 0 ? [{ atMs: askedAtMs, replicas: asked }] : [] },
      nowMs,
    }).decision;

  it.each([
    // B, λ, ready consumers, μ=2, C=60, T=60: B' = B + λC − μ·ready·C; D = ceil((λ + B'/T) / μ)
    { B: 100, lambda: 0, ready: 0, projected: 100, desired: 1 }, // ceil((0 + 100/60) / 2) = 1
    { B: 100, lambda: 4, ready: 0, projected: 340, desired: 5 }, // ceil((4 + 340/60) / 2) = ceil(4.83)
    { B: 600, lambda: 0, ready: 0, projected: 600, desired: 5 }, // ceil(10 / 2)
    { B: 100, lambda: 4, ready: 1, projected: 220, desired: 4 }, // 100 + 240 − 120; ceil((4 + 3.67) / 2)
  ])('B $B, λ $lambda, ready $ready: B′ = $projected, D = $desired', ({ B, lambda, ready, projected, desired }) => {
    const d = at({ backlog: B, arrivalRatePerSecond: lambda, consumers: ready }, ready, -3_600_000, 0);
    expect(d.explanation.details.projectedBacklog).toBe(projected);
    expect(d.desiredReplicas).toBe(desired);
  });

  it('adds no replica when the running fleet drains the backlog before a new one could serve', () => {
    // 3 ready replicas serve 360 in C = 60 s; B + λC = 50 + 60 = 110: B' < 0.
    const d = at({ backlog: 50, arrivalRatePerSecond: 1, consumers: 3 }, 3, -3_600_000, 0);
    expect(d.explanation.details.projectedBacklog).toBeLessThan(0);
    expect(d.desiredReplicas).toBeLessThanOrEqual(3);
  });

  it('does not ask again for replicas that are still starting', () => {
    // 5 asked 30 s ago, none ready yet: they serve the last 30 s of the horizon.
    const d = at({ backlog: 400, arrivalRatePerSecond: 4, consumers: 0 }, 5, -30_000, 0);
    // B' = 400 + 240 − 2·5·30 = 340 -> ceil((4 + 340/60) / 2) = 5: nothing new.
    expect(d.explanation.details.startingReplicas).toBe(5);
    expect(d.desiredReplicas).toBe(5);
  });

  it('falls back to KEDA’s rule while the throughput is unknown', () => {
    const d = run({ backlog: 23, arrivalRatePerSecond: 3 });
    expect(d.desiredReplicas).toBe(5);
    expect(String(d.explanation.details.rule)).toContain('messagesPerReplica');
  });

  it('learns μ from served counters while the fleet is saturated', () => {
    let history = emptyHistory();
    const cfg = { ...scaling, keepWarm: 'auto' as const };
    // 2 consumers, backlog >= 2·5 all along, 3 messages per second served: μ = 1.5.
    for (let s = 0; s <= 60; s++) {
      history = decide({ signals: { backlog: 30, servedTotal: 3 * s, consumers: 2 }, scaling: cfg, history, nowMs: s * 1000 }).history;
    }
    const out = decide({ signals: { backlog: 0, servedTotal: 183, consumers: 2 }, scaling: cfg, history, nowMs: 61_000 });
    expect(out.decision.explanation.details.throughputPerReplica).toBe(1.5);
  });
});

describe('keep-warm and prewarm', () => {
  const auto = { ...scaling, keepWarm: 'auto' as const, coldStartSeconds: 60 };
  const replay = (busyIdle: readonly [number, number][]) => {
    let history = emptyHistory();
    let t = 0;
    for (const [busy, idle] of busyIdle) {
      history = decide({ signals: { backlog: 5 }, scaling: auto, history, nowMs: t * 1000 }).history;
      t += busy;
      history = decide({ signals: { backlog: 0 }, scaling: auto, history, nowMs: t * 1000 }).history;
      t += idle;
    }
    return { history, t };
  };

  it.each([
    // Few gaps seen: keep warm for the break-even K = C + C·max(1, C/T).
    { T: 60, K: 120 }, // C within the objective: 2C
    { T: 30, K: 180 },
    { T: 15, K: 300 }, // a cold start that breaks a 15 s objective is worth 5 cold-start-seconds
  ])('keeps warm for the break-even K until it has seen enough gaps (objective $T s: $K s)', ({ T, K }) => {
    const cfg = { ...auto, drainSeconds: T };
    let history = decide({ signals: { backlog: 5 }, scaling: cfg, history: emptyHistory(), nowMs: 0 }).history;
    history = decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: 10_000 }).history;
    const at = (idle: number) => decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: (10 + idle) * 1000 }).decision;
    expect(at(K - 1).active).toBe(true);
    expect(at(K - 1).explanation.details).toMatchObject({ coldStartCostSeconds: K, keepWarmSeconds: K, keepWarmSource: 'break-even' });
    expect(at(K + 1).active).toBe(false);
  });

  it('bridges gaps that a tight objective makes worth bridging', () => {
    // Gaps of 150 s: a cold start costs K = 120 at T = 60 (scale to zero at once), 300 at T = 15 (bridge).
    const gaps = [150, 150, 150, 900];
    const idleAfter = (T: number, idle: number) => {
      const cfg = { ...auto, drainSeconds: T };
      return decide({ signals: { backlog: 0 }, scaling: cfg, history: { ...emptyHistory(), lastWorkAtMs: 0, idleSinceMs: 0, idleGapsSeconds: gaps }, nowMs: idle * 1000 }).decision;
    };
    expect(idleAfter(60, 1).active).toBe(false);
    expect(idleAfter(15, 149).active).toBe(true);
    expect(idleAfter(15, 151).active).toBe(false);
  });

  it('keeps warm for a fixed keepWarm whatever the objective', () => {
    const cfg = { ...auto, keepWarm: 45, drainSeconds: 15 };
    const history = { ...emptyHistory(), lastWorkAtMs: 0, idleSinceMs: 0 };
    expect(decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: 44_000 }).decision.active).toBe(true);
    expect(decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: 46_000 }).decision.active).toBe(false);
  });

  it('keeps warm through short gaps it has learned and scales to zero at once after long ones', () => {
    const short = replay([[10, 20], [10, 25], [10, 30], [10, 0]]);
    const d = decide({ signals: { backlog: 0 }, scaling: auto, history: short.history, nowMs: (short.t + 29) * 1000 }).decision;
    expect(d.active).toBe(true);
    expect(d.explanation.details.keepWarmSeconds).toBe(30);
    const long = replay([[10, 900], [10, 1300], [10, 2000], [10, 0]]);
    expect(decide({ signals: { backlog: 0 }, scaling: auto, history: long.history, nowMs: (long.t + 1) * 1000 }).decision.active).toBe(false);
  });

  it('prewarms one cold start before a regular gap ends, from the second regular gap on', () => {
    const { history, t } = replay([[10, 590], [10, 590], [10, 0]]);
    const ask = (idle: number) => decide({ signals: { backlog: 0 }, scaling: auto, history, nowMs: (t + idle) * 1000 }).decision;
    expect(ask(500).active).toBe(false);
    expect(ask(535).active).toBe(true);
    expect(ask(535).explanation.activeReason).toContain('prewarm');
    expect(ask(651).active).toBe(false); // gave up one cold start after the longest gap
  });

  it('does not prewarm after irregular gaps', () => {
    const { history, t } = replay([[10, 400], [10, 590], [10, 0]]);
    expect(decide({ signals: { backlog: 0 }, scaling: auto, history, nowMs: (t + 535) * 1000 }).decision.active).toBe(false);
  });
});

describe('the same decision for the same situation', () => {
  it('gives an idle trigger the same decision call after call: its reasons name moments, not durations', () => {
    const cfg = { ...scaling, minReplicas: 0, keepWarm: 120 };
    let history = decide({ signals: { backlog: 5 }, scaling: cfg, history: emptyHistory(), nowMs: 0 }).history;
    history = decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: 10_000 }).history;
    const warm = decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: 20_000 });
    const stillWarm = decide({ signals: { backlog: 0 }, scaling: cfg, history: warm.history, nowMs: 30_000 });
    expect(warm.decision.active).toBe(true);
    expect(warm.decision.explanation.activeReason).toBe('idle since 1970-01-01T00:00:10.000Z: keep warm until 1970-01-01T00:02:10.000Z (120 s, fixed)');
    expect(sameDecision(warm.decision, stillWarm.decision)).toBe(true);

    const cold = decide({ signals: { backlog: 0 }, scaling: cfg, history: stillWarm.history, nowMs: 131_000 });
    const stillCold = decide({ signals: { backlog: 0 }, scaling: cfg, history: cold.history, nowMs: 141_000 });
    expect(cold.decision.active).toBe(false);
    expect(cold.decision.explanation.activeReason).toBe('idle since 1970-01-01T00:00:10.000Z: kept warm until 1970-01-01T00:02:10.000Z (120 s, fixed)');
    expect(sameDecision(stillWarm.decision, cold.decision)).toBe(false);
    expect(sameDecision(cold.decision, stillCold.decision)).toBe(true);
  });

  it('says "never" for a keep-warm window past the last moment a date holds', () => {
    const cfg = { ...scaling, minReplicas: 0, keepWarm: 1e13 };
    const history = { ...emptyHistory(), lastWorkAtMs: 0, idleSinceMs: 0 };
    const { decision } = decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: 1000 });
    expect(decision.active).toBe(true);
    expect(decision.explanation.activeReason).toMatch(/^idle since 1970-01-01T00:00:00.000Z: keep warm until never/);
  });

  it('tells decisions apart by any figure, a signal that changed nothing else included', () => {
    const tenWaiting = run({ backlog: 10, arrivalRatePerSecond: 1 });
    expect(sameDecision(tenWaiting, run({ backlog: 10, arrivalRatePerSecond: 1 }))).toBe(true);
    // Without μ the arrival rate moves no figure but itself.
    const faster = run({ backlog: 10, arrivalRatePerSecond: 2 });
    expect(faster.desiredReplicas).toBe(tenWaiting.desiredReplicas);
    expect(sameDecision(tenWaiting, faster)).toBe(false);
    // A figure present in one and absent in the other.
    expect(sameDecision(run({ backlog: 10 }), tenWaiting)).toBe(false);
    expect(sameDecision(tenWaiting, run({ backlog: 10 }))).toBe(false);
    expect(sameDecision(tenWaiting, run({ backlog: 11, arrivalRatePerSecond: 1 }))).toBe(false);
  });
});

describe('within (the asks of one cold start)', () => {
  it('keeps the list itself while no mark has expired, and drops the expired ones', () => {
    const marks = [
      { atMs: 0, replicas: 3 },
      { atMs: 30_000, replicas: 1 },
    ];
    expect(within(marks, 50_000, 60_000)).toBe(marks);
    expect(within(marks, 70_000, 60_000)).toEqual([{ atMs: 30_000, replicas: 1 }]);
    expect(within(marks, 100_000, 60_000)).toEqual([]);
  });
});

describe('slidingMax (the scale-down hold window)', () => {
  it('equals the naive maximum over the window, keeping only marks that can still win', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const windowMs = 60_000;
    const all: { atMs: number; replicas: number }[] = [];
    let kept: { atMs: number; replicas: number }[] = [];
    let atMs = 0;
    for (let i = 0; i < 2000; i++) {
      atMs += Math.floor(random() * 3000);
      const mark = { atMs, replicas: Math.floor(random() * 20) };
      all.push(mark);
      kept = slidingMax(kept, mark, windowMs);
      const naive = Math.max(...all.filter((m) => atMs - m.atMs < windowMs).map((m) => m.replicas));
      expect(kept[0]!.replicas).toBe(naive);
      for (let j = 1; j < kept.length; j++) expect(kept[j]!.replicas).toBeLessThan(kept[j - 1]!.replicas);
    }
    expect(kept.length).toBeLessThanOrEqual(20);
  });
});
