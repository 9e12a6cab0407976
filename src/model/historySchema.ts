// The shape a TriggerHistory must have to be read back from a shared store: a record written by
// another version of the scaler, or anything else found there, fails it and is ignored (never
// reaching the model). Bounds keep one record's size bounded whatever wrote it.
import { z } from 'zod';
import { MAX_REPLICAS } from '../trigger/types.ts';
import { HINT_AFTER_SECONDS, MAX_RATIO_LOG2 } from './consumerRatio.ts';
import { MAX_DIPS } from './hold.ts';
import { MAX_COUNTER_BASIS_CHARS, MAX_MARKS, type TriggerHistory } from './types.ts';

const finite = z.number().finite();
const nonNegative = finite.nonnegative();
/** A replica count: no more than a trigger may ask for (a record past it is garbage, not a fleet). */
const replicas = nonNegative.max(MAX_REPLICAS);
const mark = z.object({ atMs: finite, replicas }).readonly();
const list = <T extends z.ZodType>(item: T, max = 64) => z.array(item).max(max).readonly();
const burst = z.object({ atMs: finite, need: nonNegative, size: nonNegative, riseSeconds: nonNegative.optional() }).readonly();

export const triggerHistorySchema: z.ZodType<TriggerHistory> = z
  .object({
    lastWorkAtMs: finite.optional(),
    idleSinceMs: finite.optional(),
    idleGapsSeconds: list(nonNegative),
    lastDesiredReplicas: replicas.optional(),
    lastDecisionAtMs: finite.optional(),
    lastActive: z.boolean().optional(),
    lastThroughputKnown: z.boolean().optional(),
    heldGuesses: z.object({ atMs: finite, waiting: nonNegative }).readonly().optional(),
    recentAsks: list(mark, MAX_MARKS).optional(),
    recentDemands: list(mark, MAX_MARKS).optional(),
    holdDips: list(z.object({ seconds: nonNegative, replicas }).readonly(), MAX_DIPS).optional(),
    steadyArrivalRatePerSecond: nonNegative.optional(),
    rateTrail: list(z.object({ atMs: finite, rate: nonNegative }).readonly(), 16).optional(),
    riseWatch: z
      .object({
        probe: z.object({ atMs: finite, level: nonNegative }).readonly().optional(),
        lasting: finite.min(0).max(1).optional(),
      })
      .readonly()
      .optional(),
    serviceEvidence: z
      .object({
        occupancySeconds: nonNegative,
        served: nonNegative,
        averagingSeconds: finite.positive(),
        spanSeconds: nonNegative,
      })
      .readonly()
      .optional(),
    slotsPerReplica: finite.positive().optional(),
    drainingUntilMs: finite.optional(),
    lastInFlight: nonNegative.optional(),
    lastServedTotal: nonNegative.optional(),
    learnedThroughputPerReplica: finite.positive().optional(),
    throughputEvidence: z.object({ served: nonNegative, replicaSeconds: nonNegative }).readonly().optional(),
    busyStretch: z.object({ startMs: finite, servedTotal: nonNegative, consumers: nonNegative }).readonly().optional(),
    backlogMinute: z.object({ startMs: finite, backlogSeconds: nonNegative, servedTotal: nonNegative }).readonly().optional(),
    backlogSecondsPerServed: list(nonNegative, 16).optional(),
    arrivalMarks: list(z.object({ atMs: finite, total: nonNegative }).readonly()).optional(),
    backlogRises: z.object({ backlog: nonNegative, total: nonNegative }).readonly().optional(),
    gapHeads: list(nonNegative).optional(),
    headStart: z.object({ atMs: finite, total: finite }).readonly().optional(),
    burstEpisode: burst.optional(),
    bursts: list(burst).optional(),
    busyPeakReplicas: replicas.optional(),
    busyPeaks: list(nonNegative).optional(),
    busyPeakBacklog: nonNegative.optional(),
    busyBacklogPeaks: list(nonNegative).optional(),
    pendingStarts: list(mark).optional(),
    coldStartSamples: list(nonNegative).optional(),
    retractedStart: z.object({ atMs: finite, replicas, retractedAtMs: finite }).readonly().optional(),
    lastReady: replicas.optional(),
    counterBasis: z.string().max(MAX_COUNTER_BASIS_CHARS).optional(),
    occupancyMinute: z
      .object({ startMs: finite, servedTotal: nonNegative, inFlightSeconds: nonNegative, consumerSeconds: nonNegative })
      .readonly()
      .optional(),
    occupancyMinutes: list(
      z.object({ serviceSeconds: nonNegative, servedPerConsumer: nonNegative, inFlightPerConsumer: nonNegative }).readonly(),
      16,
    ).optional(),
    askPeaks: list(mark, MAX_MARKS).optional(),
    consumerRatio: z
      .object({
        log2: finite.min(-MAX_RATIO_LOG2).max(MAX_RATIO_LOG2),
        aboveSeconds: nonNegative.max(HINT_AFTER_SECONDS),
        fellAtMs: finite.optional(),
      })
      .readonly()
      .optional(),
  })
  .readonly();
