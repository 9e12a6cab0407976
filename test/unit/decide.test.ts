import { describe, expect, it } from 'vitest';
import {
  CLOCK_STEP_BACK_MS,
  RESUME_GAP_MS,
  ceilSafe,
  decide,
  emptyHistory,
  learnedAtMomentOf,
  resumedHistory,
  sameDecision,
} from '../../src/model/decide.ts';
import { slidingMax, within } from '../../src/model/marks.ts';
import { backlogDemand, computedDemands, pileUp, round } from '../../src/model/demand.ts';
import { triggerHistorySchema } from '../../src/model/historySchema.ts';
import type { Signals, TriggerHistory } from '../../src/model/types.ts';
import type { ScalingConfig } from '../../src/trigger/types.ts';
import { scaling } from '../support/scaling.ts';

const run = (signals: Signals, overrides: Partial<ScalingConfig> = {}) =>
  decide({ signals, scaling: { ...scaling, ...overrides }, history: emptyHistory(), nowMs: 0 }).decision;

/** One decision for a fleet of 4 asked for and serving, with `history` on top. */
const withFour = (signals: Signals, withScaling: ScalingConfig, history: Partial<TriggerHistory> = {}) =>
  decide({
    signals,
    scaling: withScaling,
    history: { ...emptyHistory(), lastActive: true, lastDesiredReplicas: 4, recentAsks: [], ...history },
    nowMs: 0,
  }).decision;

// Found by review: histories the model wrote that the store's schema refuses, so that no replica
// read them back (a restarted one started from nothing, followers never got the writer's state).
describe('a history the store reads back', () => {
  const readable = (history: TriggerHistory) => triggerHistorySchema.safeParse(history).error?.issues ?? [];

  it('remembers no demand past maxReplicas, however large the backlog', () => {
    const out = decide({
      signals: { backlog: 1_000_000 },
      scaling: { ...scaling, maxReplicas: 50 },
      history: emptyHistory(),
      nowMs: 1e12,
    });
    expect(out.decision.desiredReplicas).toBe(50);
    expect(readable(out.history)).toEqual([]);
    expect(out.history.busyPeakReplicas).toBe(50);
  });

  it('keeps at most 64 demands and asks within a long cold start, holding no fewer replicas', () => {
    let history: TriggerHistory = emptyHistory();
    const s = { ...scaling, coldStartSeconds: 120, maxReplicas: 200 };
    for (let i = 0; i < 80; i++) {
      const nowMs = 1e12 + i * 1500;
      history = decide({ signals: { backlog: 500 - 5 * i, consumers: 100 }, scaling: s, history, nowMs }).history;
    }
    expect(readable(history)).toEqual([]);
    expect(history.recentDemands).toHaveLength(64);
    expect(history.recentDemands![0]!.replicas).toBe(100); // the first decision's, still within C
    let asks: TriggerHistory = emptyHistory();
    for (let i = 0; i < 80; i++) {
      const nowMs = 1e12 + i * 1500;
      asks = decide({ signals: { backlog: 5 * (i + 1) }, scaling: s, history: asks, nowMs }).history;
    }
    expect(readable(asks)).toEqual([]);
    expect(asks.recentAsks!.reduce((n, a) => n + a.replicas, 0)).toBe(80);
  });

  it('records no negative burst rise from replicas whose clocks differ by seconds', () => {
    const s = { ...scaling, throughputPerReplica: 2.5, drainSeconds: 15 };
    const signals = (arrivedTotal: number) => ({ backlog: 30, arrivedTotal });
    let history: TriggerHistory = emptyHistory();
    history = decide({ signals: signals(0), scaling: s, history, nowMs: 1_000_000 }).history;
    // One replica, 5 s ahead, sees the first 150 requests: the episode begins on its clock.
    history = decide({ signals: signals(150), scaling: s, history, nowMs: 1_006_000 }).history;
    expect(history.burstEpisode?.atMs).toBe(1_006_000);
    // The other, 2 s later on its own clock, sees 300: a higher peak, 4 s before the episode began.
    history = decide({ signals: signals(300), scaling: s, history, nowMs: 1_002_000 }).history;
    expect(history.burstEpisode?.size).toBe(300);
    expect(history.burstEpisode?.riseSeconds).toBe(0);
    expect(readable(history)).toEqual([]);
    // A history written before the rise was kept reads back, and one with a negative rise does not.
    const { riseSeconds: _, ...older } = history.burstEpisode!;
    expect(readable({ ...history, burstEpisode: older })).toEqual([]);
    expect(readable({ ...history, burstEpisode: { ...older, riseSeconds: -3 } })).not.toEqual([]);
  });

  it('records no negative idle gap from replicas whose clocks differ by seconds', () => {
    const s = { ...scaling, keepWarm: 'auto' as const };
    let history: TriggerHistory = emptyHistory();
    const step = (signals: Signals, nowMs: number) => (history = decide({ signals, scaling: s, history, nowMs }).history);
    step({ backlog: 10 }, 1_000_000);
    step({ backlog: 0 }, 1_015_000); // one replica, 5 s ahead
    step({ backlog: 3 }, 1_012_000); // the other, 2 s later
    expect(history.idleGapsSeconds).toEqual([0]);
    expect(readable(history)).toEqual([]);
  });
});

describe('ceilSafe', () => {
  it.each([
    [7 / 0.7, 10],
    [0.1 + 0.2, 1],
    [3.000001, 4],
    [4, 4],
    [0, 0],
  ])('ceilSafe(%d) = %d', (x, expected) => expect(ceilSafe(x)).toBe(expected));
});

