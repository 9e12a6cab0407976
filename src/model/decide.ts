// The scaling model: signals + trigger + history -> desired replicas, activity, explanation.
// Pure (no I/O, no clock): the server and the simulator call this same function.
//
// The demands, each an answer to "how many replicas", the largest winning:
// - backlog (demand.ts): the fleet that starts every request within the objective T, by a fluid
//   queue over one cold start C, and by Erlang C, priced against late requests, when T < C (then
//   for the arrival rate plus the lag of its 30 s average behind a climb, its trend, or the rate
//   the arrival counter vouches for over the last T / 2 to T when a step outruns both), or, for
//   a steady rate with T at least C / 2, fewer while no message would wait past T before the
//   replicas asked at the next decision serve (onQueue.ts: the queue comes and goes);
// - gpu: ceil(busy GPU-equivalents / target utilization);
// - burst (bursts.ts): the warm replicas that serve the usual burst in time, as far as they cost
//   less than the late requests they prevent (those the replicas it asks for start past T);
// - hold: scale down only after the demand stayed lower for one cold start (removing a replica
//   that is needed again within C costs more than keeping it), or for what the demand's
//   recent dips say pays, and no fewer than start a queue's oldest message in time
//   (hold.ts); what a trend forecast is not held, nor, when T < C, a rise while recent rises
//   were gone a cold start later (noise), nor anything on the queue; idle past the keep-warm
//   window, no replica is worth keeping, and none is held;
// - prewarm: regular gaps (periodic batches) and a cold start that would leave requests late.
// Scale to zero waits for the keep-warm window learned from idle gaps (keepWarm.ts). What one
// replica serves is learned from the brokers (service.ts); the rates from arrivals.ts.
import { MAX_REPLICAS, type ScalingConfig } from '../trigger/types.ts';
import {
  arrivalsWithin,
  countRises,
  fallen,
  markArrivals,
  markRates,
  rateTrend,
  recentRateFloor,
  risen,
  steadyArrivalRate,
  watchRises,
} from './arrivals.ts';
import { type Burst, type BurstState, burstFloor, burstNeed, burstRate, lateWith, prewarmSize, trackBursts } from './bursts.ts';
import { type Details, backlogDemand, computedDemands, fleetView, queueStands, round } from './demand.ts';
import { ceilSafe } from './snap.ts';
import { workloadRuns } from './gpuSeries.ts';
import { type Hold, MAX_DIPS, QUEUE_DECIDES, endedDips, learnedHold, queueHeadAge } from './hold.ts';
import { MAX_GAPS, appendBounded, covers, keepWarmWindow, predictGap } from './keepWarm.ts';
import { slidingMax, within } from './marks.ts';
import { wholeBacklog } from './signals.ts';
import { readConsumers } from './consumerRatio.ts';
import {
  type ColdStartState,
  coldStartSeconds,
  excessLateShare,
  meanColdStartSeconds,
  observeReady,
  trackAsks,
} from './coldStart.ts';
import { otherBasis } from './rates.ts';
import { acknowledgedBeforeWork, detectConcurrency, inFlightPastConcurrency, learnService } from './service.ts';
import {
  DEMAND_SOURCES,
  MAX_MARKS,
  type Decision,
  type DemandTerm,
  type Demands,
  type Dip,
  type ModelInput,
  type ModelOutput,
  type ReplicaMark,
  type Signals,
  type TriggerHistory,
} from './types.ts';

export { ceilSafe } from './snap.ts';

export function emptyHistory(): TriggerHistory {
  return { idleGapsSeconds: [] };
}

/** Standard deviations (of a Poisson count of the waiting backlog) by which it must fall before guessed demands are dropped. */
const GUESS_NOISE_SD = 2;
/** Busy periods whose peaks are remembered for prewarming. */
const MAX_PEAKS = 8;
/** Shared empty lists: a history that has none keeps no list of its own. */
const NO_MARKS: readonly ReplicaMark[] = Object.freeze([]);
const NO_PEAKS: readonly number[] = Object.freeze([]);
const NO_BURSTS: readonly Burst[] = Object.freeze([]);
const NO_DIPS: readonly Dip[] = Object.freeze([]);

/**
 * `asks` and one more, at most MAX_MARKS: past it, the two oldest become one at the later time
 * (its replicas counted as starting for longer, which asks for no fewer).
 */
function withAsk(asks: readonly ReplicaMark[], ask: ReplicaMark): readonly ReplicaMark[] {
  const next = [...asks, ask];
  // At most MAX_REPLICAS, what a history holds: a trigger that flaps at a large fleet summed past it
  // (found by review); what is starting counts up to the fleet asked for anyway.
  if (next.length > MAX_MARKS)
    next.splice(0, 2, { atMs: next[1]!.atMs, replicas: Math.min(MAX_REPLICAS, next[0]!.replicas + next[1]!.replicas) });
  return next;
}

/** The smallest of the last 3 busy periods' peaks (1 before any): a prewarm when no burst is known. */
function smallestPeak(peaks: readonly number[]): number {
  return peaks.length === 0 ? 1 : Math.min(...peaks.slice(-3));
}

function mean(list: readonly number[], fallback: number): number {
  return list.length === 0 ? fallback : list.reduce((s, x) => s + x, 0) / list.length;
}

/**
 * KEDA asks about an active trigger every HPA sync (15 s) and an idle one every pollingInterval or
 * stream check: a longer silence is a paused ScaledObject, or no scaler running.
 */
export const RESUME_GAP_MS = 10 * 60_000;

/**
 * A wall clock stepped back by more than this (an NTP step, a VM restored from a snapshot) leaves
 * the history's marks in the future, where no window lets them go (a hold kept for the length of
 * the step): the history is then resumed as after a silence. Less is a clock's skew between the
 * replicas that take turns writing a trigger's record, which the windows outlast: twice what a
 * record may be ahead of a replica's clock and still be read (state/codec.ts), so a follower
 * behind its writer never takes the writer's history for a step back.
 */
export const CLOCK_STEP_BACK_MS = 120_000;

