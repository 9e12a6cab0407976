import { describe, expect, it } from 'vitest';
import { shiftHistory } from '../../src/model/historyClock.ts';
import { triggerHistorySchema } from '../../src/model/historySchema.ts';
import type { TriggerHistory } from '../../src/model/types.ts';

const T = 1_760_000_000_000;

/** Every field set (Required: a new field must be added here), its times T + something. */
const full: Required<TriggerHistory> = {
  lastWorkAtMs: T + 1,
  idleSinceMs: T + 2,
  idleGapsSeconds: [30, 45],
  lastDesiredReplicas: 3,
  lastDecisionAtMs: T + 3,
  lastActive: true,
  lastThroughputKnown: true,
  heldGuesses: { atMs: T + 4, waiting: 12 },
  recentAsks: [{ atMs: T + 5, replicas: 2 }],
  recentDemands: [{ atMs: T + 6, replicas: 4 }],
  holdDips: [{ seconds: 20, replicas: 1 }],
  steadyArrivalRatePerSecond: 2.5,
  rateTrail: [{ atMs: T + 7, rate: 2.4 }],
  riseWatch: { probe: { atMs: T + 8, level: 3.1 }, lasting: 0.7 },
  serviceEvidence: { occupancySeconds: 100, served: 50, averagingSeconds: 60, spanSeconds: 60 },
  slotsPerReplica: 4,
  drainingUntilMs: T + 9,
  lastInFlight: 8,
  lastServedTotal: 1000,
  learnedThroughputPerReplica: 2.5,
  throughputEvidence: { served: 400, replicaSeconds: 160 },
  busyStretch: { startMs: T + 10, servedTotal: 900, consumers: 2 },
  backlogMinute: { startMs: T + 11, backlogSeconds: 30, servedTotal: 950 },
  backlogSecondsPerServed: [1.6],
  backlogRises: { backlog: 3, total: 1200 },
  arrivalMarks: [{ atMs: T + 12, total: 1190 }],
  gapHeads: [14],
  headStart: { atMs: T + 13, total: 1100 },
  burstEpisode: { atMs: T + 14, need: 3, size: 40, riseSeconds: 5 },
  bursts: [{ atMs: T + 15, need: 6, size: 90, riseSeconds: 8 }],
  busyPeakReplicas: 5,
  busyPeaks: [5, 6],
  busyPeakBacklog: 70,
  busyBacklogPeaks: [60],
  pendingStarts: [{ atMs: T + 16, replicas: 1 }],
  coldStartSamples: [31, 44],
  retractedStart: { atMs: T + 17, replicas: 1, retractedAtMs: T + 18 },
  occupancyMinute: { startMs: T + 19, servedTotal: 980, inFlightSeconds: 400, consumerSeconds: 120 },
  occupancyMinutes: [{ serviceSeconds: 1.6, servedPerConsumer: 2.4, inFlightPerConsumer: 3.9 }],
  lastReady: 2,
  counterBasis: 'queue:jobs',
  askPeaks: [{ atMs: T + 20, replicas: 3 }],
  consumerRatio: { log2: 1.5, aboveSeconds: 600, fellAtMs: T + 21 },
};

/** Every number in the value that is a time (T + something), in the order met. */
function times(value: unknown): number[] {
  if (typeof value === 'number') return value > T - 1e9 ? [value] : [];
  if (typeof value !== 'object' || value === null) return [];
  return Object.values(value).flatMap(times);
}

/** The value with every time replaced by a mark: what must not move. */
function rest(value: unknown): unknown {
  if (typeof value === 'number') return value > T - 1e9 ? 'time' : value;
  if (Array.isArray(value)) return value.map(rest);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rest(v)]));
}

describe('shiftHistory', () => {
  it('the fixture is a history the schema takes, with its 21 times', () => {
    expect(triggerHistorySchema.safeParse(full).success).toBe(true);
    expect(times(full)).toHaveLength(21);
  });

  it.each([
    ['a ratio past a million consumers a replica', { log2: 21, aboveSeconds: 0 }],
    ['more seconds in a row than a hint waits for', { log2: 1, aboveSeconds: 601 }],
  ])('refuses a consumer ratio with %s (garbage, or another version)', (_name, consumerRatio) => {
    expect(triggerHistorySchema.safeParse({ ...full, consumerRatio }).success).toBe(false);
  });

  it.each([
    ['a writer 30 s behind the reader', 30_000],
    ['a writer 2 minutes ahead', -120_000],
    ['a second and a half', 1_500],
  ])('%s: every time moves by %d ms, nothing else', (_name, ms) => {
    const shifted = shiftHistory(full, ms);
    expect(times(shifted)).toEqual(times(full).map((t) => t + ms));
    expect(rest(shifted)).toEqual(rest(full));
    expect(triggerHistorySchema.safeParse(shifted).success).toBe(true);
    expect(shiftHistory(shifted, -ms)).toEqual(full);
  });

  it('leaves fields that are not set unset, and returns the history itself for 0', () => {
    const sparse: TriggerHistory = { idleGapsSeconds: [], lastWorkAtMs: T };
    expect(shiftHistory(sparse, 5_000)).toEqual({ idleGapsSeconds: [], lastWorkAtMs: T + 5_000 });
    expect(shiftHistory(full, 0)).toBe(full);
  });

  it('moves a rise watch without a probe as it is', () => {
    const watch = { idleGapsSeconds: [], riseWatch: { lasting: 0.4 } };
    expect(shiftHistory(watch, 5_000)).toEqual(watch);
  });
});