describe('pileUp: the arrivals’ noise a fleet serving beyond λ lets pile up over C', () => {
  // 2·sqrt(λt) − spare·t, at most, for t within C; noise = 2·sqrt(λC).
  it.each([
    { what: 'no spare rate: all of it', lambda: 1, spare: 0, C: 60, expected: 2 * Math.sqrt(60) },
    { what: 'short of λ: all of it', lambda: 1, spare: -0.5, C: 60, expected: 2 * Math.sqrt(60) },
    { what: 'peak within C: λ / spare', lambda: 0.227, spare: 0.12, C: 56, expected: 0.227 / 0.12 },
    { what: 'a large spare rate: next to nothing', lambda: 1, spare: 11, C: 60, expected: 1 / 11 },
    // λ = 4, spare 0.1: the peak would come at t = 400 s; at C = 60 the walk is 2·sqrt(240) − 6.
    { what: 'peak past C: the walk at C', lambda: 4, spare: 0.1, C: 60, expected: 2 * Math.sqrt(240) - 6 },
  ])('$what', ({ lambda, spare, C, expected }) => {
    expect(pileUp(2 * Math.sqrt(lambda * C), lambda, spare, C)).toBeCloseTo(expected, 9);
  });
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

  // Found by review: with the messages in flight left out of the backlog (excludeUnacknowledged,
  // scaleOnInFlight false) or under activationBacklog, a replica at work read as idle, and KEDA
  // could scale it to zero mid-request once the keep-warm window ran out.
  it.each([
    { what: 'left out of the backlog, nothing ready', signals: { backlog: 0, waiting: 0, inFlight: 4 }, overrides: {} },
    { what: 'within activationBacklog', signals: { backlog: 2, waiting: 0, inFlight: 2 }, overrides: { activationBacklog: 5 } },
    // Found by review: in flight read as waiting inside the replicas, none was left to keep them active.
    {
      what: 'acknowledged before the work (all of it read as waiting inside the replicas)',
      signals: { backlog: 4, waiting: 0, inFlight: 4, consumers: 1 },
      overrides: { activationBacklog: 5, acknowledgement: 'before-work' as const },
    },
    {
      what: 'past the concurrency, the consumers read as none (basic.get workers)',
      signals: { backlog: 0, waiting: 0, inFlight: 4, consumers: 0 },
      overrides: { concurrencyPerReplica: 2 },
    },
  ])('stays active while messages are in flight, $what, past the keep-warm window', ({ signals, overrides }) => {
    const cfg = { ...scaling, keepWarm: 0, ...overrides };
    let history = decide({ signals: { backlog: 20 }, scaling: cfg, history: emptyHistory(), nowMs: 0 }).history;
    const busy = decide({ signals, scaling: cfg, history, nowMs: 60_000 });
    expect(busy.decision.active).toBe(true);
    expect(busy.decision.explanation.activeReason).toBe(
      `${signals.inFlight} in flight: a workload at work is not scaled to zero`,
    );
    history = busy.history;
    expect(decide({ signals: { ...signals, inFlight: 0 }, scaling: cfg, history, nowMs: 61_000 }).decision.active).toBe(false);
  });

  // Found by review: at zero, what is in flight is another consumer's or a dead one's (SQS keeps it
  // in flight until its visibility timeout); with scaleOnInFlight false it woke the workload.
  it('does not wake a workload scaled to zero for messages in flight alone', () => {
    const signals = { backlog: 0, waiting: 0, inFlight: 3, consumers: 1 };
    const d = decide({
      signals,
      scaling: { ...scaling, keepWarm: 0 },
      history: { ...emptyHistory(), lastActive: false },
      nowMs: 60_000,
    });
    expect(d.decision.active).toBe(false);
    expect(d.decision.explanation.activeReason).not.toMatch(/in flight/);
  });

  // Found by review: answered inactive, the replica stays for KEDA's cooldownPeriod (300 s by
  // default) and takes what comes; a message it held under activationBacklog (or left out of the
  // backlog) was answered inactive, and KEDA scaled the replica to zero mid-request.
  it.each([
    { what: 'left out of the backlog', signals: { backlog: 0, waiting: 0, inFlight: 2, consumers: 1 }, overrides: {} },
    {
      what: 'within activationBacklog',
      signals: { backlog: 3, waiting: 0, inFlight: 3, consumers: 1 },
      overrides: { activationBacklog: 5 },
    },
  ])('keeps a replica answered inactive and not yet gone active while it holds messages, $what', ({ signals, overrides }) => {
    const cfg = { ...scaling, keepWarm: 0, ...overrides };
    const idle = { backlog: 0, waiting: 0, inFlight: 0, consumers: 1 };
    const inactive = decide({ signals: idle, scaling: cfg, history: { ...emptyHistory(), lastActive: true }, nowMs: 0 });
    expect(inactive.decision.active).toBe(false);
    const taken = decide({ signals, scaling: cfg, history: inactive.history, nowMs: 120_000 });
    expect(taken.decision.active).toBe(true);
    expect(taken.decision.explanation.activeReason).toMatch(/in flight: a workload at work is not scaled to zero$/);
    // Scaled to zero (no consumers at a decision), consumers back without an answer of this trigger's are another workload's.
    const gone = decide({ signals: { ...idle, consumers: 0 }, scaling: cfg, history: inactive.history, nowMs: 120_000 });
    expect(decide({ signals, scaling: cfg, history: gone.history, nowMs: 180_000 }).decision.active).toBe(false);
  });

  // Found by review: a scaler restarted without a state store read an SQS workload at work (no
  // consumers counted) as at zero, answered inactive, and KEDA scaled it to zero mid-request.
  it.each([
    { what: 'consumers seen', signals: { backlog: 0, waiting: 0, inFlight: 3, consumers: 1 } },
    { what: 'no consumers counted (SQS)', signals: { backlog: 0, waiting: 0, inFlight: 3 } },
  ])('keeps a workload holding messages active with no answer before, $what', ({ signals }) => {
    const d = decide({ signals, scaling, history: emptyHistory(), nowMs: 0 });
    expect(d.decision.active).toBe(true);
    expect(d.decision.explanation.activeReason).toBe('3 in flight: a workload at work is not scaled to zero');
  });

  // Found by fuzzing (review): a broker's count past what a record holds made a history the store refused.
  it('keeps the consumers it remembers within what a record holds', () => {
    const { history } = decide({ signals: { backlog: 5, consumers: 250_000 }, scaling, history: emptyHistory(), nowMs: 0 });
    expect(history.lastReady).toBe(100_000);
    expect(triggerHistorySchema.safeParse(history).success).toBe(true);
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

  // Busy GPUs size the fleet only where the queues do not see the messages in service: NVML's
  // utilisation counts a GPU whole while one request of its slots runs (docs/gpu.md).
  const gpus = { busyGpus: 8, gpuTargetUtilization: 0.8, gpuActivationThreshold: 0.2 };
  it.each([
    {
      what: 'the queue counts them in flight (management API, SQS): read, not sizing',
      signals: { backlog: 6, waiting: 2, inFlight: 4, consumers: 1, inServiceCounted: true, ...gpus },
      overrides: {},
      sizes: false,
    },
    {
      what: "the queue counts them in its backlog (Kafka's lag): read, not sizing",
      signals: { backlog: 6, inServiceCounted: true, ...gpus },
      overrides: {},
      sizes: false,
    },
    {
      what: 'ready messages alone (a passive declare): sizing',
      signals: { backlog: 2, waiting: 2, consumers: 1, inServiceCounted: false, ...gpus },
      overrides: {},
      sizes: true,
    },
    {
      what: 'workers that acknowledge before the work (what is in flight waits): sizing',
      signals: { backlog: 6, waiting: 2, inFlight: 4, consumers: 1, inServiceCounted: true, ...gpus },
      overrides: { acknowledgement: 'before-work' as const },
      sizes: true,
    },
    { what: 'no queue: sizing', signals: { backlog: 0, ...gpus }, overrides: {}, sizes: true },
  ])('busy GPUs, $what', ({ signals, overrides, sizes }) => {
    const d = run(signals, overrides);
    // The explanation says what the decision read, not what the broker counts (found by review).
    if ('inServiceCounted' in signals) expect(d.explanation.signals.inServiceCounted).toBe(!sizes);
    expect(d.explanation.demands.gpu).toBe(sizes ? 10 : undefined);
    expect(d.explanation.details.gpuReplicasNotSizing).toBe(sizes ? undefined : 10);
    expect(d.desiredReplicas).toBe(sizes ? 10 : d.explanation.demands.backlog);
    expect(d.active).toBe(true);
  });

  it.each([
    { counted: true, idle: true },
    { counted: false, idle: false },
  ])(
    'keeps a workload active while its GPUs are busy, the queue empty; idle for its gaps only where the queue counts what is in service ($counted)',
    ({ counted, idle }) => {
      const history = { ...emptyHistory(), lastWorkAtMs: 50_000, lastActive: true, lastDecisionAtMs: 59_000 };
      const signals = { backlog: 0, waiting: 0, inFlight: 0, consumers: 1, inServiceCounted: counted, ...gpus };
      const out = decide({ signals, scaling, history, nowMs: 60_000 });
      expect(out.decision.active).toBe(true);
      expect(out.decision.explanation.activeReason).toMatch(/^busy GPUs 8/);
      expect(out.history.idleSinceMs).toBe(idle ? 60_000 : undefined);
    },
  );
});

// Found by a review of the simulator's assumptions: a worker with a channel per thread shows several
// consumers a replica, which the model read as replicas.
describe('decide: several consumers a replica (consumersPerReplica)', () => {
  // A fleet that grows from 1 replica to 2 at 60 s while 2 a second arrive and are served, read
  // with the brokers counting `consumers(t)`.
  const grow = (consumers: (t: number) => number, s: ScalingConfig) => {
    let history = emptyHistory();
    const out: ReturnType<typeof decide>[] = [];
    for (let t = 0; t < 180; t++) {
      const signals = {
        backlog: 40,
        waiting: 32,
        inFlight: 8,
        consumers: consumers(t),
        arrivedTotal: 2 * t,
        servedTotal: 2 * t,
        orderedQueues: 1,
      };
      const o = decide({ signals, scaling: s, history, nowMs: 1e12 + t * 1000 });
      out.push(o);
      history = o.history;
    }
    return out;
  };
  const auto = { ...scaling, coldStartSeconds: 'auto' as const };

  it('reads C consumers a replica as one replica: the same decisions and history, μ, k and cold starts learned', () => {
    const one = grow((t) => (t < 60 ? 1 : 2), auto);
    const four = grow((t) => (t < 60 ? 4 : 8), { ...auto, consumersPerReplica: 4 });
    for (let i = 0; i < one.length; i++) {
      expect(four[i]!.decision.desiredReplicas).toBe(one[i]!.decision.desiredReplicas);
      expect(four[i]!.history).toEqual(one[i]!.history);
    }
    const last = one.at(-1)!.history;
    expect(last.serviceEvidence).toBeDefined();
    expect(last.slotsPerReplica).toBeGreaterThan(1);
    expect(last.coldStartSamples?.length).toBeGreaterThan(0);
    // Untold, the same brokers' counts read as four times the replicas: another history.
    expect(grow((t) => (t < 60 ? 4 : 8), auto).at(-1)!.history).not.toEqual(last);
  });

  // Found by review: a replica's channels connecting one by one each made a cold-start sample.
  it('takes one cold-start sample for a replica whose consumers connect one by one', () => {
    const told = { ...auto, consumersPerReplica: 4 };
    const whole = grow((t) => (t < 60 ? 4 : 8), told).at(-1)!.history.coldStartSamples;
    const staggered = grow((t) => (t < 60 ? 4 : Math.min(8, 5 + (t - 60))), told).at(-1)!.history.coldStartSamples;
    expect(whole!.length).toBeGreaterThan(0);
    expect(staggered).toHaveLength(whole!.length);
  });

  // Found by review: Kafka's partitions cap the group's members, and a replica's C members take C.
  it("caps the replicas at the partitions over C: two replicas' eight members take eight partitions", () => {
    const d = decide({
      signals: { backlog: 100_000, consumers: 8, replicaCap: 8 },
      scaling: { ...scaling, consumersPerReplica: 4 },
      history: emptyHistory(),
      nowMs: 0,
    }).decision;
    expect([d.desiredReplicas, d.explanation.winner]).toEqual([2, 'replicaCap']);
  });

  it('reads them as replicas without it: k a quarter of the slots', () => {
    const signals = { backlog: 40, waiting: 24, inFlight: 16, consumers: 16, arrivalRatePerSecond: 2 };
    let history = emptyHistory();
    for (let i = 0; i < 30; i++) history = decide({ signals, scaling, history, nowMs: 1e12 + i * 1000 }).history;
    expect(history.slotsPerReplica).toBeCloseTo(1, 5);
    history = emptyHistory();
    const four = { ...scaling, consumersPerReplica: 4 };
    for (let i = 0; i < 30; i++) history = decide({ signals, scaling: four, history, nowMs: 1e12 + i * 1000 }).history;
    expect(history.slotsPerReplica).toBeCloseTo(4, 5);
  });
});

describe("decide: messages prefetched past a replica's concurrency (concurrencyPerReplica)", () => {
  // 4 replicas whose consumers hold 16 each and serve 4 at once; none ready in the broker.
  const signals: Signals = { backlog: 64, waiting: 0, inFlight: 64, consumers: 4, arrivalRatePerSecond: 1 };
  const withRates = { ...scaling, throughputPerReplica: 0.5, drainSeconds: 30 };
  const asked = (overrides: Partial<ScalingConfig>) => withFour(signals, { ...withRates, ...overrides });

  it('counts them waiting, and asks for the replicas they need; the explanation keeps what was reported', () => {
    const untold = asked({});
    const told = asked({ concurrencyPerReplica: 4 });
    expect(untold.explanation.details.prefetchedWaiting).toBeUndefined();
    expect(told.explanation.details.prefetchedWaiting).toBe(48);
    expect(told.explanation.details.waiting).toBe(48);
    expect(told.explanation.signals).toEqual(signals);
    expect(told.desiredReplicas).toBeGreaterThan(untold.desiredReplicas);
  });

  it("untold, takes the concurrency the consumers' recent minutes read (detectConcurrency) as if told", () => {
    // Minutes of S 8 s: holding 2, 4 and 16 each, serving 0.25, 0.5 and 0.5 a second: c = 4.
    const occupancyMinutes = [
      { serviceSeconds: 8, servedPerConsumer: 0.25, inFlightPerConsumer: 2 },
      { serviceSeconds: 8, servedPerConsumer: 0.5, inFlightPerConsumer: 4 },
      { serviceSeconds: 32, servedPerConsumer: 0.5, inFlightPerConsumer: 16 },
    ];
    const decideWith = (overrides: Partial<ScalingConfig>) =>
      withFour({ ...signals, servedTotal: 1000 }, { ...withRates, ...overrides }, { occupancyMinutes });
    const detected = decideWith({});
    const told = decideWith({ concurrencyPerReplica: 4 });
    expect(detected.explanation.details.detectedConcurrencyPerReplica).toBe(4);
    expect(detected.explanation.details.prefetchedWaiting).toBe(48);
    expect(detected.desiredReplicas).toBe(told.desiredReplicas);
    expect(detected.desiredReplicas).toBeGreaterThan(asked({}).desiredReplicas);
    // Told, the setting stands: nothing detected is shown.
    expect(decideWith({ concurrencyPerReplica: 8 }).explanation.details.detectedConcurrencyPerReplica).toBeUndefined();
    expect(decideWith({ concurrencyPerReplica: 8 }).explanation.details.prefetchedWaiting).toBe(32);
  });

  it.each([
    // [what, concurrencyPerReplica, T, the queue's budget]: k 4 of μ 0.5 a second, S = 8 s.
    ['none waits inside a replica: T', undefined, 30, undefined],
    ['prefetched ones wait: T less one service time', 4, 30, 22],
    ['at least T / 2', 4, 12, 6],
  ] as const)('%s', (_, concurrencyPerReplica, drainSeconds, budget) => {
    const d = asked({ drainSeconds, ...(concurrencyPerReplica !== undefined && { concurrencyPerReplica }) });
    expect(d.explanation.details.queueBudgetSeconds).toBe(budget);
  });
});

describe('decide: workers that acknowledge before the work (acknowledgement before-work)', () => {
  // 4 replicas whose consumers acknowledge a message as they start it and hold 16 more each.
  const signals: Signals = { backlog: 70, waiting: 6, inFlight: 64, consumers: 4, arrivalRatePerSecond: 1 };
  const decideWith = (overrides: Partial<ScalingConfig>) =>
    withFour(signals, { ...scaling, throughputPerReplica: 0.5, drainSeconds: 30, ...overrides });

  it('counts what is in flight waiting inside the replicas, and asks for the replicas it needs', () => {
    const after = decideWith({});
    const before = decideWith({ acknowledgement: 'before-work' });
    expect(after.explanation.details.prefetchedWaiting).toBeUndefined();
    expect(before.explanation.details.prefetchedWaiting).toBe(64);
    expect(before.explanation.details.waiting).toBe(70);
    // The queue's budget: T less one service time (k 5 of μ 0.5 a second: S = 10 s), as for a prefetch.
    expect(before.explanation.details.queueBudgetSeconds).toBe(20);
    expect(before.explanation.signals).toEqual(signals);
    expect(before.desiredReplicas).toBeGreaterThan(after.desiredReplicas);
  });

  it('reads no concurrency from the consumers: none of what they hold is in service', () => {
    const occupancyMinutes = [
      { serviceSeconds: 0.1, servedPerConsumer: 0.25, inFlightPerConsumer: 1 },
      { serviceSeconds: 8, servedPerConsumer: 0.5, inFlightPerConsumer: 4 },
      { serviceSeconds: 32, servedPerConsumer: 0.5, inFlightPerConsumer: 16 },
    ];
    const d = withFour({ ...signals, servedTotal: 1000 }, { ...scaling, acknowledgement: 'before-work' }, { occupancyMinutes });
    expect(d.explanation.details.detectedConcurrencyPerReplica).toBeUndefined();
    expect(d.explanation.details.prefetchedWaiting).toBe(64);
  });
});

describe('decide with rates: the fluid queue (demand.ts)', () => {
  // Found by review: the rule named W′ whenever the projection stood above 0, also when the
  // replicas to keep decided the count.
  it.each([
    [1000, 10, 'fluid queue: W within T'], // the 10 kept serve W within T; W′ would ask 8
    [3000, 10, 'fluid queue: W′ within T after a cold start'],
  ])('names the condition that decided: %i waiting, %i ready -> %s', (waiting, ready, rule) => {
    const out = decide({
      signals: { backlog: waiting, waiting, inFlight: 4 * ready, consumers: ready, arrivalRatePerSecond: 1 },
      scaling: { ...scaling, throughputPerReplica: 1, coldStartSeconds: 60, drainSeconds: 60 },
      history: { ...emptyHistory(), lastActive: true, lastDesiredReplicas: ready, recentAsks: [] },
      nowMs: 1e12,
    });
    expect(out.decision.explanation.details.rule).toBe(rule);
  });

  // μ = 2 per replica, k = 5 slots (messagesPerReplica), so S = 2.5 s; C = 60, T = 60.
  const withRates = { ...scaling, throughputPerReplica: 2 };
  // One decision from a history where the fleet of `asked` replicas was asked for at `askedAtMs`.
  const at = (signals: Signals, asked: number, askedAtMs: number, overrides: Partial<ScalingConfig> = {}) =>
    decide({
      signals,
      scaling: { ...withRates, ...overrides },
      history: {
        ...emptyHistory(),
        lastActive: asked > 0,
        lastDesiredReplicas: asked,
        recentAsks: asked > 0 ? [{ atMs: askedAtMs, replicas: asked }] : [],
      },
      nowMs: 0,
    }).decision;

  it.each([
    // W waiting, λ, ready. W' = W + λC − μ·ready·C; σ = 2·sqrt(λC);
    // N = ceil(max((W' + λS + σ) / (k + μT), (W' + σ + λC) / (μ(T + C)))).
    { W: 100, lambda: 0, ready: 0, projected: 100, desired: 1 }, // max(100/125, 100/240) = 0.8
    { W: 100, lambda: 4, ready: 0, projected: 340, desired: 4 }, // max((340 + 10 + 31)/125, (340 + 31 + 240)/240) = 3.05
    { W: 600, lambda: 0, ready: 0, projected: 600, desired: 5 }, // 600/125 = 4.8
    { W: 100, lambda: 4, ready: 1, projected: 220, desired: 3 }, // max((220 + 10 + 31)/125, (220 + 31 + 240)/240) = 2.09
  ])('W $W, λ $lambda, ready $ready: W′ = $projected, D = $desired', ({ W, lambda, ready, projected, desired }) => {
    const d = at({ backlog: W, waiting: W, arrivalRatePerSecond: lambda, consumers: ready }, ready, -3_600_000);
    expect(d.explanation.details.projectedBacklog).toBe(projected);
    expect(d.desiredReplicas).toBe(desired);
  });

  it('asks for a replica for one message waiting however long the objective (a need of 4e-10 a replica is not float noise)', () => {
    // μ 1,000 a replica and T 30 days: k + μT = 2.6e9 slots for one message.
    const d = at({ backlog: 1, waiting: 1, inFlight: 0, arrivalRatePerSecond: 0, consumers: 1 }, 1, -3_600_000, {
      throughputPerReplica: 1000,
      drainSeconds: 2_592_000,
    });
    expect(d.explanation.demands.backlog).toBe(1);
  });

  it('counts only waiting messages as backlog to drain: in-flight ones are being served', () => {
    // 200 in flight on 40 replicas, none waiting, λ = 1: one replica's load. T = 15.
    const tight = { drainSeconds: 15 };
    const d = at({ backlog: 200, waiting: 0, inFlight: 200, arrivalRatePerSecond: 1, consumers: 40 }, 40, -3_600_000, tight);
    expect(d.explanation.details.waiting).toBe(0);
    expect(d.desiredReplicas).toBe(1);
    // Without the split, the same backlog waits: 6 replicas start it within 15 s (6·(5 + 2·15) = 210
    // slots for 200 + λS = 202.5, and 11 a second spare keep the arrivals' noise under 1 message).
    expect(at({ backlog: 200, arrivalRatePerSecond: 1, consumers: 40 }, 40, -3_600_000, tight).desiredReplicas).toBe(6);
  });

  it.each([
    // Low-rate chat (S = 11.5 s, k = 4, μ = 0.347) at λ = 0.227, T = 15, C = 56, two replicas warm,
    // none waiting: the whole noise over C (2·sqrt(λC) = 7.1 messages) on top of λS = 2.6 asks for
    // 1.06 replicas of k + μT = 9.2; one replica serving 0.12 a second beyond λ piles up at most
    // λ / 0.12 = 1.9 of it. Erlang C, priced, says 1 as well.
    { what: 'one replica absorbs the noise while it serves', waiting: 0, desired: 1 },
    // Five waiting: 5 + 2.6 + 1.9 = 9.5 > 9.2 for one; two serve 0.47 beyond λ (0.5 piled up).
    { what: 'a queue on top of it needs the second', waiting: 5, desired: 2 },
  ])('keeps the replicas whose spare rate absorbs the arrivals’ noise: $what', ({ waiting, desired }) => {
    const d = at({ backlog: waiting + 2, waiting, inFlight: 2, arrivalRatePerSecond: 0.227, consumers: 2 }, 2, -3_600_000, {
      throughputPerReplica: 4 / 11.525,
      messagesPerReplica: 4,
      drainSeconds: 15,
      coldStartSeconds: 56,
    });
    expect(d.explanation.details.noiseMessages).toBeCloseTo(7.13, 2);
    expect(d.desiredReplicas).toBe(desired);
  });

  it('runs on its queue while no request would wait past the objective (a long objective)', () => {
    // λ = 3, μ = 2.5 (k = 4, S = 1.6 s): 1.2 replicas of load. One replica holds while the queue is short.
    const fleet = { throughputPerReplica: 2.5, messagesPerReplica: 4 };
    const queued = (W: number) =>
      at({ backlog: W + 4, waiting: W, inFlight: 4, arrivalRatePerSecond: 3, consumers: 1 }, 1, -3_600_000, fleet)
        .desiredReplicas;
    expect(queued(0)).toBe(1);
    expect(queued(60)).toBe(1);
    expect(queued(120)).toBe(2);
  });

  it.each([
    // Reasoning-length requests (k = 4, μ = 0.17: S = 23.5 s) at λ = 2, T = 60 >= C = 40, 13 ready:
    // λ keeps 2 / 0.17 = 11.8 replicas busy. With 70 waiting the fluid queue alone keeps 10
    // ((70 + λS + the noise over C, 17.9) / (k + μT) = 9.5; (70 + 17.9 + λC) / (μ(T + C)) = 9.9),
    // a fleet short of λ under a standing queue: 11 are kept. With none waiting, the fluid queue's.
    { what: 'a queue stands: the replicas λ keeps busy', waiting: 70, T: 60, desired: 11, kept: 11 },
    { what: 'no queue: the fluid queue alone', waiting: 0, T: 60, desired: 6, kept: undefined },
    { what: 'T < C: Erlang C sizes the steady fleet instead', waiting: 70, T: 30, desired: 14, kept: undefined },
  ])('keeps, at T >= C, the replicas the arrival rate keeps busy: $what', ({ waiting, T, desired, kept }) => {
    const d = at({ backlog: waiting + 52, waiting, inFlight: 52, arrivalRatePerSecond: 2, consumers: 13 }, 13, -3_600_000, {
      throughputPerReplica: 0.17,
      messagesPerReplica: 4,
      drainSeconds: T,
      coldStartSeconds: 40,
    });
    expect(d.explanation.details.keptBusyAtArrivalRate).toBe(kept);
    expect(d.desiredReplicas).toBe(desired);
  });

  it.each([
    // The same fleet read as Kafka reads it: a lag, in service and waiting together. Past the ready
    // slots (13 · 4 = 52) a queue stands; within them it may all be in service.
    { lag: 70, kept: 11 },
    { lag: 52, kept: undefined },
  ])('with a lag that counts the messages in service too ($lag), a queue stands past the ready slots', ({ lag, kept }) => {
    const d = at({ backlog: lag, arrivalRatePerSecond: 2, consumers: 13 }, 13, -3_600_000, {
      throughputPerReplica: 0.17,
      messagesPerReplica: 4,
      drainSeconds: 60,
      coldStartSeconds: 40,
    });
    expect(d.explanation.details.keptBusyAtArrivalRate).toBe(kept);
  });

  it('does not ask again for replicas that are still starting', () => {
    // 5 asked 30 s ago, none ready: they serve the last 30 s of the horizon: W' = 400 + 240 − 2·5·30.
    const d = at({ backlog: 400, waiting: 400, arrivalRatePerSecond: 4, consumers: 0 }, 5, -30_000);
    expect(d.explanation.details.startingReplicas).toBe(5);
    expect(d.explanation.details.projectedBacklog).toBe(340);
    expect(d.desiredReplicas).toBeLessThanOrEqual(5);
  });

  it('sizes the steady fleet by Erlang C, priced, only when the objective is shorter than a cold start', () => {
    const signals = { backlog: 0, waiting: 0, inFlight: 16, arrivalRatePerSecond: 5.5, consumers: 12 };
    const chat = { throughputPerReplica: 4 / 7.4, messagesPerReplica: 4 };
    const tight = at(signals, 12, -3_600_000, { ...chat, drainSeconds: 15 });
    expect(tight.explanation.details.rateReplicas).toBe(11);
    expect(tight.desiredReplicas).toBeGreaterThanOrEqual(11);
    expect(at(signals, 12, -3_600_000, { ...chat, drainSeconds: 60 }).explanation.details.rateReplicas).toBeUndefined();
  });

  it.each([
    // [what, idle, 30 s rate, Erlang's replicas, the rate sized for while idle]
    ['busy: the steady rate', false, 0.05, 5, undefined],
    ['idle: the 30 s rate, when lower', true, 0.05, 1, 0.05],
    ['idle: the steady rate, when the 30 s one is higher', true, 0.5, 5, undefined],
  ] as const)('sizes the fleet for λ: %s', (_what, idle, fast, rateReplicas, idleRate) => {
    // Long generations (S = 45 s, k = 4) at a steady 0.4 per second: λS = 18, Erlang's 5 replicas at T = 30 < C.
    const d = decide({
      signals: { backlog: idle ? 0 : 4, waiting: 0, inFlight: idle ? 0 : 4, arrivalRatePerSecond: fast, consumers: 6 },
      scaling: { ...withRates, throughputPerReplica: 4 / 45, messagesPerReplica: 4, drainSeconds: 30, coldStartSeconds: 60 },
      history: {
        ...emptyHistory(),
        lastActive: true,
        lastDesiredReplicas: 6,
        lastDecisionAtMs: -1000,
        lastWorkAtMs: idle ? -60_000 : -1000,
        idleSinceMs: idle ? -60_000 : undefined,
        steadyArrivalRatePerSecond: 0.4,
      },
      nowMs: 0,
    }).decision;
    expect(d.explanation.details.rateReplicas).toBe(rateReplicas);
    expect(d.explanation.details.idleSizedForArrivalRatePerSecond).toBe(idleRate);
  });

  it.each([
    // [what, T, the trend (0.5025 − sqrt(7 / 60)), λ]
    ['T < C: the 30 s rate lags the climb, and the lag is added', 15, 0.161, 7.161],
    ['T >= C: the queue absorbs the lag', 60, undefined, 7],
  ] as const)('a climbing rate: %s', (_what, drainSeconds, trend, lambda) => {
    // Chat (S = 7.4 s, k = 4) at 7 per second, 6.33 forty seconds ago: 0.5 in 30 s, less the noise (1 sd).
    const d = decide({
      signals: { backlog: 40, waiting: 0, inFlight: 40, arrivalRatePerSecond: 7, consumers: 12 },
      scaling: { ...withRates, throughputPerReplica: 4 / 7.4, messagesPerReplica: 4, drainSeconds, coldStartSeconds: 40 },
      history: {
        ...emptyHistory(),
        lastActive: true,
        lastDesiredReplicas: 12,
        lastDecisionAtMs: -1000,
        lastWorkAtMs: -1000,
        steadyArrivalRatePerSecond: 7,
        rateTrail: [
          { atMs: -40_000, rate: 6.33 },
          { atMs: -20_000, rate: 6.67 },
        ],
      },
      nowMs: 0,
    }).decision;
    expect(d.explanation.details.arrivalRateTrendPerSecond).toBe(trend);
    expect(d.explanation.details.arrivalRatePerSecond).toBe(lambda);
  });

  it.each([
    // [what, T, the floor, replicas more than without the counter's marks]
    ['T < C: the counter shows 8 a second over the last 8 s, 5 at least, against a 30 s rate of 3', 15, 5, 2],
    ['T >= C: the queue absorbs the lag', 60, undefined, 0],
  ] as const)('a step of the rate: %s', (_what, drainSeconds, floor, more) => {
    // Short requests (S = 1.2 s, k = 4): a few a minute, then 8 a second from 8 s ago, 64 waiting
    // for the one warm replica; the 30 s average has come up to 3. Counter marks every 2 s.
    const marks = [-16, -14, -12, -10, -8, -6, -4, -2].map((t) => ({ atMs: t * 1000, total: 1000 + Math.max(0, 8 * (t + 8)) }));
    const step = (arrivalMarks: TriggerHistory['arrivalMarks']) =>
      decide({
        signals: { backlog: 64, waiting: 64, inFlight: 0, arrivalRatePerSecond: 3, arrivedTotal: 1064, consumers: 1 },
        scaling: { ...withRates, throughputPerReplica: 4 / 1.2, messagesPerReplica: 4, drainSeconds, coldStartSeconds: 40 },
        history: {
          ...emptyHistory(),
          lastActive: true,
          lastDesiredReplicas: 1,
          lastDecisionAtMs: -2000,
          lastWorkAtMs: -2000,
          steadyArrivalRatePerSecond: 0.1,
          arrivalMarks,
        },
        nowMs: 0,
      }).decision;
    const d = step(marks);
    expect(d.explanation.details.recentArrivalRateFloorPerSecond).toBe(floor);
    expect(d.desiredReplicas - step(undefined).desiredReplicas).toBe(more);
  });

  it('holds what was needed, not what a trend forecast: the replicas of a trend that fades go at once', () => {
    const chat = { ...withRates, throughputPerReplica: 4 / 7.4, messagesPerReplica: 4, drainSeconds: 15, coldStartSeconds: 40 };
    const signals = { backlog: 40, waiting: 0, inFlight: 40, arrivalRatePerSecond: 7, consumers: 14 };
    const history = (rateTrail: TriggerHistory['rateTrail']): TriggerHistory => ({
      ...emptyHistory(),
      lastActive: true,
      lastDesiredReplicas: 14,
      lastDecisionAtMs: -1000,
      lastWorkAtMs: -1000,
      steadyArrivalRatePerSecond: 7,
      rateTrail,
    });
    const flat = [-40_000, -35_000, -30_000, -25_000].map((atMs) => ({ atMs, rate: 7 }));
    const still = decide({ signals, scaling: chat, history: history(flat), nowMs: 0 }).decision.desiredReplicas;
    // 5 to 7 per second in 40 s: the trend adds 3 sd (1.02 per second) and two replicas.
    const climb = decide({ signals, scaling: chat, history: history([{ atMs: -40_000, rate: 5 }]), nowMs: 0 });
    expect(climb.decision.desiredReplicas).toBe(still + 2);
    // 5 s later the rate holds: no trend, and nothing of it held.
    const after = decide({ signals, scaling: chat, history: { ...climb.history, rateTrail: flat }, nowMs: 5000 }).decision;
    expect(after.explanation.details.arrivalRateTrendPerSecond).toBeUndefined();
    expect(after.desiredReplicas).toBe(still);
  });

  it.each([
    // [what, share of recent rises that lasted a cold start, held]
    ['rises have lasted: a rise is a surge, held for a cold start', undefined, true],
    ['most rises were gone a cold start later: noise, not held', 0.3, false],
  ] as const)('T < C, %s', (_what, lasting, held) => {
    // Long generations (S = 45 s, k = 4) at a steady 0.4 a second; the 30 s rate rises to 0.9, then falls back.
    const scaling = { ...withRates, throughputPerReplica: 4 / 45, messagesPerReplica: 4, drainSeconds: 30, coldStartSeconds: 60 };
    const signals = (rate: number) => ({ backlog: 8, waiting: 0, inFlight: 8, arrivalRatePerSecond: rate, consumers: 5 });
    const history: TriggerHistory = {
      ...emptyHistory(),
      lastActive: true,
      lastDesiredReplicas: 5,
      lastDecisionAtMs: -1000,
      lastWorkAtMs: -1000,
      steadyArrivalRatePerSecond: 0.4,
      ...(lasting !== undefined && { riseWatch: { lasting } }),
    };
    const rise = decide({ signals: signals(0.9), scaling, history, nowMs: 0 });
    const calm = decide({ signals: signals(0.5), scaling, history, nowMs: 0 }).decision.desiredReplicas;
    expect(rise.decision.desiredReplicas).toBeGreaterThan(calm + 3);
    const after = decide({ signals: signals(0.5), scaling, history: rise.history, nowMs: 5000 }).decision;
    expect(after.desiredReplicas).toBe(held ? rise.decision.desiredReplicas : calm);
  });

  it('falls back to KEDA’s rule while the throughput is unknown', () => {
    const d = run({ backlog: 23, arrivalRatePerSecond: 3 });
    expect(d.desiredReplicas).toBe(5);
    expect(String(d.explanation.details.rule)).toContain('messagesPerReplica');
  });

  describe('what KEDA’s rule asked for before μ was known (guesses)', () => {
    // Two decisions without μ (KEDA's rule: 60 / 5 = 12), then μ is configured with 60 waiting:
    // the guess of 12 is held while the waiting backlog stays above 60 − 2·sqrt(60) = 44.5.
    const cfg = { ...scaling };
    const guessed = () => {
      let history = decide({ signals: { backlog: 60 }, scaling: cfg, history: emptyHistory(), nowMs: 0 }).history;
      history = decide({ signals: { backlog: 60 }, scaling: cfg, history, nowMs: 1000 }).history;
      return history;
    };
    const known = (waiting: number, history: TriggerHistory, nowMs: number) =>
      decide({
        signals: { backlog: waiting, waiting, arrivalRatePerSecond: 0, consumers: 12 },
        scaling: { ...cfg, throughputPerReplica: 2 },
        history,
        nowMs,
      });

    it.each([
      // waiting when μ becomes known, waiting a second later, the hold then
      { first: 60, next: 60, hold: 12 },
      { first: 60, next: 90, hold: 18 }, // a queue that grows: KEDA's rule now, 90 / 5
      { first: 60, next: 45, hold: 12 },
      { first: 60, next: 44, hold: undefined },
      { first: 60, next: 0, hold: undefined },
      { first: 0, next: 0, hold: undefined },
    ])('waiting $first, then $next: hold $hold', ({ first, next, hold }) => {
      const transition = known(first, guessed(), 2000);
      if (first >= 60) expect(transition.decision.explanation.details.guessesHeldWhileWaitingAtLeast).toBe(first);
      const after = known(next, transition.history, 3000).decision;
      expect(after.explanation.demands.hold).toBe(hold);
      if (hold === undefined) expect(after.desiredReplicas).toBeLessThan(12);
    });

    it('lets the guesses go after one cold start however long the queue stays', () => {
      let out = known(60, guessed(), 2000);
      for (let s = 3; s <= 59; s++) out = known(60, out.history, s * 1000);
      expect(out.decision.explanation.demands.hold).toBe(12);
      expect(out.history.heldGuesses).toBeDefined();
      out = known(60, out.history, 62_000);
      expect(out.decision.explanation.demands.hold).toBeUndefined();
      expect(out.history.heldGuesses).toBeUndefined();
    });
  });

  it.each([
    // keepWarm, seconds idle: the busy demand of 20 (KEDA's rule, 100 / 5) held or not
    { keepWarm: 0, idleS: 0, hold: undefined },
    { keepWarm: 120, idleS: 0, hold: 20 },
    { keepWarm: 120, idleS: 30, hold: 20 },
    { keepWarm: 20, idleS: 30, hold: undefined },
  ])(
    'holds the busy demand while idle only within the keep-warm window ($keepWarm s, idle $idleS s)',
    ({ keepWarm, idleS, hold }) => {
      const cfg = { ...scaling, keepWarm };
      const busy = decide({ signals: { backlog: 100 }, scaling: cfg, history: emptyHistory(), nowMs: 0 });
      expect(busy.decision.desiredReplicas).toBe(20);
      let out = decide({ signals: { backlog: 0 }, scaling: cfg, history: busy.history, nowMs: 1000 });
      if (idleS > 0) out = decide({ signals: { backlog: 0 }, scaling: cfg, history: out.history, nowMs: 1000 + idleS * 1000 });
      expect(out.decision.explanation.demands.hold).toBe(hold);
      expect(out.decision.desiredReplicas).toBe(hold ?? 1);
    },
  );

  it.each([
    // 10 ready, μ = 2 (k = 5): 20 per second by μ. The brokers' served rate counts while at least
    // k·ready = 50 wait, and only when lower. W' = W + λC − rate·C with λ = 20, C = 60.
    { W: 100, served: undefined, rate: 20, projected: 100 },
    { W: 100, served: 20, rate: 20, projected: 100 },
    { W: 100, served: 25, rate: 20, projected: 100 },
    { W: 100, served: 15, rate: 15, projected: 400 },
    { W: 40, served: 15, rate: 20, projected: 40 },
  ])('W $W, served $served/s by 10 ready: drains at $rate/s, W′ = $projected', ({ W, served, rate, projected }) => {
    const d = at(
      { backlog: W + 50, waiting: W, inFlight: 50, arrivalRatePerSecond: 20, serviceRatePerSecond: served, consumers: 10 },
      10,
      -3_600_000,
    );
    expect(d.explanation.details.readyServedPerSecond).toBe(rate);
    expect(d.explanation.details.projectedBacklog).toBe(projected);
  });

  it.each([
    // 10 ready, μ = 2 (k = 5), λ = 6, C = T = 60, σ = 2·sqrt(λC) = 37.9, W = 400. The replicas to
    // keep are judged too by m, what each served over the current saturated stretch (the same 10
    // consumers), when it is below μ: max((W + λ·k/m + σ) / (k + m·T), (W + σ + λC) / (m·(T + C))).
    // Without it (none to add: W′ = 400 + 360 − 1200 < 0): max(3.62, 3.32) -> 4, above the 3 that
    // λ keeps busy.
    { stretchS: 60, served: 900, consumers: 10, perReplica: 1.5, backlog: 5 }, // keep max(4.82, 4.43)
    { stretchS: 60, served: 1500, consumers: 10, perReplica: undefined, backlog: 4 }, // 2.5 per replica: above μ
    { stretchS: 20, served: 30, consumers: 10, perReplica: undefined, backlog: 4 }, // fewer than 50 served yet
    { stretchS: 60, served: 900, consumers: 9, perReplica: undefined, backlog: 4 }, // another fleet: a new stretch
  ])(
    'a saturated stretch of $stretchS s by $consumers consumers that served $served: kept by $perReplica per replica, backlog demand $backlog',
    ({ stretchS, served, consumers, perReplica, backlog }) => {
      const d = decide({
        signals: {
          backlog: 450,
          waiting: 400,
          inFlight: 50,
          arrivalRatePerSecond: 6,
          servedTotal: 5000 + served,
          consumers: 10,
        },
        scaling: withRates,
        history: {
          ...emptyHistory(),
          lastActive: true,
          lastDesiredReplicas: 10,
          lastDecisionAtMs: -1000,
          busyStretch: { startMs: -stretchS * 1000, servedTotal: 5000, consumers },
        },
        nowMs: 0,
      }).decision;
      expect(d.explanation.details.servedPerReadyReplica).toBe(perReplica);
      expect(d.explanation.demands.backlog).toBe(backlog);
    },
  );

  it.each([
    // 4 ready, μ = 2 (k = 5), λ = 20, C = T = 60, W = 100, W′ = 100 + 20·60 − 8·60 = 820. The
    // replicas to add too: by μ max((W′ + λ·2.5 + σ) / (5 + 120), (W′ + σ + λC) / (2·120)) = 8.7 -> 9;
    // by the stretch's 1.5 per replica (S = 3.33) max(10.06, 11.6) -> 12.
    { served: 360, perReplica: 1.5, backlog: 12 },
    { served: 600, perReplica: undefined, backlog: 9 }, // 2.5 per replica: above μ, by μ alone
  ])('adds replicas judged by the stretch too: $served served -> backlog demand $backlog', ({ served, perReplica, backlog }) => {
    const d = decide({
      signals: { backlog: 150, waiting: 100, inFlight: 50, arrivalRatePerSecond: 20, servedTotal: 5000 + served, consumers: 4 },
      scaling: withRates,
      history: {
        ...emptyHistory(),
        lastActive: true,
        lastDesiredReplicas: 4,
        lastDecisionAtMs: -1000,
        busyStretch: { startMs: -60_000, servedTotal: 5000, consumers: 4 },
      },
      nowMs: 0,
    }).decision;
    expect(d.explanation.details.servedPerReadyReplica).toBe(perReplica);
    expect(d.explanation.details.projectedBacklog).toBe(820);
    expect(d.explanation.demands.backlog).toBe(backlog);
  });

  it.each([
    // [objective T, cold start C, what is in service by the estimate: λ·min(lowest minute, k / μ),
    // at most k per consumer there (found by review: a lag of 24 with no member was all in service)]
    [15, 60, 10, 40],
    [15, 60, 2, 10],
    [15, 60, 0, 0],
    [60, 30, 10, undefined],
  ])(
    'a lag that counts what is in service (Kafka): T %d s, C %d s, %d members -> %s in service, not waiting',
    (T, C, members, inService) => {
      // 4 arrive and 4 are served a second, 40 in the lag, μ 0.4 and k 5 (S 12.5 s): a minute's
      // backlog-seconds per message 10 s, so about 4·10 = 40 are in service and none waits.
      const cfg = { ...scaling, throughputPerReplica: 0.4, drainSeconds: T, coldStartSeconds: C };
      let history = emptyHistory();
      const signals = (t: number): Signals => ({
        backlog: 40,
        arrivedTotal: 4 * t,
        servedTotal: 4 * t,
        arrivalRatePerSecond: 4,
        consumers: 10,
      });
      for (let t = 0; t <= 240; t++) history = decide({ signals: signals(t), scaling: cfg, history, nowMs: t * 1000 }).history;
      const d = decide({ signals: { ...signals(241), consumers: members }, scaling: cfg, history, nowMs: 241_000 }).decision;
      expect(d.explanation.details.inServiceEstimate).toBe(inService);
      expect(d.explanation.details.waiting).toBe(40 - (inService ?? 0));
    },
  );

  it('reads no arrivals nor completions from a jump of counters that now count other partitions (counterBasis)', () => {
    // A Kafka group without kafka.topic starts committing on an old topic: 4e8 offsets join both sums.
    const cfg = { ...scaling, throughputPerReplica: 0.4, drainSeconds: 15, coldStartSeconds: 60, maxReplicas: 50 };
    const signals = (t: number, jump: number, counterBasis: string): Signals => ({
      backlog: 40,
      arrivedTotal: 4 * t + jump,
      servedTotal: 4 * t + jump,
      arrivalRatePerSecond: 4,
      consumers: 10,
      counterBasis,
    });
    const runFor = (jump: number, basisAfter: string) => {
      let history = emptyHistory();
      let last = decide({ signals: signals(0, 0, 'a'), scaling: cfg, history, nowMs: 0 });
      for (let t = 1; t <= 300; t++) {
        const after = t > 240;
        last = decide({
          signals: signals(t, after ? jump : 0, after ? basisAfter : 'a'),
          scaling: cfg,
          history,
          nowMs: t * 1000,
        });
        history = last.history;
        if (t === 241) expect(last.decision.explanation.details.countersRebased).toBe(basisAfter === 'a' ? undefined : true);
      }
      return last.decision;
    };
    const steady = runFor(0, 'a');
    const rebased = runFor(4e8, 'b');
    expect(rebased.desiredReplicas).toBe(steady.desiredReplicas);
    expect(rebased.explanation.details.burstNeedReplicas).toBe(steady.explanation.details.burstNeedReplicas);
    // The same jump on the same basis reads as 4e8 arrivals in a second: a burst past maxReplicas.
    expect(runFor(4e8, 'a').desiredReplicas).toBe(50);
  });

  it('learns μ from served counters while the fleet is saturated (no in-flight counts)', () => {
    let history = emptyHistory();
    const cfg = { ...scaling, keepWarm: 'auto' as const };
    // 2 consumers, backlog >= 2·5 all along, 3 messages per second served: μ = 1.5.
    for (let s = 0; s <= 60; s++) {
      history = decide({
        signals: { backlog: 30, servedTotal: 3 * s, consumers: 2 },
        scaling: cfg,
        history,
        nowMs: s * 1000,
      }).history;
    }
    const out = decide({ signals: { backlog: 0, servedTotal: 183, consumers: 2 }, scaling: cfg, history, nowMs: 61_000 });
    expect(out.decision.explanation.details.throughputPerReplica).toBe(1.5);
    expect(out.decision.explanation.details.throughputSource).toBe('saturation');
  });
});

describe('bursts (bursts.ts): a warm floor for what the replicas a burst asks for would start late', () => {
  const cfg = { ...scaling, throughputPerReplica: 2.5, messagesPerReplica: 4, drainSeconds: 15, keepWarm: 'auto' as const };
  // Every 180 s a burst of 300 requests within 10 s, none between.
  const replay = (bursts: number, overrides: Partial<ScalingConfig> = {}, coldStartSamples?: readonly number[]) => {
    let history: TriggerHistory = { ...emptyHistory(), ...(coldStartSamples && { coldStartSamples }) };
    let arrived = 0;
    let last = decide({ signals: { backlog: 0, arrivedTotal: 0 }, scaling: { ...cfg, ...overrides }, history, nowMs: 0 });
    for (let t = 1; t <= bursts * 180; t++) {
      const inBurst = t % 180 >= 1 && t % 180 <= 10;
      if (inBurst) arrived += 30;
      last = decide({
        signals: {
          backlog: inBurst ? 30 : 0,
          waiting: inBurst ? 26 : 0,
          inFlight: inBurst ? 4 : 0,
          arrivedTotal: arrived,
          arrivalRatePerSecond: inBurst ? 30 : 0,
        },
        scaling: { ...cfg, ...overrides },
        history,
        nowMs: t * 1000,
      });
      history = last.history;
    }
    return last.decision;
  };

  it('keeps the usual burst’s replicas warm between bursts, and says so', () => {
    const d = replay(4);
    expect(d.explanation.demands.burst).toBeGreaterThanOrEqual(4);
    expect(d.explanation.details.burstsSeen).toBeGreaterThanOrEqual(3);
    // Eight episodes (each burst at 3 s into its 180, and its tail 20 s later), the last begun 157 s
    // ago: of the gaps at least that long (the three of 160 s) all three end within the next 2 C
    // (120 s), shrunk toward the average (8 in 716 s) by two gaps: (3 + 2 x 8/716 x 120) / (120 x 5).
    expect(d.explanation.details.burstsPerMinute).toBe(0.568);
  });

  it.each([
    // cold starts learned (20 samples) and the floor: each cold start c leaves late what its
    // replicas start past T over the HPA sync after it, clamp((c + 15 − 15 − offset) / 15, 0, 1);
    // 7 is the whole burst's need, every request past the warm replicas late
    { why: 'all 40 s: all late', samples: Array<number>(20).fill(40), below: false },
    { why: 'half 10 s, half 40 s', samples: [...Array<number>(10).fill(10), ...Array<number>(10).fill(40)], below: false },
    { why: 'all 5 s: a third at most', samples: Array<number>(20).fill(5), below: true },
  ])('prices a burst’s late requests by when its replicas start them ($why)', ({ samples, below }) => {
    const d = replay(4, { coldStartSeconds: 'auto' }, samples).explanation;
    // The bursts' need rose for 7 s of their 10 (from a need of 2), to 7.2: a floor of 7 leaves a
    // few of the last requests late (1 − 7 / 7.2 of them at most).
    expect(d.details.burstRiseSeconds).toBe(7);
    if (below) {
      expect(d.demands.burst).toBeLessThan(7);
      expect(d.details.burstLateShare).toBeGreaterThan(0);
    } else {
      expect(d.demands.burst).toBe(7);
      expect(d.details.burstLateShare).toBeLessThan(0.03);
    }
  });

  it('keeps a floor where every cold start is under T, for the tail its replicas start past T', () => {
    // T = 30 s and cold starts of 25 s: C is under T, yet what the replicas start over 25-40 s is
    // two thirds late for a request that arrived as the burst began.
    const d = replay(4, { coldStartSeconds: 'auto', drainSeconds: 30 }, Array<number>(20).fill(25)).explanation;
    expect(d.demands.burst).toBeGreaterThan(0);
    // Cold starts of 10 s: done by 25 s, within T.
    expect(
      replay(4, { coldStartSeconds: 'auto', drainSeconds: 30 }, Array<number>(20).fill(10)).explanation.demands.burst,
    ).toBeUndefined();
  });

  it('keeps none when late requests cost nothing, and none when the objective outlasts the cold start', () => {
    expect(replay(4, { lateRequestCost: 0 }).explanation.demands.burst).toBeUndefined();
    expect(replay(4, { drainSeconds: 60 }).explanation.demands.burst).toBeUndefined();
  });

  it('counts a burst by the backlog it raises when the source counts no arrivals (SQS, amqp)', () => {
    // The same bursts as an SQS queue shows them: the backlog rises 30 a second for 10 s, then is
    // served down over the next 20 s.
    let history = emptyHistory();
    let last = decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: 0 });
    for (let t = 1; t <= 4 * 180; t++) {
      const s = t % 180;
      const backlog = s >= 1 && s <= 10 ? 30 * s : s > 10 && s <= 30 ? 300 - 15 * (s - 10) : 0;
      last = decide({ signals: { backlog }, scaling: cfg, history, nowMs: t * 1000 });
      history = last.history;
    }
    expect(last.decision.explanation.demands.burst).toBeGreaterThanOrEqual(4);
    expect(history.backlogRises).toEqual({ backlog: 0, total: 4 * 300 });
    expect(last.decision.explanation.details.arrivalsCountedByBacklogRises).toBe(4 * 300);
  });
});