/**
 * Each field of a history, what was learned about the workload or what it says of the moment
 * (resumedHistory drops those), and of those which hold a reading of the counters (arrived,
 * served) or a sum since one (dropped too when the counters count something else:
 * Signals.counterBasis). The `satisfies` makes a new field say which.
 */
const HISTORY_FIELDS = {
  lastWorkAtMs: 'learned',
  idleSinceMs: 'learned',
  idleGapsSeconds: 'learned',
  lastDesiredReplicas: 'moment',
  lastDecisionAtMs: 'moment',
  // The last answer: after a silence too, what tells a GPU query with no series from a workload at
  // zero (gpuSeries.ts); the fleet asked for is gone with lastDesiredReplicas.
  lastActive: 'learned',
  lastThroughputKnown: 'learned',
  heldGuesses: 'moment',
  recentAsks: 'moment',
  recentDemands: 'moment',
  holdDips: 'learned',
  steadyArrivalRatePerSecond: 'learned',
  rateTrail: 'moment',
  // Its probe is the moment's, the share of rises that lasted learned (resumedHistory).
  riseWatch: 'learned',
  serviceEvidence: 'learned',
  slotsPerReplica: 'learned',
  drainingUntilMs: 'moment',
  lastInFlight: 'moment',
  lastServedTotal: 'counter',
  learnedThroughputPerReplica: 'learned',
  throughputEvidence: 'learned',
  busyStretch: 'counter',
  backlogMinute: 'counter',
  backlogSecondsPerServed: 'learned',
  backlogRises: 'counter',
  arrivalMarks: 'counter',
  gapHeads: 'learned',
  headStart: 'counter',
  burstEpisode: 'moment',
  bursts: 'learned',
  busyPeakReplicas: 'moment',
  busyPeaks: 'learned',
  busyPeakBacklog: 'moment',
  busyBacklogPeaks: 'learned',
  pendingStarts: 'moment',
  coldStartSamples: 'learned',
  retractedStart: 'moment',
  occupancyMinute: 'counter',
  occupancyMinutes: 'learned',
  lastReady: 'moment',
  counterBasis: 'moment',
  askPeaks: 'moment',
  consumerRatio: 'learned',
} as const satisfies Record<keyof TriggerHistory, 'learned' | 'moment' | 'counter'>;

const fieldsOf = (...kinds: readonly string[]) =>
  (Object.keys(HISTORY_FIELDS) as (keyof TriggerHistory)[]).filter((key) => kinds.includes(HISTORY_FIELDS[key]));
const MOMENT = fieldsOf('moment', 'counter');
const COUNTER = fieldsOf('counter');

/** The history without `keys`. */
function without(history: TriggerHistory, keys: readonly (keyof TriggerHistory)[]): TriggerHistory {
  const rest: Partial<{ -readonly [K in keyof TriggerHistory]: TriggerHistory[K] }> = { ...history };
  for (const key of keys) delete rest[key];
  return rest as TriggerHistory;
}

/**
 * The history with its idle period and last work moved back with a clock that stepped back `byMs`:
 * as long ago as they were (a workload idle 15 minutes and scaled to zero stays there, where taking
 * them for now would start the keep-warm window again and wake it).
 */
function steppedBackBy(history: TriggerHistory, byMs: number): TriggerHistory {
  const { idleSinceMs, lastWorkAtMs } = history;
  return {
    ...history,
    ...(idleSinceMs !== undefined && { idleSinceMs: idleSinceMs - byMs }),
    ...(lastWorkAtMs !== undefined && { lastWorkAtMs: lastWorkAtMs - byMs }),
  };
}

/**
 * The history to decide from after `RESUME_GAP_MS` without a decision: what was learned about the
 * workload (service, throughput, cold starts, idle gaps, bursts, peaks, the steady rate) carries
 * on; what it said of the moment is dropped, as a new trigger has none: the fleet asked for and
 * starting, the hold, the rise and burst being watched, the readings the next one is compared to
 * (a difference over the silence is no rate), the minute being summed. The idle period and the
 * last work stay: a workload idle before and after stays at zero.
 */
export function resumedHistory(history: TriggerHistory): TriggerHistory {
  const learned = without(history, MOMENT);
  const lasting = history.riseWatch?.lasting;
  return lasting === undefined ? without(learned, ['riseWatch']) : { ...learned, riseWatch: { lasting } };
}

/** What a history says of the workload's last work and idle period: learned, but of its moment. */
const ACTIVITY: readonly (keyof TriggerHistory)[] = ['lastWorkAtMs', 'idleSinceMs', 'lastActive'];

/**
 * What `learned` knows of the workload (service, throughput, cold starts, idle gaps, bursts, the
 * steady rate), at the moment `current` is in: its fleet, readings and counters, and when the
 * workload last worked and went idle. For a replica that decided alone while the shared store was
 * out of reach, given the record another replica wrote before: the record's learning, not its
 * idea of the moment (idle since before the outage, a keep-warm window long over).
 */
export function learnedAtMomentOf(learned: TriggerHistory, current: TriggerHistory): TriggerHistory {
  const moment = [...MOMENT, ...ACTIVITY];
  const merged: Partial<Record<keyof TriggerHistory, unknown>> = without(learned, moment);
  for (const key of moment) if (current[key] !== undefined) merged[key] = current[key];
  return merged as TriggerHistory;
}

/**
 * The brokers' consumers as replicas: a worker with a channel per thread shows several a pod, which
 * read as replicas made k a quarter of its slots (docs/model.md, "Several consumers a replica"; found by
 * a review of the simulator's assumptions). The explanation shows the consumers so read.
 */
function consumersAsReplicas(signals: Signals, consumersPerReplica: number): Signals {
  if (consumersPerReplica === 1) return signals;
  const { consumers, replicaCap } = signals;
  return {
    ...signals,
    ...(consumers !== undefined && { consumers: consumers / consumersPerReplica }),
    // Kafka's partitions cap the group's members: a replica's C members take C of them (found by review).
    ...(replicaCap !== undefined && { replicaCap: Math.ceil(replicaCap / consumersPerReplica) }),
  };
}

