// A history's times moved to another clock: a record written by a replica whose clock differs
// from the reader's (state/redis.ts measures both against the store's) is read on the reader's.
// Pure. Every field of TriggerHistory says whether it holds a time (the `satisfies` makes a new
// field say so), so none is left on the writer's clock.
import type { ArrivalMark, RateMark, RiseWatch } from './arrivals.ts';
import type { Burst } from './bursts.ts';
import type { ConsumerRatio, ReplicaMark, TriggerHistory } from './types.ts';

type Shift<V> = (value: V, ms: number) => V;

const at = <M extends { readonly atMs: number }>(mark: M, ms: number): M => ({ ...mark, atMs: mark.atMs + ms });
const each =
  <M extends { readonly atMs: number }>(): Shift<readonly M[]> =>
  (list, ms) =>
    list.map((m) => at(m, ms));
const start = <M extends { readonly startMs: number }>(stretch: M, ms: number): M => ({
  ...stretch,
  startMs: stretch.startMs + ms,
});
const time: Shift<number> = (value, ms) => value + ms;

/** How each field's times move; false for a field without one. */
const SHIFTS = {
  lastWorkAtMs: time,
  idleSinceMs: time,
  idleGapsSeconds: false,
  lastDesiredReplicas: false,
  lastDecisionAtMs: time,
  lastActive: false,
  lastThroughputKnown: false,
  heldGuesses: at,
  recentAsks: each<ReplicaMark>(),
  recentDemands: each<ReplicaMark>(),
  holdDips: false,
  steadyArrivalRatePerSecond: false,
  rateTrail: each<RateMark>(),
  riseWatch: (watch: RiseWatch, ms: number): RiseWatch =>
    watch.probe === undefined ? watch : { ...watch, probe: at(watch.probe, ms) },
  serviceEvidence: false,
  slotsPerReplica: false,
  drainingUntilMs: time,
  lastInFlight: false,
  lastServedTotal: false,
  learnedThroughputPerReplica: false,
  throughputEvidence: false,
  busyStretch: start,
  backlogMinute: start,
  backlogSecondsPerServed: false,
  backlogRises: false,
  arrivalMarks: each<ArrivalMark>(),
  gapHeads: false,
  headStart: at,
  burstEpisode: at<Burst>,
  bursts: each<Burst>(),
  busyPeakReplicas: false,
  busyPeaks: false,
  busyPeakBacklog: false,
  busyBacklogPeaks: false,
  pendingStarts: each<ReplicaMark>(),
  coldStartSamples: false,
  retractedStart: (ask, ms) => ({ ...ask, atMs: ask.atMs + ms, retractedAtMs: ask.retractedAtMs + ms }),
  occupancyMinute: start,
  occupancyMinutes: false,
  lastReady: false,
  counterBasis: false,
  askPeaks: each<ReplicaMark>(),
  consumerRatio: (ratio: ConsumerRatio, ms: number): ConsumerRatio =>
    ratio.fellAtMs === undefined ? ratio : { ...ratio, fellAtMs: ratio.fellAtMs + ms },
} satisfies { [K in keyof TriggerHistory]-?: Shift<NonNullable<TriggerHistory[K]>> | false };

/** The fields that hold times, with how each moves. */
const TIMED = Object.entries(SHIFTS as Record<string, Shift<unknown> | false>).filter(
  (entry): entry is [string, Shift<unknown>] => entry[1] !== false,
);

/** The history with every time in it `ms` later (earlier when negative); durations and counts as they are. */
export function shiftHistory(history: TriggerHistory, ms: number): TriggerHistory {
  if (ms === 0) return history;
  const out: Record<string, unknown> = { ...history };
  for (const [field, shift] of TIMED) {
    const value = out[field];
    if (value !== undefined) out[field] = shift(value, ms);
  }
  return out as unknown as TriggerHistory;
}