describe('keep-warm and prewarm', () => {
  const auto = { ...scaling, keepWarm: 'auto' as const, coldStartSeconds: 60 };
  const replay = (busyIdle: readonly [number, number][], cfg: ScalingConfig = auto) => {
    let history = emptyHistory();
    let t = 0;
    for (const [busy, idle] of busyIdle) {
      history = decide({ signals: { backlog: 5 }, scaling: cfg, history, nowMs: t * 1000 }).history;
      t += busy;
      history = decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: t * 1000 }).history;
      t += idle;
    }
    return { history, t };
  };
  const tight = { ...auto, drainSeconds: 15 };
  /** Two gaps of 590 s at a 15 s objective, idle again since `t`: the next gap is predicted. */
  const regularGaps = () =>
    replay(
      [
        [10, 590],
        [10, 590],
        [10, 0],
      ],
      tight,
    );

  it.each([
    // Few gaps seen: keep warm for the break-even K = C + lateRequestCost · (head of a busy period) when
    // C > T; the head (without an arrival counter) is the one request that ends the gap.
    { T: 60, K: 60 }, // a cold start within the objective costs its loading only
    { T: 30, K: 70 },
    { T: 15, K: 70 },
  ])('keeps warm for the break-even K until it has seen enough gaps (objective $T s: $K s)', ({ T, K }) => {
    const cfg = { ...auto, drainSeconds: T };
    let history = decide({ signals: { backlog: 5 }, scaling: cfg, history: emptyHistory(), nowMs: 0 }).history;
    history = decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: 10_000 }).history;
    const at = (idle: number) => decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: (10 + idle) * 1000 }).decision;
    expect(at(K - 1).active).toBe(true);
    expect(at(K - 1).explanation.details).toMatchObject({
      coldStartCostSeconds: K,
      keepWarmSeconds: K,
      keepWarmSource: 'break-even',
    });
    expect(at(K + 1).active).toBe(false);
  });

  it.each([
    // The head: arrivals by the counter, or (SQS, RabbitMQ over amqp) the largest backlog in the window.
    { source: 'an arrival counter', counter: true },
    { source: 'no arrival counter', counter: false },
  ])('prices a cold start by the requests its head would leave late ($source)', ({ counter }) => {
    // Irregular gaps (nothing to prewarm for), each ended by a burst: 100 arrivals in the first
    // C − T = 45 s at T = 15, 60 of them there at once, served down to 1 by the end of the window.
    const cfg = { ...auto, drainSeconds: 15 };
    let history = emptyHistory();
    let t = 0;
    let arrived = 0;
    const at = (backlog: number) => (counter ? { backlog, arrivedTotal: arrived } : { backlog });
    for (const gap of [150, 100, 200, 130]) {
      arrived += 60;
      history = decide({ signals: at(60), scaling: cfg, history, nowMs: t * 1000 }).history;
      arrived += 40;
      history = decide({ signals: at(100), scaling: cfg, history, nowMs: (t + 20) * 1000 }).history;
      history = decide({ signals: at(1), scaling: cfg, history, nowMs: (t + 50) * 1000 }).history;
      t += 60;
      history = decide({ signals: at(0), scaling: cfg, history, nowMs: t * 1000 }).history;
      t += gap;
    }
    const idle = (s: number) => decide({ signals: at(0), scaling: cfg, history, nowMs: (t - 130 + s) * 1000 }).decision;
    expect(history.gapHeads!.at(-1)).toBe(100);
    expect(idle(199).active).toBe(true);
    // Past the longest gap seen, the break-even K (60 + 10 · 100) more.
    expect(idle(199).explanation.details.keepWarmSeconds).toBe(200 + 1060);
    // The same gaps with requests that cost nothing late: a cold start is its loading only, 60 s < 150 s.
    const free = replay(
      [
        [10, 150],
        [10, 150],
        [10, 150],
        [10, 0],
      ],
      { ...cfg, lateRequestCost: 0 },
    );
    expect(
      decide({
        signals: { backlog: 0 },
        scaling: { ...cfg, lateRequestCost: 0 },
        history: free.history,
        nowMs: (free.t + 1) * 1000,
      }).decision.active,
    ).toBe(false);
  });

  it.each([
    // [what, the busy period's backlog (one replica serves k = 5 at once), T, the wake's price]: 5
    // cold starts of 25 s learned; C = 60 + 5/20 x (25 - 60) = 51.25, their mean (2 x 60 + 125) / 7 = 35.
    ['all of it starts as the first replica serves, C <= T: the mean', 5, 60, 35],
    ['more than one replica serves at once: C', 6, 60, 51.25],
    ['C > T: C (and the head)', 5, 30, 51.25 + 10],
  ] as const)('prices a wake at the mean cold start only where it leaves nobody late: %s', (_, backlog, T, K) => {
    const cfg = { ...auto, coldStartSeconds: 'auto' as const, drainSeconds: T };
    let history: TriggerHistory = { ...emptyHistory(), coldStartSamples: Array<number>(5).fill(25) };
    history = decide({ signals: { backlog, consumers: 1 }, scaling: cfg, history, nowMs: 0 }).history;
    history = decide({ signals: { backlog: 0, consumers: 1 }, scaling: cfg, history, nowMs: 10_000 }).history;
    const idle = decide({ signals: { backlog: 0, consumers: 1 }, scaling: cfg, history, nowMs: 20_000 }).decision;
    expect(idle.explanation.details).toMatchObject({
      coldStartSeconds: 51.25,
      coldStartCostSeconds: K,
      keepWarmSource: 'break-even',
    });
    // The explanation names the mean only where it priced the wake.
    expect(idle.explanation.details.meanColdStartSeconds).toBe(K === 35 ? 35 : undefined);
  });

  it('keeps warm for a fixed keepWarm whatever the objective', () => {
    const cfg = { ...auto, keepWarm: 45, drainSeconds: 15 };
    const history = { ...emptyHistory(), lastWorkAtMs: 0, idleSinceMs: 0 };
    expect(decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: 44_000 }).decision.active).toBe(true);
    expect(decide({ signals: { backlog: 0 }, scaling: cfg, history, nowMs: 46_000 }).decision.active).toBe(false);
  });

  it('keeps warm through short gaps it has learned, and scales to zero at once after long ones', () => {
    const short = replay([
      [10, 20],
      [10, 25],
      [10, 30],
      [10, 0],
    ]);
    const d = decide({ signals: { backlog: 0 }, scaling: auto, history: short.history, nowMs: (short.t + 29) * 1000 }).decision;
    expect(d.active).toBe(true);
    // Every gap seen was worth bridging: the longest (30 s), then the break-even (60 s) more.
    expect(d.explanation.details.keepWarmSeconds).toBe(90);
    const long = replay([
      [10, 900],
      [10, 1300],
      [10, 2000],
      [10, 0],
    ]);
    expect(
      decide({ signals: { backlog: 0 }, scaling: auto, history: long.history, nowMs: (long.t + 1) * 1000 }).decision.active,
    ).toBe(false);
  });

  it('prewarms one cold start before a regular gap ends, from the second regular gap on, when a cold start breaks the objective', () => {
    const { history, t } = regularGaps();
    const ask = (idle: number) => decide({ signals: { backlog: 0 }, scaling: tight, history, nowMs: (t + idle) * 1000 }).decision;
    expect(ask(500).active).toBe(false);
    expect(ask(535).active).toBe(true);
    expect(ask(535).explanation.activeReason).toContain('prewarm');
    expect(ask(651).active).toBe(false); // gave up one cold start after the longest gap
  });

  // Found by review: a busy period shorter than C − T (a batch drained in 10 s, C 60, T 15) left its
  // head's count open into the gap after it, which was priced as one late request: keep-warm let the
  // fleet go at once, and asked for it back when the count closed (the hold's 60 replicas).
  it('counts a short busy period’s head when it ends, so the gap after it is priced with it', () => {
    let history = emptyHistory();
    const step = (t: number, backlog: number, arrived: number) =>
      decide({ signals: { backlog, arrivedTotal: arrived }, scaling: tight, history, nowMs: t * 1000 });
    for (const [t, backlog, arrived] of [
      [0, 300, 300],
      [10, 0, 300],
      [600, 300, 600],
      [610, 0, 600],
    ] as const) {
      history = step(t, backlog, arrived).history;
    }
    expect(history.gapHeads).toEqual([300]);
    const idle = (t: number) => decide({ signals: { backlog: 0, arrivedTotal: 600 }, scaling: tight, history, nowMs: t * 1000 });
    // The gap of 590 s whose wake left 300 requests late (3,000 GPU-s) is worth bridging, from the
    // moment the batch is drained to after the 45 s its head is counted over.
    for (const t of [611, 650]) {
      expect(idle(t).decision.active).toBe(true);
      expect(idle(t).decision.explanation.details.keepWarmSeconds).toBeGreaterThan(590);
    }
  });

  it('prices a wake at C when the gaps predict it, so a late head does not keep the fleet warm through regular gaps', () => {
    // Batches every 600 s: 20 requests each (4 replicas by KEDA's rule), all in the first C − T s.
    let history = emptyHistory();
    let t = 0;
    let arrived = 0;
    for (let batch = 0; batch < 3; batch++) {
      arrived += 20;
      history = decide({ signals: { backlog: 20, arrivedTotal: arrived }, scaling: tight, history, nowMs: t * 1000 }).history;
      t += 10;
      history = decide({ signals: { backlog: 0, arrivedTotal: arrived }, scaling: tight, history, nowMs: t * 1000 }).history;
      t += 590;
    }
    t -= 590;
    const at = (idle: number, backlog = 0) =>
      decide({ signals: { backlog, arrivedTotal: arrived + backlog }, scaling: tight, history, nowMs: (t + idle) * 1000 });
    // Two regular gaps: the next wake costs the cold start alone (60 s), not 60 + 10 · 20 late, and
    // gaps of 590 s are not worth bridging at that price: no window.
    expect(at(1).decision.explanation.details).toMatchObject({
      coldStartCostSeconds: 60,
      keepWarmSeconds: 0,
      keepWarmSource: 'learned',
      expectedGapSeconds: 590,
    });
    expect(at(1).decision.active).toBe(false);
    // One cold start before the expected end: the fleet of the last batches, held when the batch comes.
    const prewarm = at(535);
    expect(prewarm.decision).toMatchObject({ active: true, desiredReplicas: 4 });
    expect(prewarm.decision.explanation.winner).toBe('prewarm');
    const batch = decide({
      signals: { backlog: 1, arrivedTotal: arrived + 1 },
      scaling: tight,
      history: prewarm.history,
      nowMs: (t + 590) * 1000,
    }).decision;
    expect(batch.desiredReplicas).toBe(4);
    expect(batch.explanation.winner).toBe('hold');
  });

  it('prewarms as many replicas as the last bursts say pay for their cold start, and none when none pays', () => {
    const { history, t } = regularGaps();
    const ask = (burst: { need: number; size: number }) =>
      decide({
        signals: { backlog: 0 },
        scaling: tight,
        history: { ...history, bursts: [{ atMs: 0, ...burst }] },
        nowMs: (t + 535) * 1000,
      }).decision;
    // 300 requests needing 6 replicas: each replica short leaves 50 late (500 GPU-s) > C (60).
    expect(ask({ need: 6, size: 300 })).toMatchObject({ active: true, desiredReplicas: 6 });
    // 30 requests: 5 late per replica short (50 GPU-s) < C: cheaper to let the batch wait.
    expect(ask({ need: 6, size: 30 }).active).toBe(false);
  });

  it('does not prewarm when a cold start fits in the objective, nor after irregular gaps', () => {
    const regular = replay([
      [10, 590],
      [10, 590],
      [10, 0],
    ]);
    expect(
      decide({ signals: { backlog: 0 }, scaling: auto, history: regular.history, nowMs: (regular.t + 535) * 1000 }).decision
        .active,
    ).toBe(false);
    const irregular = replay(
      [
        [10, 400],
        [10, 590],
        [10, 0],
      ],
      tight,
    );
    expect(
      decide({ signals: { backlog: 0 }, scaling: tight, history: irregular.history, nowMs: (irregular.t + 535) * 1000 }).decision
        .active,
    ).toBe(false);
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
    expect(warm.decision.explanation.activeReason).toBe(
      'idle since 1970-01-01T00:00:10.000Z: keep warm until 1970-01-01T00:02:10.000Z (120 s, fixed)',
    );
    expect(sameDecision(warm.decision, stillWarm.decision)).toBe(true);

    const cold = decide({ signals: { backlog: 0 }, scaling: cfg, history: stillWarm.history, nowMs: 131_000 });
    const stillCold = decide({ signals: { backlog: 0 }, scaling: cfg, history: cold.history, nowMs: 141_000 });
    expect(cold.decision.active).toBe(false);
    expect(cold.decision.explanation.activeReason).toBe(
      'idle since 1970-01-01T00:00:10.000Z: kept warm until 1970-01-01T00:02:10.000Z (120 s, fixed)',
    );
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
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
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

describe('decide after a silence (a paused ScaledObject resumed): resumedHistory', () => {
  /** A history with something learned and something of the moment in every part. */
  const history: TriggerHistory = {
    ...emptyHistory(),
    lastWorkAtMs: 1_000,
    idleSinceMs: 2_000,
    idleGapsSeconds: [40, 300],
    lastDesiredReplicas: 6,
    lastDecisionAtMs: 3_000,
    lastActive: true,
    lastThroughputKnown: true,
    recentAsks: [{ atMs: 2_500, replicas: 2 }],
    recentDemands: [{ atMs: 2_500, replicas: 6 }],
    steadyArrivalRatePerSecond: 2.5,
    rateTrail: [{ atMs: 2_900, rate: 2.4 }],
    riseWatch: { probe: { atMs: 2_800, level: 3 }, lasting: 0.4 },
    serviceEvidence: { occupancySeconds: 900, served: 500, averagingSeconds: 120, spanSeconds: 120 },
    slotsPerReplica: 4,
    lastInFlight: 12,
    lastServedTotal: 7_000,
    learnedThroughputPerReplica: 2.2,
    arrivalMarks: [{ atMs: 2_900, total: 7_100 }],
    gapHeads: [3, 9],
    headStart: { atMs: 2_700, total: 7_050 },
    bursts: [],
    busyPeakReplicas: 6,
    busyPeaks: [5, 6],
    pendingStarts: [{ atMs: 2_500, replicas: 2 }],
    coldStartSamples: [31, 44],
    lastReady: 4,
  };

  it('keeps what was learned and drops what was said of the moment', () => {
    const resumed = resumedHistory(history);
    expect(resumed).toEqual({
      lastWorkAtMs: 1_000,
      idleSinceMs: 2_000,
      idleGapsSeconds: [40, 300],
      lastActive: true,
      lastThroughputKnown: true,
      steadyArrivalRatePerSecond: 2.5,
      riseWatch: { lasting: 0.4 },
      serviceEvidence: history.serviceEvidence,
      slotsPerReplica: 4,
      learnedThroughputPerReplica: 2.2,
      gapHeads: [3, 9],
      bursts: [],
      busyPeaks: [5, 6],
      coldStartSamples: [31, 44],
    });
    expect(resumedHistory({ ...history, riseWatch: { probe: { atMs: 1, level: 1 } } }).riseWatch).toBeUndefined();
  });

  it.each([
    { what: 'a silence of RESUME_GAP_MS: the history as it was', silenceMs: RESUME_GAP_MS, resumed: false },
    { what: 'a longer silence: the history resumed', silenceMs: RESUME_GAP_MS + 1, resumed: true },
  ])('$what', ({ silenceMs, resumed }) => {
    const nowMs = history.lastDecisionAtMs! + silenceMs;
    const out = decide({ signals: { backlog: 0, arrivedTotal: 7_200 }, scaling: { ...scaling, keepWarm: 60 }, history, nowMs });
    expect(out.decision.explanation.details.resumedAfterSilenceSeconds).toBe(resumed ? silenceMs / 1000 : undefined);
    // The busy period's head being counted is closed (a third head) only in a history as it was;
    // what was learned stays either way.
    expect(out.history.gapHeads).toHaveLength(resumed ? 2 : 3);
    expect(out.history.coldStartSamples).toEqual([31, 44]);
    expect(out.history.idleGapsSeconds).toEqual([40, 300]);
  });

  // A replica that decided alone while the shared store was out of reach, given the record another
  // wrote before the outage (engine.ts, olderThanOwn).
  it.each([
    { what: 'busy since', current: { ...emptyHistory(), lastWorkAtMs: 9_000, lastActive: true, lastDecisionAtMs: 9_500 } },
    {
      what: 'idle since, its fleet asked for',
      current: {
        ...emptyHistory(),
        idleSinceMs: 9_200,
        lastWorkAtMs: 9_100,
        lastActive: false,
        lastDesiredReplicas: 2,
        lastDecisionAtMs: 9_500,
      },
    },
  ])("learnedAtMomentOf: what the record learned, the replica's own moment ($what)", ({ current }) => {
    const merged = learnedAtMomentOf(history, current);
    // The record's learning...
    expect(merged).toMatchObject({
      idleGapsSeconds: [40, 300],
      steadyArrivalRatePerSecond: 2.5,
      learnedThroughputPerReplica: 2.2,
      coldStartSamples: [31, 44],
      busyPeaks: [5, 6],
      gapHeads: [3, 9],
    });
    // ...and nothing of its moment or its last work and idle period, only the replica's own.
    for (const key of [
      'lastWorkAtMs',
      'idleSinceMs',
      'lastActive',
      'lastDesiredReplicas',
      'lastDecisionAtMs',
      'recentAsks',
      'pendingStarts',
      'arrivalMarks',
      'lastServedTotal',
      'lastReady',
    ] as const) {
      expect(merged[key], key).toEqual(current[key as keyof typeof current]);
    }
  });

  it('leaves a workload idle before and after the silence at zero', () => {
    const nowMs = history.lastDecisionAtMs! + 60 * 60_000;
    const out = decide({ signals: { backlog: 0 }, scaling: { ...scaling, keepWarm: 600 }, history, nowMs });
    expect(out.decision.active).toBe(false);
    expect(out.history.idleSinceMs).toBe(history.idleSinceMs);
  });
});

// Found by review: a wall clock stepped back an hour left the hold's marks in the future, where no
// window let them go: the replicas of a busy minute held for an hour instead of a cold start.
describe('a wall clock stepped back', () => {
  const settings = { ...scaling, throughputPerReplica: 1, coldStartSeconds: 30 };
  /** A busy minute (7 replicas), then 10 messages every 15 s for 5 minutes, the clock stepped back `stepMs` at the turn. */
  function heldThenSteppedBack(stepMs: number) {
    let history = emptyHistory();
    const t0 = 10 * 3_600_000;
    for (let t = 0; t <= 60_000; t += 15_000) {
      history = decide({
        signals: { backlog: 400, waiting: 400, consumers: 40 },
        scaling: settings,
        history,
        nowMs: t0 + t,
      }).history;
    }
    expect(history.lastDesiredReplicas).toBe(7);
    const answers: { desired: number; winner: string; stepped?: number | string | boolean }[] = [];
    for (let t = 15_000; t <= 5 * 60_000; t += 15_000) {
      const nowMs = t0 + 60_000 - stepMs + t;
      const { decision, history: next } = decide({
        signals: { backlog: 10, waiting: 10, consumers: 40 },
        scaling: settings,
        history,
        nowMs,
      });
      history = next;
      answers.push({
        desired: decision.desiredReplicas,
        winner: decision.explanation.winner,
        stepped: decision.explanation.details.clockSteppedBackSeconds,
      });
    }
    return answers;
  }

  it('an hour: resumed as after a silence, nothing held, and the explanation says so', () => {
    const answers = heldThenSteppedBack(3_600_000);
    expect(answers[0]!.stepped).toBe(3_600 - 15);
    expect(answers.map((a) => a.desired)).toEqual(answers.map(() => 1));
    expect(answers.slice(1).every((a) => a.stepped === undefined)).toBe(true);
  });

  // Found by review: the idle period taken for now restarted the keep-warm window and woke a workload
  // idle for 15 minutes at zero.
  it('an hour, idle for 15 minutes and at zero: stays at zero', () => {
    const idle = { ...settings, keepWarm: 300 };
    let history = emptyHistory();
    const t0 = 10 * 3_600_000;
    history = decide({ signals: { backlog: 5, waiting: 5, consumers: 1 }, scaling: idle, history, nowMs: t0 }).history;
    for (let t = 15_000; t <= 15 * 60_000; t += 15_000) {
      history = decide({ signals: { backlog: 0, waiting: 0, consumers: 0 }, scaling: idle, history, nowMs: t0 + t }).history;
    }
    expect(history.lastActive).toBe(false);
    const out = decide({
      signals: { backlog: 0, waiting: 0, consumers: 0 },
      scaling: idle,
      history,
      nowMs: t0 + 15 * 60_000 - 3_600_000 + 15_000,
    });
    expect(out.decision.explanation.details.clockSteppedBackSeconds).toBe(3_600 - 15);
    expect(out.decision.active).toBe(false);
  });

  it("by less than CLOCK_STEP_BACK_MS (two replicas' clocks apart): the history as it was, the hold let go a little later", () => {
    const answers = heldThenSteppedBack(CLOCK_STEP_BACK_MS - 15_000);
    expect(answers.every((a) => a.stepped === undefined)).toBe(true);
    expect(answers[0]).toMatchObject({ desired: 7, winner: 'hold' });
    expect(answers.slice(-10).every((a) => a.desired === 1)).toBe(true);
  });
});

// Found by review: a record's lastDesiredReplicas sized an array of starting replicas (1e8 took
// 3 s and 1.8 GiB); the fleet asked for is at most maxReplicas, as KEDA runs it.
describe('a remembered fleet past maxReplicas', () => {
  it('counts at most maxReplicas asked for, and answers within the bounds', () => {
    const signals: Signals = { backlog: 10, waiting: 10, inFlight: 0, consumers: 2 };
    const decision = withFour(signals, { ...scaling, maxReplicas: 20, throughputPerReplica: 1 }, { lastDesiredReplicas: 1e8 });
    // 20 asked for, 2 of them ready: 18 starting, not 99,999,998.
    expect(decision.explanation.details.startingReplicas).toBe(18);
    expect(decision.desiredReplicas).toBeLessThanOrEqual(20);
  });
});

// Found by review: records another writer stored that the store's schema takes, at its edges, made
// the model answer wrong (a negative C, an Infinity μ and NaN demands, a fraction of a replica).
describe("decide: a record of another writer's at the edges of what the store takes", () => {
  const NOW = 1.7e12;
  const waiting: Signals = { backlog: 500, waiting: 492, inFlight: 8, consumers: 2, arrivalRatePerSecond: 2 };
  it.each([
    {
      what: '64 cold-start samples (the model keeps 20): C within the samples and the prior, as with 20',
      history: { coldStartSamples: Array<number>(64).fill(10) },
      sane: { coldStartSamples: Array<number>(20).fill(10) },
      overrides: { coldStartSeconds: 'auto' as const, coldStartPriorSeconds: 60, throughputPerReplica: 1 },
    },
    {
      what: 'throughput evidence of 1e300 served over 1e-10 replica-seconds: μ at most what a setting may say',
      history: { throughputEvidence: { served: 1e300, replicaSeconds: 1e-10 } },
      sane: { throughputEvidence: { served: 1e6 * 600, replicaSeconds: 600 } },
      overrides: { coldStartSeconds: 60 },
    },
  ])('$what', ({ history, sane, overrides }) => {
    const cfg: ScalingConfig = { ...scaling, ...overrides };
    const edge = decide({ signals: waiting, scaling: cfg, history: { ...emptyHistory(), ...history }, nowMs: NOW });
    const bounded = decide({ signals: waiting, scaling: cfg, history: { ...emptyHistory(), ...sane }, nowMs: NOW });
    expect(triggerHistorySchema.safeParse({ ...emptyHistory(), ...history }).success).toBe(true);
    expect(edge.decision.desiredReplicas).toBe(bounded.decision.desiredReplicas);
    expect(edge.decision.explanation.details.coldStartSeconds).toBe(bounded.decision.explanation.details.coldStartSeconds);
    // What it writes back, the store takes: its readers do not reject the trigger's records from then on.
    expect(triggerHistorySchema.safeParse(JSON.parse(JSON.stringify(edge.history))).success).toBe(true);
  });

  it('asks for whole replicas when the hold it read holds a fraction', () => {
    const cfg: ScalingConfig = { ...scaling, coldStartSeconds: 60 };
    const history: TriggerHistory = {
      ...emptyHistory(),
      lastDecisionAtMs: NOW - 15_000,
      lastActive: true,
      lastDesiredReplicas: 2.5,
      recentDemands: [{ atMs: NOW - 15_000, replicas: 2.5 }],
    };
    expect(triggerHistorySchema.safeParse(history).success).toBe(true);
    const d = decide({ signals: { backlog: 1 }, scaling: cfg, history, nowMs: NOW }).decision;
    expect(d.desiredReplicas).toBe(3);
  });
});

describe('computedDemands: a demand the model could not compute asks for maxReplicas, never nothing', () => {
  it.each([
    {
      what: 'every demand computed: the same object',
      demands: { backlog: 3, gpu: 2 },
      out: { backlog: 3, gpu: 2 },
      said: undefined,
    },
    { what: 'a NaN backlog demand', demands: { backlog: Number.NaN, gpu: 2 }, out: { backlog: 40, gpu: 2 }, said: 'backlog' },
    {
      what: 'a NaN prewarm beside a computed backlog',
      demands: { backlog: 1, prewarm: Number.NaN },
      out: { backlog: 1, prewarm: 40 },
      said: 'prewarm',
    },
    { what: 'a term not computed at all (undefined) stays so', demands: { backlog: 0 }, out: { backlog: 0 }, said: undefined },
  ])('$what', ({ demands, out, said }) => {
    const details: Record<string, number | string | boolean> = {};
    const computed = computedDemands(demands, 40, details);
    expect(computed).toEqual(out);
    if (said === undefined) expect(computed).toBe(demands);
    expect(details.uncomputedDemand).toBe(said);
  });
});

describe('backlogDemand: one it could not compute asks for maxReplicas, at every caller', () => {
  it('reads a NaN (a cold start not a number) as maxReplicas, and says so when it keeps details', () => {
    const signals: Signals = { backlog: 50, waiting: 50, consumers: 2, arrivalRatePerSecond: 1 };
    const service = {
      throughputPerReplica: 1,
      serviceSeconds: 4,
      slotsPerReplica: 4,
      source: 'configured',
      history: {},
    } as const;
    const fleet = { ready: 2, startingSecondsLeft: [] };
    const rates = { fast: 1, steady: 1 };
    const cfg: ScalingConfig = { ...scaling, maxReplicas: 40 };
    const details: Record<string, number | string | boolean> = {};
    expect(backlogDemand(signals, cfg, service, fleet, rates, Number.NaN, details)).toBe(40);
    expect(details.uncomputedDemand).toBe('backlog');
    expect(backlogDemand(signals, cfg, service, fleet, rates, Number.NaN, undefined, 30)).toBe(40);
    expect(backlogDemand(signals, cfg, service, fleet, rates, 10, undefined)).toBeLessThan(40);
  });
});

describe('decide: what Kafka consumers served and have not committed (uncommittedServed)', () => {
  it('sizes from the backlog without it, and reads it as work for the activity', () => {
    const without = run({ backlog: 10 });
    const withIt = run({ backlog: 10, uncommittedServed: 20 });
    expect(withIt.desiredReplicas).toBe(without.desiredReplicas);
    expect(withIt.explanation.demands).toEqual(without.explanation.demands);
    // All the lag served and uncommitted: still work until committed, never a false inactive.
    const onlyUncommitted = run({ backlog: 0, uncommittedServed: 3 });
    expect(onlyUncommitted.active).toBe(true);
    expect(onlyUncommitted.explanation.activeReason).toBe('lag 3 (backlog 0 + 3 served, not committed) > activationBacklog 0');
    expect(run({ backlog: 0 }).active).toBe(false);
  });
});

describe('the explanation keeps small figures', () => {
  it.each([
    { x: 0.000278, shown: 0.000278 }, // one request an hour, a second
    { x: 0.0123456, shown: 0.0123 },
    { x: 0.5, shown: 0.5 },
    { x: 2.34567, shown: 2.346 },
    { x: 0, shown: 0 },
    { x: -0.00041234, shown: -0.000412 },
  ])('round($x) = $shown: three decimals, or three significant digits under 1 (found by review)', ({ x, shown }) => {
    expect(round(x)).toBe(shown);
  });

  it("shows a rate of one request an hour in the backlog demand's details, not 0", () => {
    const signals: Signals = { backlog: 1, waiting: 1, consumers: 1, arrivalRatePerSecond: 1 / 3600 };
    const service = {
      throughputPerReplica: 0.0002,
      serviceSeconds: 20_000,
      slotsPerReplica: 4,
      source: 'configured',
      history: {},
    } as const;
    const details: Record<string, number | string | boolean> = {};
    backlogDemand(
      signals,
      scaling,
      service,
      { ready: 1, startingSecondsLeft: [] },
      { fast: 1 / 3600, steady: 1 / 3600 },
      60,
      details,
    );
    expect(details.arrivalRatePerSecond).toBe(0.000278);
    expect(details.readyServedPerSecond).toBe(0.0002);
  });
});

describe('backlogDemand at T > C: the messages waiting now start within T of now', () => {
  // μ 2.5 a replica (S 1.6 s, k 4), T 60 s, C 40 s, no arrivals after now: the fluid conditions
  // alone size a queue at C as if its messages had just arrived.
  const service = {
    throughputPerReplica: 2.5,
    serviceSeconds: 1.6,
    slotsPerReplica: 4,
    source: 'configured',
    history: {},
  } as const;
  const rates = { fast: 0, steady: 0 };
  it.each([
    // waiting, ready, starting (seconds left), replicas asked (waitingStartedWithinT, or none when the fleet there starts them)
    { waiting: 100, ready: 1, starting: [], asked: undefined }, // one ready starts 4 + 150 within T
    { waiting: 300, ready: 1, starting: [], asked: 1 + Math.ceil((300 - 154) / (4 + 2.5 * 20)) }, // 3 more, up after C
    { waiting: 300, ready: 0, starting: [10], asked: 1 + Math.ceil((300 - (4 + 2.5 * 50)) / 54) }, // one starting, up in 10 s
    { waiting: 300, ready: 3, starting: [], asked: undefined }, // 3 · 154 ≥ 300
  ])('$waiting waiting, $ready ready, starting $starting: $asked', ({ waiting, ready, starting, asked }) => {
    const signals: Signals = { backlog: waiting, waiting, consumers: ready, arrivalRatePerSecond: 0 };
    const details: Record<string, number | string | boolean> = {};
    const n = backlogDemand(
      signals,
      { ...scaling, drainSeconds: 60, maxReplicas: 100 },
      service,
      { ready, startingSecondsLeft: starting },
      rates,
      40,
      details,
    );
    expect(details.waitingStartedWithinT).toBe(asked);
    if (asked !== undefined) expect(n).toBeGreaterThanOrEqual(asked);
  });

  it.each([
    {
      what: 'T ≤ C: replicas asked now start none of them in time',
      T: 30,
      serving: service,
      prefetched: undefined,
      budget: undefined,
    },
    {
      // Messages prefetched past the slots: the queue's share of T is T less one service time (30 s).
      what: 'the budget, T less what waits inside the replicas, within C',
      T: 60,
      serving: { ...service, throughputPerReplica: 4 / 30, serviceSeconds: 30 },
      prefetched: 4,
      budget: 30,
    },
  ])('not where $what', ({ T, serving, prefetched, budget }) => {
    const signals: Signals = {
      backlog: 300,
      waiting: 300,
      consumers: 1,
      arrivalRatePerSecond: 0,
      ...(prefetched && { prefetched }),
    };
    const details: Record<string, number | string | boolean> = {};
    backlogDemand(
      signals,
      { ...scaling, drainSeconds: T, maxReplicas: 100 },
      serving,
      { ready: 1, startingSecondsLeft: [] },
      rates,
      40,
      details,
    );
    expect(details.queueBudgetSeconds).toBe(budget);
    expect(details.waitingStartedWithinT).toBeUndefined();
  });
});