/**
 * The counts of a moment (backlog, waiting, in flight, consumers) at 0 at the least: RabbitMQ has
 * reported a negative unacknowledged count, which went into the history and made it one the
 * shared store's schema refuses, for days (found by review). The same object when none is below 0.
 */
function countsAtLeastZero(signals: Signals): Signals {
  const { backlog, waiting, inFlight, consumers } = signals;
  if (backlog >= 0 && !(waiting! < 0) && !(inFlight! < 0) && !(consumers! < 0)) return signals;
  return {
    ...signals,
    backlog: Math.max(0, backlog),
    ...(waiting !== undefined && { waiting: Math.max(0, waiting) }),
    ...(inFlight !== undefined && { inFlight: Math.max(0, inFlight) }),
    ...(consumers !== undefined && { consumers: Math.max(0, consumers) }),
  };
}

/** The backlog the activity reads (`lag`: wholeBacklog), in words: with what consumers served and have not committed, when any. */
function lagWords({ backlog, uncommittedServed }: Signals, lag: number): string {
  return uncommittedServed === undefined
    ? `backlog ${backlog}`
    : `lag ${round(lag)} (backlog ${round(backlog)} + ${round(uncommittedServed)} served, not committed)`;
}

export function decide({ signals: sourced, scaling, history: given, nowMs, workload }: ModelInput): ModelOutput {
  const reported = consumersAsReplicas(countsAtLeastZero(sourced), scaling.consumersPerReplica);
  const sinceLastMs = given.lastDecisionAtMs === undefined ? undefined : nowMs - given.lastDecisionAtMs;
  const steppedBack = sinceLastMs !== undefined && sinceLastMs < -CLOCK_STEP_BACK_MS;
  const kept = steppedBack ? steppedBackBy(given, -sinceLastMs) : given;
  const resumed = sinceLastMs !== undefined && (sinceLastMs > RESUME_GAP_MS || steppedBack);
  // Counters over other partitions (a Kafka group without kafka.topic that starts committing on
  // another topic): a jump of their sums is no arrivals nor completions.
  const rebased = otherBasis(reported.counterBasis, kept.counterBasis);
  const base = resumed ? resumedHistory(kept) : kept;
  // The history's counter readings (COUNTER) do not compare with these.
  const history = rebased ? without(base, COUNTER) : base;
  const dtSeconds = history.lastDecisionAtMs === undefined ? 0 : Math.max(0, nowMs - history.lastDecisionAtMs) / 1000;
  // What the model reads: in flight past a replica's concurrency waits (the explanation keeps what
  // the sources reported, but for the consumers, read as replicas, and says how many it counted
  // waiting). The concurrency is the configured one, else what the consumers' throughput says when
  // they prefetch past it.
  // Acknowledged before the work, none of what is in flight is in service: the whole backlog waits.
  const read = scaling.acknowledgement === 'before-work' ? acknowledgedBeforeWork(reported) : reported;
  const occupancy = scaling.concurrencyPerReplica === undefined ? detectConcurrency(read, history, nowMs, dtSeconds) : undefined;
  const detected = occupancy?.concurrency;
  const signals = inFlightPastConcurrency(read, scaling.concurrencyPerReplica ?? detected);
  // C: configured, or learned from the asks the brokers saw served (coldStart.ts).
  const learnsColdStart = scaling.coldStartSeconds === 'auto' && signals.consumers !== undefined;
  let starts: ColdStartState = { pending: history.pendingStarts ?? NO_MARKS, samples: history.coldStartSamples ?? NO_PEAKS };
  if (learnsColdStart) starts = observeReady(starts, history.lastReady, signals.consumers!, nowMs);
  const coldStart = coldStartSeconds(scaling, starts.samples);
  const C = coldStart.seconds;
  const T = scaling.drainSeconds;
  const X = scaling.lateRequestCost;
  const details: Details = { coldStartSeconds: round(C), coldStartSource: coldStart.source };
  // How much of C is evidence: the prior weighs less with each sample, nothing from the twentieth.
  if (learnsColdStart) details.coldStartSamples = starts.samples.length;
  if (steppedBack) details.clockSteppedBackSeconds = round(-sinceLastMs! / 1000);
  else if (resumed) details.resumedAfterSilenceSeconds = round(sinceLastMs! / 1000);
  if (rebased) details.countersRebased = true;
  if (signals.prefetched !== undefined) details.prefetchedWaiting = round(signals.prefetched);
  if (detected !== undefined) details.detectedConcurrencyPerReplica = round(detected);
  // The whole backlog: what consumers served and have not committed is work until it is (signals.ts).
  const lag = wholeBacklog(signals);
  const backlogActive = lag > scaling.activationBacklog;
  const gpuActive = signals.busyGpus !== undefined && signals.busyGpus > (signals.gpuActivationThreshold ?? 0);
  // Messages a replica holds keep it at work where the backlog leaves them out
  // (excludeUnacknowledged, scaleOnInFlight false) or under activationBacklog: scaled to zero, its
  // requests would be cut off and served again (found by review). What the broker reports in
  // flight, before it is read as waiting inside the replicas (acknowledged before the work, or past
  // the concurrency): a replica holding prefetched messages is at work on others (found by review).
  // Only while the workload runs (gpuSeries.ts): at zero, what is in flight is another consumer's or
  // a dead one's (SQS: until its visibility timeout), which no woken replica could take (found by
  // review); with no answer before (a restart without a state store), in flight says it runs.
  // Answered inactive, the replicas stay for KEDA's cooldownPeriod: consumers seen at the decision
  // before and still there are they, at work on what they take (found by review: a message taken
  // then was answered inactive, and KEDA scaled the replica to zero mid-request). Consumers back after
  // none were seen are another workload's on the same queue. Not for the GPU rule (gpuSeries.ts): a
  // consumer that died uncleanly stays counted until the broker's heartbeat gives up, its pod's GPU
  // series gone, which would read as a running workload whose exporter is lost.
  const stillUp = history.lastActive === false && (reported.consumers ?? 0) > 0 && (history.lastReady ?? 0) > 0;
  const heldInFlight = reported.inFlight ?? 0;
  const inFlightActive = !backlogActive && heldInFlight > 0 && (stillUp || workloadRuns(reported, history, workload?.active));
  // The GPUs size the fleet only where the queues do not count the messages in service: NVML's
  // utilisation (the default query) reads a GPU whole with one request of its k, and sizing on it
  // grew the fleet until replicas sat idle (docs/gpu.md, "Busy GPUs and the queue"). They keep the
  // answer active either way, but are work for the idle gaps only where they size (read a scrape
  // late, they ended the gaps the keep-warm learns late).
  const gpuSizes = signals.inServiceCounted !== true;
  const working = backlogActive || (gpuActive && gpuSizes) || inFlightActive;
  // A cold start longer than the objective leaves the requests of its first C − T seconds late.
  const lateWindowSeconds = Math.max(0, C - T);
  // Arrivals counted by the broker, or (SQS, RabbitMQ over amqp) the backlog's rises summed. A
  // trigger whose source starts or stops counting starts its marks and head over: the two counts
  // do not compare.
  // On the whole lag: the backlog without what was served and not committed moves with the served rate.
  const rises = signals.arrivedTotal === undefined ? countRises(history.backlogRises, lag) : undefined;
  const arrivedTotal = signals.arrivedTotal ?? rises!.total;
  const recount = (rises === undefined) !== (history.backlogRises === undefined);
  const previousMarks = recount ? undefined : history.arrivalMarks;
  const arrivalMarks = markArrivals(previousMarks, arrivedTotal, nowMs, T);
  if (rises !== undefined) details.arrivalsCountedByBacklogRises = rises.total;

  // Idle gaps: one ends when work resumes; a busy period ends when work stops. The head of a busy
  // period (its arrivals in the first C − T seconds) is what a cold start at its start leaves late.
  let idleSinceMs = history.idleSinceMs;
  let gaps = history.idleGapsSeconds;
  let heads = history.gapHeads ?? NO_PEAKS;
  let headStart = recount ? undefined : history.headStart;
  let busyPeaks = history.busyPeaks ?? NO_PEAKS;
  let busyPeak = history.busyPeakReplicas;
  let backlogPeaks = history.busyBacklogPeaks ?? NO_PEAKS;
  let backlogPeak = history.busyPeakBacklog;
  const closeHead = () => {
    if (headStart === undefined) return;
    heads = appendBounded(heads, Math.max(1, arrivedTotal - headStart.total), MAX_GAPS);
    headStart = undefined;
  };
  if (headStart !== undefined && (nowMs - headStart.atMs) / 1000 >= lateWindowSeconds) closeHead();
  if (working && idleSinceMs !== undefined) {
    closeHead();
    // Never below 0: replicas whose clocks differ by less than a step back take turns (found by review).
    gaps = appendBounded(gaps, Math.max(0, (nowMs - idleSinceMs) / 1000), MAX_GAPS);
    // What arrived since the counter was last sampled, while idle, counts in the head.
    headStart = {
      atMs: nowMs,
      total: Math.min(previousMarks?.at(-1)?.total ?? Number.POSITIVE_INFINITY, arrivedTotal - 1),
    };
    idleSinceMs = undefined;
  } else if (!working && idleSinceMs === undefined && history.lastWorkAtMs !== undefined) {
    // A busy period shorter than C − T has all its arrivals in its head: counted now, before the
    // gap that follows is priced with it (found by review: priced as one request while the count
    // stayed open, keep-warm let a batch's fleet go, then asked for it back when the count closed).
    closeHead();
    idleSinceMs = nowMs;
    if (busyPeak !== undefined) busyPeaks = appendBounded(busyPeaks, busyPeak, MAX_PEAKS);
    if (backlogPeak !== undefined) backlogPeaks = appendBounded(backlogPeaks, backlogPeak, MAX_PEAKS);
    busyPeak = undefined;
    backlogPeak = undefined;
  }

  const service = learnService(signals, scaling, history, nowMs);
  if (service.throughputPerReplica !== undefined) {
    details.throughputPerReplica = round(service.throughputPerReplica);
    details.throughputSource = service.source!;
  }
  if (service.history.drainingUntilMs !== undefined) details.slotsHeldWhileReplicasLeave = true;
  // At most maxReplicas: the bound KEDA runs under now (an edit may have lowered it), and what keeps
  // a record from elsewhere from sizing the model's work (lastDesiredReplicas 1e8).
  const askedFleet = history.lastActive === true ? Math.min(history.lastDesiredReplicas ?? 0, scaling.maxReplicas) : 0;
  const asks = within(history.recentAsks ?? NO_MARKS, nowMs, C * 1000);
  const consumersRead = readConsumers(
    {
      replicas: signals.consumers,
      before: history.lastReady,
      asked: askedFleet,
      starting: asks.length > 0,
      perReplica: scaling.consumersPerReplica,
    },
    history.askPeaks ?? NO_MARKS,
    history.consumerRatio,
    nowMs,
    dtSeconds,
  );
  if (consumersRead.suggested !== undefined) details.consumersPerReplicaSuggested = consumersRead.suggested;
  const fleet = fleetView(signals, askedFleet, asks, C, nowMs);

  const steadyRate = steadyArrivalRate(history.steadyArrivalRatePerSecond, signals.arrivalRatePerSecond, dtSeconds);
  // Idle, the steady rate (minutes of history) still carries the traffic that stopped: the fleet
  // kept warm is sized for the 30 s rate when that is lower.
  const idleRate =
    idleSinceMs !== undefined &&
    steadyRate !== undefined &&
    signals.arrivalRatePerSecond !== undefined &&
    signals.arrivalRatePerSecond < steadyRate;
  if (idleRate) details.idleSizedForArrivalRatePerSecond = round(signals.arrivalRatePerSecond!);
  // With an objective shorter than a cold start, the fleet asked for now serves the rate of a cold
  // start from now, and a climbing rate is 30 s ahead of its average already: the lag is added
  // (rateTrend). With a longer one the queue absorbs the lag before anyone waits past T.
  const rateTrail = markRates(history.rateTrail, signals.arrivalRatePerSecond, nowMs);
  const trend = T < C ? rateTrend(rateTrail, signals.arrivalRatePerSecond, nowMs) : 0;
  if (trend > 0) details.arrivalRateTrendPerSecond = round(trend);
  const rates = { fast: signals.arrivalRatePerSecond, steady: idleRate ? signals.arrivalRatePerSecond : steadyRate };
  const plus = (rate: number | undefined) => (rate === undefined ? undefined : rate + trend);
  const withTrend = trend > 0 ? { fast: plus(rates.fast), steady: plus(rates.steady) } : rates;
  // A step of the rate outruns its 30 s average and its trend alike: when T < C, the rate the
  // arrival counter vouches for over the last T / 2 to T stands for the 30 s one where higher.
  const vouched =
    T < C && rates.fast !== undefined ? recentRateFloor(arrivalMarks, arrivedTotal, nowMs, Math.max(1, T / 2)) : undefined;
  const stepped = vouched !== undefined && vouched > (withTrend.fast ?? 0);
  const trending = stepped ? { ...withTrend, fast: vouched } : withTrend;
  if (stepped) details.recentArrivalRateFloorPerSecond = round(vouched);
  // A backlog that counts the messages in service with the waiting ones, none reported in flight
  // (Kafka's lag): when T < C, at most λ·S of it is in service (service.ts), which the fleet would
  // otherwise drain a second time, and at most what the consumers there hold at once (found by review:
  // a lag of 24 with no member read as all in service). At T ≥ C the fleet keeps a queue on purpose,
  // the bound reads its waits, and the whole backlog stays the count (docs/model.md, "What each
  // source tells the model").
  const inServiceBound = service.inServiceBoundSeconds;
  const lambdaSteady = rates.steady ?? rates.fast;
  let demandSignals = signals;
  if (T < C && inServiceBound !== undefined && signals.waiting === undefined && lambdaSteady !== undefined) {
    const backlog = Math.max(0, signals.backlog);
    const slots = signals.consumers === undefined ? Number.POSITIVE_INFINITY : service.slotsPerReplica * signals.consumers;
    const inService = Math.min(backlog, lambdaSteady * inServiceBound, slots);
    demandSignals = { ...signals, waiting: backlog - inService };
    details.inServiceEstimate = round(inService);
  }
  // On the queue (onQueue.ts), when T < C: only where the queue's budget is at least half a cold
  // start, and for a steady rate (none risen, trending or stepped: a burst the steady rate does not
  // know; none fallen: a steady rate that still carries a burst that is gone, whose queue drained,
  // and the hold of its replicas forgotten on the queue just before the next of its cluster). With
  // less budget, the check passes only fleets loaded to their capacity, whose queues long requests
  // grow faster than the counts' noise says (docs/model-experiments.md, "On the queue").
  const { fast, steady } = rates;
  const moved =
    fast === undefined || steady === undefined
      ? undefined
      : risen(fast, steady)
        ? 'rate risen'
        : fallen(fast, steady)
          ? 'rate fallen'
          : undefined;
  const unsteady = trend !== 0 ? 'rate trend' : stepped ? 'rate step' : moved;
  // The queue's head is as old as the counters date it, else as W / λ says (the waiting messages
  // the last arrivals); not over several partitions, whose waiting messages need not be (hold.ts).
  const queueable = lateWindowSeconds > 0 && T >= C / 2;
  const mayQueue = queueable && unsteady === undefined;
  const queued = Math.max(0, demandSignals.waiting ?? signals.backlog);
  const headAge = mayQueue ? queueHeadAge(signals, arrivalMarks, queued, nowMs) : undefined;
  const dated = headAge !== undefined || queued === 0 || !((signals.orderedQueues ?? 1) > 1);
  const onQueue = mayQueue && dated ? { headAgeSeconds: headAge } : undefined;
  // Where the queue could run, why it does not: what /explain says.
  if (queueable && onQueue === undefined) details.offQueueBecause = unsteady ?? 'queue head undated over several queues';
  const demands: Demands & { backlog: number } = {
    backlog: backlogDemand(demandSignals, scaling, service, fleet, trending, C, details, T, onQueue),
  };
  if (signals.busyGpus !== undefined && signals.gpuTargetUtilization !== undefined) {
    const gpu = ceilSafe(Math.max(0, signals.busyGpus) / signals.gpuTargetUtilization);
    if (gpuSizes) demands.gpu = gpu;
    else details.gpuReplicasNotSizing = gpu;
  }
  // A GPU query that matched no series while the workload runs is answered only where a queue
  // shows work (gpuSeries.ts): its GPUs were not read, so the fleet they kept up is not lowered on
  // their strength, and the queue may still raise it. Found by review: the GPU demand dropped out,
  // and a saturated fleet shrank to the queue's a hold later.
  if (gpuSizes && signals.gpuSourcesWithoutSeries !== undefined && workloadRuns(signals, history, workload?.active)) {
    // With no answer of its own (its settings just edited), the fleet its ScaledObject asked for.
    const before = history.lastActive === undefined && workload?.active === true ? workload.replicas : 0;
    const fleetNow = Math.min(scaling.maxReplicas, Math.max(askedFleet, signals.consumers ?? 0, before));
    if (fleetNow > (demands.gpu ?? 0)) {
      demands.gpu = fleetNow;
      details.gpuHeldAtFleetWithoutSeries = fleetNow;
    }
  }
  const unheld = Math.max(demands.backlog, demands.gpu ?? 0);
  // The hold keeps what was needed, not what a trend forecast: the replicas a trend that fades
  // asked for are still starting, and go first for seconds of GPU. Nor, when T < C, what a rise of
  // the 30 s rate asked for while most recent rises were gone a cold start later: noise, not
  // surges (docs/model-experiments.md, "Rises watched", for the figures).
  const riseWatch = watchRises(history.riseWatch, rates.fast, rates.steady, C, nowMs);
  if (riseWatch.lasting !== undefined) details.risesLastingShare = round(riseWatch.lasting);
  const riseNotHeld =
    T < C &&
    (riseWatch.lasting ?? 1) < 1 / 2 &&
    rates.fast !== undefined &&
    rates.steady !== undefined &&
    risen(rates.fast, rates.steady);
  const holdRates = riseNotHeld ? { fast: rates.steady, steady: rates.steady } : rates;
  const needed =
    trend > 0 || riseNotHeld
      ? Math.max(backlogDemand(demandSignals, scaling, service, fleet, holdRates, C, undefined), demands.gpu ?? 0)
      : unheld;
  if (working) {
    // What is remembered is at most what KEDA may run (a record past MAX_REPLICAS is not read back).
    busyPeak = Math.max(busyPeak ?? 0, Math.min(unheld, scaling.maxReplicas));
    backlogPeak = Math.max(backlogPeak ?? 0, signals.backlog);
  }

  // Bursts: keep warm what pays against the requests the replicas a burst asks for start late.
  let bursts: BurstState = { episode: history.burstEpisode, bursts: history.bursts ?? NO_BURSTS };
  const arrivedWithin = arrivalsWithin(arrivalMarks, arrivedTotal);
  if (service.serviceSeconds !== undefined) {
    const need = burstNeed(arrivedWithin, service.serviceSeconds, service.slotsPerReplica, T);
    bursts = trackBursts(bursts, need, arrivedWithin, nowMs);
    details.burstNeedReplicas = round(need);
  }
  // A burst's requests beyond the warm replicas wait for the ones it asks for: late as far as those
  // start them more than T after they arrived (docs/model.md, "burst"), whatever C is: C is a high
  // quantile, and the cold starts under it are late too when they serve a burst's tail.
  // Built on first use: most decisions see no burst and no regular gaps.
  let excessShare: ((offsetSeconds: number) => number) | undefined;
  const pricing = {
    objectiveSeconds: T,
    share: (offset: number) => (excessShare ??= excessLateShare(scaling, starts.samples, T))(offset),
  };
  let floor = 0;
  if (bursts.bursts.length > 0) {
    // Over the next two cold starts: a replica given back now serves again a cold start after it
    // is asked for, and a window of one would count too few gaps to read a hazard from.
    const rate = burstRate(bursts.bursts, nowMs, 2 * C);
    floor = burstFloor(bursts.bursts, X, rate, scaling.maxReplicas, pricing);
    details.burstsPerMinute = round(60 * rate);
    // The largest burst remembered: its rise, and what of all of them the floor leaves late.
    const largest = bursts.bursts.reduce((a, b) => (b.need > a.need ? b : a));
    details.burstRiseSeconds = round(largest.riseSeconds ?? 0);
    const size = bursts.bursts.reduce((sum, b) => sum + b.size, 0);
    if (size > 0) details.burstLateShare = round(lateWith(bursts.bursts, floor, pricing) / size);
  }
  if (floor > 0) {
    demands.burst = floor;
    details.burstsSeen = bursts.bursts.length;
  }

  // Regular gaps (periodic batches) predict the next one: a prewarm wakes the fleet one cold start
  // early, so a gap inside the prediction costs C to wake and leaves no head late.
  const predicted = scaling.keepWarm === 'auto' ? predictGap(gaps, C) : undefined;
  const next = predicted !== undefined && pricing.share(0) > 0 ? predicted : undefined;
  if (next !== undefined) details.expectedGapSeconds = round(next.expectedGapSeconds);
  // Scale to zero when it pays: per replica kept warm (the floor's, at least one), a gap not
  // bridged costs a cold start plus its head's late requests, unless the prediction covers it. The
  // cold start is priced at its mean (the loading) where a wake leaves nobody late: C <= T, and no
  // busy period remembered held more messages than one replica serves at once, so each starts as
  // the first replica serves. Else at C: the messages past it wait behind those, or for the HPA's
  // steps from zero, late where the head counts none, and C's higher price keeps warm against that.
  const warm = Math.max(1, floor);
  const headCost = (head: number) => (lateWindowSeconds > 0 ? (X * head) / warm : 0);
  const startsAtOnce = backlogPeaks.length > 0 && Math.max(...backlogPeaks) <= service.slotsPerReplica;
  const wake = lateWindowSeconds === 0 && startsAtOnce ? Math.min(C, meanColdStartSeconds(scaling, starts.samples)) : C;
  if (wake !== C) details.meanColdStartSeconds = round(wake);
  // Gap i is priced with the head of the busy period it ended, the newest one's while still counted
  // (at work) by the mean of the others.
  const open = headStart !== undefined ? 1 : 0;
  const wakeCosts = gaps.map((g, i) =>
    next !== undefined && covers(next, g, T)
      ? wake
      : wake + headCost(heads[i + heads.length + open - gaps.length] ?? mean(heads, 1)),
  );
  const breakEven = next !== undefined ? wake : wake + headCost(mean(heads, 1));
  const window = keepWarmWindow(scaling.keepWarm, gaps, wakeCosts, breakEven);
  details.coldStartCostSeconds = round(breakEven);
  details.keepWarmSeconds = round(window.seconds);
  details.keepWarmSource = window.source;

  // Scale down only after the demand stayed lower for one cold start. Demands sized by KEDA's
  // rule before μ was known were guesses: once it is known they are held only while the waiting
  // backlog stays at its level at that moment (the fleet they asked for is still short: a young μ
  // from the first, shortest completions and a rate still catching up undersize it), and dropped
  // once it falls below that level by more than its noise, or empties (the fleet is gaining on
  // the queue). While they are held, KEDA's rule on the backlog now is one more guess: the queue
  // has not fallen, so the fleet a young μ sizes is still short, and the rule keeps up with a queue
  // that grows.
  const throughputKnown = service.throughputPerReplica !== undefined;
  const waitingNow = Math.max(0, signals.waiting ?? signals.backlog);
  let guesses = throughputKnown ? history.heldGuesses : undefined;
  if (throughputKnown && history.lastThroughputKnown !== true && (history.recentDemands?.length ?? 0) > 0) {
    guesses = { atMs: nowMs, waiting: waitingNow };
  }
  let held = history.recentDemands ?? NO_MARKS;
  if (guesses !== undefined && (waitingNow === 0 || waitingNow < guesses.waiting - GUESS_NOISE_SD * Math.sqrt(guesses.waiting))) {
    held = NO_MARKS;
    guesses = undefined;
  } else if (guesses !== undefined) {
    details.guessesHeldWhileWaitingAtLeast = round(guesses.waiting);
    // The guesses are all older than the moment μ became known: gone from the hold after C.
    if (nowMs - guesses.atMs >= C * 1000) guesses = undefined;
  }
  let guessed = 0;
  if (guesses !== undefined) {
    guessed = ceilSafe(Math.max(0, signals.backlog) / scaling.messagesPerReplica);
    details.guessedReplicas = guessed;
  }
  const demandNow = Math.min(needed, scaling.maxReplicas);
  let dips = history.holdDips ?? NO_DIPS;
  for (const dip of endedDips(held, demandNow, nowMs, C * 1000)) dips = appendBounded(dips, dip, MAX_DIPS);
  // On the queue (onQueue.ts) nothing is held: what a replica missing costs is the wait the check
  // allows, and the demands before it are forgotten (held again once off the queue, they asked back
  // the replicas it gave away; found by review). Not while the burst floor is priced: the hold then
  // keeps the replicas a burst asked for for the next of its cluster (docs/model-experiments.md).
  const onItsQueue = details.onQueueReplicas !== undefined && floor === 0;
  const recentDemands = onItsQueue
    ? [{ atMs: nowMs, replicas: demandNow }]
    : slidingMax(held, { atMs: nowMs, replicas: demandNow }, C * 1000);
  // A replica given back too soon costs a cold start: hold for what the dips say pays (hold.ts),
  // and while a queue stands for no fewer replicas than start its oldest message within what is
  // left of T. When its age is not known (hold.ts says when) or it is past T, keep what was asked
  // for, and ask for none back. With T < C the one given back also leaves requests late while its
  // successor starts, which the dips do not price; measured, the holds they save cost more than
  // those requests at lateRequestCost (docs/model.md, "hold"). While KEDA's guesses are held, C.
  let hold: Hold = { seconds: C, source: 'cold start' };
  let heldReplicas = recentDemands[0]!.replicas;
  // Read only where it is used: the queue deciding (T ≥ C) or the floor under a hold.
  const oldestAge =
    waitingNow > 0 && (T >= C || heldReplicas > unheld) ? queueHeadAge(signals, arrivalMarks, waitingNow, nowMs) : undefined;
  // At T ≥ C while a queue stands, the fluid queue decides: a replica held then serves the queue
  // rather than idles (the dips price idling), the next one it needs lands within T, and the dips
  // are the hold's own doing (held, a replica drains the queue, and its level is not asked for
  // again until the queue regrows). Under the queue head's floor below, so only where the counters
  // date the head and it is younger than T: elsewhere that floor keeps the whole fleet asked for.
  const queueDecides =
    T >= C && oldestAge !== undefined && oldestAge < T && queueStands(signals, service.slotsPerReplica, fleet.ready);
  const learned =
    guesses !== undefined ? hold : queueDecides ? QUEUE_DECIDES : heldReplicas > unheld ? learnedHold(dips, C) : hold;
  if (learned.seconds < C) {
    hold = learned;
    // The largest demand within the learned hold: the first mark that recent (they decrease).
    let learnedMax = 0;
    for (const m of recentDemands) {
      if (nowMs - m.atMs < learned.seconds * 1000) {
        learnedMax = m.replicas;
        break;
      }
    }
    let queueHead = 0;
    if (waitingNow > 0 && learnedMax < heldReplicas && heldReplicas > unheld) {
      queueHead =
        oldestAge === undefined || oldestAge >= T
          ? askedFleet
          : backlogDemand(demandSignals, scaling, service, fleet, trending, C, undefined, T - oldestAge);
      if (oldestAge !== undefined) details.queueHeadAgeSeconds = round(oldestAge);
      details.queueHeadReplicas = queueHead;
    }
    heldReplicas = Math.min(heldReplicas, Math.max(learnedMax, queueHead));
  }
  details.holdSeconds = round(hold.seconds);
  details.holdSource = hold.source;
  const idleSeconds = idleSinceMs === undefined ? undefined : (nowMs - idleSinceMs) / 1000;
  const pastKeepWarm = idleSeconds !== undefined && idleSeconds >= window.seconds;
  if (heldReplicas > unheld && !pastKeepWarm) demands.hold = heldReplicas;
  if (guessed > Math.max(unheld, demands.hold ?? 0)) demands.hold = guessed;

  let activeReason: string;
  let active = true;
  if (backlogActive) activeReason = `${lagWords(signals, lag)} > activationBacklog ${scaling.activationBacklog}`;
  else if (gpuActive)
    activeReason = `busy GPUs ${signals.busyGpus} > activation threshold ${signals.gpuActivationThreshold ?? 0}`;
  else if (inFlightActive) activeReason = `${heldInFlight} in flight: a workload at work is not scaled to zero`;
  else if (idleSeconds !== undefined && idleSeconds < window.seconds) {
    activeReason = `idle since ${instant(idleSinceMs!)}: keep warm until ${instant(idleSinceMs! + window.seconds * 1000)} (${round(window.seconds)} s, ${window.source})`;
  } else {
    // Prewarm only where the replicas a wake asks for would start some of its head past T (`next`
    // is undefined otherwise, C under T or not), and as many as pay for their cold start (none: no
    // prewarm).
    const due =
      next !== undefined &&
      idleSeconds !== undefined &&
      idleSeconds >= next.expectedGapSeconds - C &&
      idleSeconds <= next.giveUpAfterSeconds;
    const prewarm = due
      ? Math.max(floor, prewarmSize(bursts.bursts, C, X, scaling.maxReplicas, pricing) ?? smallestPeak(busyPeaks))
      : 0;
    if (prewarm > 0) {
      activeReason = `prewarm: regular gaps of ~${round(next!.expectedGapSeconds)} s, idle ${round(idleSeconds!)} s, cold start ${round(C)} s`;
      demands.prewarm = prewarm;
    } else {
      active = false;
      activeReason =
        idleSeconds === undefined
          ? `${lagWords(signals, lag)} <= activationBacklog ${scaling.activationBacklog}`
          : `idle since ${instant(idleSinceMs!)}: kept warm until ${instant(idleSinceMs! + window.seconds * 1000)} (${round(window.seconds)} s, ${window.source})`;
    }
  }

  const computed = computedDemands(demands, scaling.maxReplicas, details);
  const { desired, winner } = bound(computed, signals, scaling);
  const asked = active ? desired : 0;
  const nextAsks = asked > askedFleet ? withAsk(asks, { atMs: nowMs, replicas: asked - askedFleet }) : asks;
  let retractedStart = history.retractedStart;
  if (learnsColdStart) {
    const tracked = trackAsks(starts.pending, signals.consumers!, asked, nowMs, retractedStart, askedFleet);
    starts = { ...starts, pending: tracked.pending };
    retractedStart = tracked.retracted;
  }
  return {
    decision: {
      desiredReplicas: desired,
      active,
      // What counted the messages in service as the decision read them (acknowledged before the work: not).
      explanation: {
        signals:
          read.inServiceCounted === reported.inServiceCounted
            ? reported
            : { ...reported, inServiceCounted: read.inServiceCounted },
        demands: computed,
        winner,
        activeReason,
        details,
      },
    },
    history: {
      ...history,
      ...service.history,
      lastWorkAtMs: working ? nowMs : history.lastWorkAtMs,
      idleSinceMs,
      idleGapsSeconds: gaps,
      gapHeads: heads,
      headStart,
      lastDesiredReplicas: desired,
      lastDecisionAtMs: nowMs,
      lastActive: active,
      recentAsks: nextAsks,
      holdDips: dips,
      // A prewarmed fleet is held like any demand: the work it was asked for comes within C.
      recentDemands:
        computed.prewarm === undefined
          ? recentDemands
          : slidingMax(recentDemands, { atMs: nowMs, replicas: computed.prewarm }, C * 1000),
      lastThroughputKnown: throughputKnown,
      heldGuesses: guesses,
      steadyArrivalRatePerSecond: steadyRate,
      rateTrail,
      riseWatch,
      arrivalMarks,
      backlogRises: rises,
      burstEpisode: bursts.episode,
      bursts: bursts.bursts,
      busyPeakReplicas: busyPeak,
      busyPeaks,
      busyPeakBacklog: backlogPeak,
      busyBacklogPeaks: backlogPeaks,
      // At most what a record holds (historySchema): a broker's count past it was a history the store refused.
      lastReady: signals.consumers === undefined ? undefined : Math.min(MAX_REPLICAS, signals.consumers),
      counterBasis: reported.counterBasis,
      askPeaks: consumersRead.askPeaks,
      consumerRatio: consumersRead.ratio,
      occupancyMinute: occupancy?.minute,
      occupancyMinutes: occupancy?.minutes,
      ...(learnsColdStart ? { pendingStarts: starts.pending, coldStartSamples: starts.samples, retractedStart } : {}),
    },
  };
}

/**
 * Whether two decisions say the same thing: count, activity, winner, reason, and every figure of
 * the explanation (signals, demands, details). A caller that keeps decisions can keep the one it
 * has when the next says the same (an idle or steady trigger, call after call).
 */
export function sameDecision(a: Decision, b: Decision): boolean {
  const x = a.explanation;
  const y = b.explanation;
  return (
    a.desiredReplicas === b.desiredReplicas &&
    a.active === b.active &&
    x.winner === y.winner &&
    x.activeReason === y.activeReason &&
    sameFigures(x.signals, y.signals) &&
    sameFigures(x.demands, y.demands) &&
    sameFigures(x.details, y.details)
  );
}

/** Same keys with the same values (numbers, strings, booleans; NaN equals NaN). */
function sameFigures(a: object, b: object): boolean {
  const x = a as Readonly<Record<string, unknown>>;
  const y = b as Readonly<Record<string, unknown>>;
  let keys = 0;
  for (const key in x) {
    if (!Object.is(x[key], y[key]) || !(key in y)) return false;
    keys++;
  }
  for (const _ in y) keys--;
  return keys === 0;
}

/** The largest demand, then the replica cap and minReplicas/maxReplicas. */
function bound(demands: Demands, signals: Signals, scaling: ScalingConfig) {
  let desired = 0;
  let winner: DemandTerm = 'backlog';
  for (const term of DEMAND_SOURCES) {
    const value = demands[term];
    if (value !== undefined && value > desired) {
      // Whole replicas: a record of another writer's may hold a fraction, and KEDA takes the value as is.
      desired = Math.ceil(value);
      winner = term;
    }
  }
  if (signals.replicaCap !== undefined && desired > signals.replicaCap) {
    desired = signals.replicaCap;
    winner = 'replicaCap';
  }
  if (desired > scaling.maxReplicas) {
    desired = scaling.maxReplicas;
    winner = 'maxReplicas';
  }
  if (desired < scaling.minReplicas) {
    desired = scaling.minReplicas;
    winner = 'minReplicas';
  }
  return { desired, winner };
}

/**
 * A moment in an activity reason. Reasons name moments rather than durations up to now, so that a
 * trigger that stays idle gets the same decision call after call (the engine then keeps the one it
 * has instead of a new copy per call).
 */
function instant(ms: number): string {
  const date = new Date(ms);
  // A keep-warm window can be set past the last moment a Date holds (about 275,000 years).
  return Number.isNaN(date.getTime()) ? 'never' : date.toISOString();
}
