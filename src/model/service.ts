// What one replica can serve, learned from the brokers. Pure: the caller keeps the state.
//
// With in-flight counts (RabbitMQ's unacknowledged, SQS's not-visible messages): Little's law.
// The time a message spends in a replica's hands is S = (time-average of in-flight) / (rate
// served), at any load but idle; a replica holds k messages at once (in-flight per consumer while
// messages wait, else messagesPerReplica raised to the in-flight per consumer seen while none
// wait), so it serves μ = k / S. S is averaged over about SERVICE_AVERAGE_COMPLETIONS
// completions: the request mix drifts (shorter requests at the peak), and an hour-old S sizes the
// fleet for traffic that is gone.
// Without in-flight counts: μ from stretches during which the fleet was saturated, and (with a
// served counter) a bound on S from Little's law on the whole backlog, minute by minute: backlog-
// seconds over messages served is S plus the mean wait, so the lowest of recent minutes is at
// least S and close to it once a minute passes with none waiting. What is in service is then at
// most λ·min(that, k / μ): Kafka's lag counts those messages with the waiting ones.
// A consumer that prefetches past what it serves at once shows it in its throughput, which stops
// growing with what it holds (detectConcurrency); the messages past that count as waiting.
import { MAX_PER_REPLICA, MIN_PER_REPLICA, type ScalingConfig } from '../trigger/types.ts';
import { appendBounded } from './keepWarm.ts';
import type { Signals, TriggerHistory } from './types.ts';

/** Evidence older than about this many seconds fades, at the latest. */
const SERVICE_TIME_CONSTANT_SECONDS = 600;
/** Completions the service time is averaged over (at least a minute's worth). */
const SERVICE_AVERAGE_COMPLETIONS = 200;
const MIN_SERVICE_AVERAGING_SECONDS = 60;
/** Messages served before a learned figure is trusted. */
export const MIN_SERVED_TO_LEARN = 50;
/** Service times of evidence before S is trusted. */
const SPAN_SERVICE_TIMES = 4;
/** Shortest saturated stretch that gives a throughput sample (without in-flight counts). */
const MIN_STRETCH_SECONDS = 5;
/** How fast k follows its samples. */
const SLOTS_SMOOTHING = 0.2;
/** Service times a replica that left (its consumer gone) may still hold messages for. */
const DRAIN_SERVICE_TIMES = 3;
/** What a drain lasts while no message has been served yet to say what S is. */
const DRAIN_FALLBACK_SECONDS = 60;
/** Little's law on the whole backlog: minutes summed, minutes kept, and messages a minute must serve to count. */
const BACKLOG_MINUTE_SECONDS = 60;
const BACKLOG_MINUTES = 10;
const MIN_SERVED_PER_MINUTE = 20;
const MIN_BACKLOG_MINUTES = 3;
/**
 * Messages a minute must serve to say what its consumers hold at once: its S is the mean of its
 * completions, and 20 of a long-tailed request mix put one minute's S at 2.5 times another's
 * (one replica at 0.35 a second), which read as a concurrency of 1.1 for 4 slots.
 */
const MIN_SERVED_PER_OCCUPANCY_MINUTE = 40;
/** A consumer whose throughput says it serves at most this share of what it holds is taken to prefetch past its concurrency. */
const PREFETCH_SHARE = 0.5;
/** A minute of in-flight readings lasts at least this many of its own S: Little's law over less is mostly the messages that span its ends. */
const SPAN_SERVICE_TIMES_PER_MINUTE = 2;
/** Minutes whose consumers held less than this each, on average, say what a trickle costs, not the workload: left out. */
const MIN_IN_FLIGHT_PER_CONSUMER = 1;

type ServiceSource = 'configured' | 'in-flight' | 'saturation';

export interface Service {
  /** μ: messages per second one replica serves with all its slots busy. */
  readonly throughputPerReplica: number | undefined;
  /** S: mean seconds a message spends in a replica's hands. */
  readonly serviceSeconds: number | undefined;
  /** k: messages one replica holds at once. */
  readonly slotsPerReplica: number;
  readonly source: ServiceSource | undefined;
  /** Messages per second one replica served over the current saturated stretch (the same consumers throughout), once it holds MIN_SERVED_TO_LEARN completions. */
  readonly saturatedPerReplica?: number;
  /** Without in-flight counts: at most what one message spends in service, from Little's law on the whole backlog and from k / μ. */
  readonly inServiceBoundSeconds?: number;
  /** The history fields this owns, updated. */
  readonly history: Pick<
    TriggerHistory,
    | 'serviceEvidence'
    | 'slotsPerReplica'
    | 'drainingUntilMs'
    | 'lastInFlight'
    | 'lastServedTotal'
    | 'busyStretch'
    | 'throughputEvidence'
    | 'learnedThroughputPerReplica'
    | 'backlogMinute'
    | 'backlogSecondsPerServed'
  >;
}

/**
 * The signals with the messages a replica's consumer prefetched past its concurrency k
 * (concurrencyPerReplica, or detectConcurrency's) counted as waiting: the broker counts them in
 * flight, but they wait inside the replica for a slot. Unchanged without k, or where the source
 * reports no in-flight messages or consumers.
 */
export function inFlightPastConcurrency(signals: Signals, k: number | undefined): Signals {
  const { inFlight, consumers } = signals;
  if (k === undefined || inFlight === undefined || consumers === undefined) return signals;
  const inService = Math.min(inFlight, k * consumers);
  if (inService >= inFlight) return signals;
  const waiting = signals.waiting ?? Math.max(0, signals.backlog - inFlight);
  return { ...signals, inFlight: inService, waiting: waiting + inFlight - inService, prefetched: inFlight - inService };
}

/**
 * The signals of workers that acknowledge a message before serving it (acknowledgement
 * before-work): what the broker counts in flight waits inside the replicas, and nothing it reports
 * is in service. The whole backlog waits, and no in-flight count is left to read S from: μ comes
 * from stretches with every replica busy, as for a source without in-flight counts (Kafka).
 */
export function acknowledgedBeforeWork(signals: Signals): Signals {
  const { inFlight, ...rest } = signals;
  // None is in service where it is counted (Kafka's lag of a consumer that commits first: past it).
  const uncounted = signals.inServiceCounted !== undefined && { inServiceCounted: false };
  if (inFlight === undefined && signals.waiting === undefined) return uncounted ? { ...signals, ...uncounted } : signals;
  return {
    ...rest,
    waiting: Math.max(0, signals.backlog),
    ...(inFlight !== undefined && { prefetched: inFlight }),
    ...uncounted,
  };
}

/**
 * Whether the fleet is saturated: every consumer's slots busy and a message waiting for each, the
 * backlog at least (k + 1) per consumer once in-flight counts have told k (a k learned above
 * messagesPerReplica read a fleet a third full as saturated, and its served rate as its capacity),
 * messagesPerReplica per consumer before (and without in-flight counts: Kafka's lag).
 */
function fleetBusy(signals: Signals, perConsumer: number): boolean {
  const { consumers } = signals;
  return consumers !== undefined && consumers > 0 && signals.backlog >= consumers * perConsumer;
}

/** S as the evidence reads it: message-seconds in flight over messages served (none served: unknown). */
function evidenceSeconds(evidence: TriggerHistory['serviceEvidence']): number | undefined {
  return evidence !== undefined && evidence.served > 0 ? evidence.occupancySeconds / evidence.served : undefined;
}

/**
 * The averaging time that holds about SERVICE_AVERAGE_COMPLETIONS at the rate served lately, and
 * at least SPAN_SERVICE_TIMES service times: S is trusted only on evidence that spans them, and a
 * shorter window (long requests at a high rate) never would be.
 */
export function serviceAveragingSeconds(evidence: TriggerHistory['serviceEvidence']): number {
  const S = evidenceSeconds(evidence);
  if (S === undefined) return SERVICE_TIME_CONSTANT_SECONDS;
  const rate = evidence!.served / evidence!.averagingSeconds;
  return Math.min(
    SERVICE_TIME_CONSTANT_SECONDS,
    Math.max(MIN_SERVICE_AVERAGING_SECONDS, SERVICE_AVERAGE_COMPLETIONS / rate, SPAN_SERVICE_TIMES * S),
  );
}

export function learnService(signals: Signals, scaling: ScalingConfig, history: TriggerHistory, nowMs: number): Service {
  const dtSeconds = history.lastDecisionAtMs === undefined ? 0 : Math.max(0, nowMs - history.lastDecisionAtMs) / 1000;
  const { inFlight, waiting, consumers, servedTotal } = signals;

  // k: in-flight per consumer while messages wait (every slot is taken then). While none wait it is
  // a floor: a replica holds at least its share of what is in flight. A messagesPerReplica below
  // the replica's prefetch would otherwise size the fleet for slots it does not have, and a fleet
  // that large never lets messages wait to show the real k. A replica that leaves (the HPA scales
  // down, its consumer cancels) serves the messages it holds before it goes, and the brokers count
  // them on the consumers that stay: for a few service times after the consumers fall, a sample
  // can only lower k (a periodic batch's drained fleet said k = 12 for 4 slots, and the next batch
  // got a third of its replicas). A k raised too far all the same undersizes the fleet until
  // messages wait, and those samples bring it back.
  let slots = history.slotsPerReplica;
  // k before any in-flight count says it: the concurrency when told, else messagesPerReplica.
  const priorSlots = scaling.concurrencyPerReplica ?? scaling.messagesPerReplica;
  let drainingUntilMs = history.drainingUntilMs;
  if (consumers !== undefined && history.lastReady !== undefined && consumers < history.lastReady) {
    // Capped: a message held while nothing completes sends the evidence's S past any bound (a hung
    // consumer for days: Infinity, which no stored record can carry; found by fuzzing).
    const S = Math.min(evidenceSeconds(history.serviceEvidence) ?? DRAIN_FALLBACK_SECONDS, SERVICE_TIME_CONSTANT_SECONDS);
    drainingUntilMs = Math.max(drainingUntilMs ?? 0, nowMs + DRAIN_SERVICE_TIMES * S * 1000);
  }
  if (drainingUntilMs !== undefined && nowMs >= drainingUntilMs) drainingUntilMs = undefined;
  if (inFlight !== undefined && waiting !== undefined && consumers !== undefined && consumers > 0) {
    const sample = inFlight / consumers;
    const raises = sample > (slots ?? priorSlots);
    // While replicas leave, a sample that raises k counts their messages on the rest.
    const trusted = drainingUntilMs === undefined || !raises;
    if (trusted && waiting > 0 && inFlight >= consumers) {
      slots = slots === undefined ? sample : slots + SLOTS_SMOOTHING * (sample - slots);
    } else if (trusted && waiting === 0 && raises) {
      slots = sample;
    }
  }
  const k = slots ?? priorSlots;

  // Little's law: message-seconds in flight over messages served.
  let evidence = history.serviceEvidence;
  if (inFlight !== undefined && history.lastInFlight !== undefined && dtSeconds > 0) {
    const served =
      servedTotal !== undefined && history.lastServedTotal !== undefined
        ? servedTotal - history.lastServedTotal
        : (signals.serviceRatePerSecond ?? Number.NaN) * dtSeconds;
    if (served >= 0) {
      const averagingSeconds = serviceAveragingSeconds(evidence);
      const keep = Math.exp(-dtSeconds / averagingSeconds);
      evidence = {
        occupancySeconds: (evidence?.occupancySeconds ?? 0) * keep + ((history.lastInFlight + inFlight) / 2) * dtSeconds,
        served: (evidence?.served ?? 0) * keep + served,
        averagingSeconds,
        spanSeconds: Math.min(SERVICE_TIME_CONSTANT_SECONDS, (evidence?.spanSeconds ?? 0) + dtSeconds),
      };
    }
  }
  // Trusted after MIN_SERVED_TO_LEARN completions over SPAN_SERVICE_TIMES service times: the first
  // completions of a fleet that starts are its shortest requests, and alone they make S look short.
  const candidate =
    evidence !== undefined && evidence.served >= MIN_SERVED_TO_LEARN && evidence.occupancySeconds > 0
      ? evidenceSeconds(evidence)
      : undefined;
  // A full window counts as spanning them: it is at least SPAN_SERVICE_TIMES of the S it last
  // averaged, and S rising by a little would otherwise leave it untrusted sample after sample. The
  // span is the evidence's age (up to the longest window), not capped at the current window: a
  // window that grows faster than the readings age (completions in clumps lift S by more than a
  // quarter second a second) would otherwise fall out of trust for a reading, and μ with it.
  const spanned =
    candidate !== undefined && evidence!.spanSeconds >= Math.min(SPAN_SERVICE_TIMES * candidate, evidence!.averagingSeconds);
  const littleS = spanned ? candidate : undefined;

  const saturatedAt = slots === undefined ? scaling.messagesPerReplica : slots + 1;
  const saturation = learnFromSaturation(signals, saturatedAt, history, nowMs, dtSeconds);
  const backlogLaw = inFlight === undefined ? littleOnBacklog(signals, history, nowMs, dtSeconds) : undefined;
  const learned: Service['history'] = {
    serviceEvidence: evidence,
    slotsPerReplica: slots,
    drainingUntilMs,
    lastInFlight: inFlight,
    lastServedTotal: servedTotal,
    busyStretch: saturation.stretch,
    throughputEvidence: saturation.evidence,
    learnedThroughputPerReplica: saturation.learned,
    backlogMinute: backlogLaw?.minute,
    backlogSecondsPerServed: backlogLaw?.ratios,
  };
  const service = (mu: number | undefined, S: number | undefined, source: ServiceSource | undefined): Service => ({
    throughputPerReplica: mu,
    serviceSeconds: S,
    slotsPerReplica: k,
    source,
    saturatedPerReplica: saturation.current,
    ...(backlogLaw?.seconds !== undefined && S !== undefined && { inServiceBoundSeconds: Math.min(backlogLaw.seconds, S) }),
    history: learned,
  });
  if (scaling.throughputPerReplica !== undefined)
    return service(scaling.throughputPerReplica, k / scaling.throughputPerReplica, 'configured');
  if (littleS !== undefined) {
    const mu = perReplica(k / littleS);
    return service(mu, k / mu, 'in-flight');
  }
  if (saturation.learned !== undefined) return service(saturation.learned, k / saturation.learned, 'saturation');
  return service(undefined, undefined, undefined);
}

/**
 * μ from whole stretches during which the fleet stayed saturated with the same consumers: the
 * served-counter delta over the replica-seconds, old evidence fading, trusted after
 * MIN_SERVED_TO_LEARN messages. Without counters, the smoothed service rate per consumer while
 * saturated stands in for the stretches. `current`: the rate per replica over the open stretch,
 * once it holds MIN_SERVED_TO_LEARN messages.
 */
function learnFromSaturation(signals: Signals, saturatedAt: number, history: TriggerHistory, nowMs: number, dtSeconds: number) {
  const busy = fleetBusy(signals, saturatedAt);
  let evidence = history.throughputEvidence;
  const add = (served: number, replicaSeconds: number, seconds: number) => {
    const keep = Math.exp(-seconds / SERVICE_TIME_CONSTANT_SECONDS);
    evidence = {
      served: (evidence?.served ?? 0) * keep + served,
      replicaSeconds: (evidence?.replicaSeconds ?? 0) * keep + replicaSeconds,
    };
  };
  let stretch: TriggerHistory['busyStretch'];
  let current: number | undefined;
  if (signals.servedTotal === undefined) {
    const rate = signals.serviceRatePerSecond;
    if (busy && rate !== undefined && rate > 0) add(rate * dtSeconds, signals.consumers! * dtSeconds, dtSeconds);
  } else {
    const open = history.busyStretch;
    const seconds = open === undefined ? 0 : (nowMs - open.startMs) / 1000;
    const served = open === undefined ? 0 : signals.servedTotal - open.servedTotal;
    // A counter that went back (the broker's statistics reset, a node restarted under the same
    // consumers) ends the stretch at its last reading: counted on, it served less than nothing, and
    // once climbing again too little (found by review: μ learned low).
    const wentBack = history.lastServedTotal !== undefined && signals.servedTotal < history.lastServedTotal;
    if (busy && open !== undefined && open.consumers === signals.consumers && !wentBack) {
      stretch = open;
      if (served >= MIN_SERVED_TO_LEARN && seconds > 0) current = served / (open.consumers * seconds);
    } else {
      // Closed at its last busy reading, the one before this: the interval since is the fleet
      // leaving saturation, or a jump of the served counter that is no service (a consumer group's
      // offsets reset to the latest: found by review, μ learned 13 times too high for an hour).
      // The previous reading's time, not now − dt: dt is 0 after a clock stepped back a little.
      const closedSeconds =
        open === undefined || history.lastDecisionAtMs === undefined ? 0 : (history.lastDecisionAtMs - open.startMs) / 1000;
      const closedServed =
        history.lastServedTotal === undefined || open === undefined ? -1 : history.lastServedTotal - open.servedTotal;
      if (closedSeconds >= MIN_STRETCH_SECONDS && closedServed >= 0)
        add(closedServed, open!.consumers * closedSeconds, closedSeconds);
      if (busy) stretch = { startMs: nowMs, servedTotal: signals.servedTotal, consumers: signals.consumers! };
    }
  }
  const trusted = evidence !== undefined && evidence.served >= MIN_SERVED_TO_LEARN && evidence.replicaSeconds > 0;
  const mu = trusted ? evidence!.served / evidence!.replicaSeconds : history.learnedThroughputPerReplica;
  const learned = mu === undefined ? undefined : perReplica(mu);
  return { learned, evidence, stretch, current };
}

/**
 * A throughput learned per replica, within what a setting may say (MIN_PER_REPLICA to
 * MAX_PER_REPLICA): evidence from another writer's record at the edge of what the store's schema
 * takes (1e300 served over 1e-10 replica-seconds) made it Infinity, every demand NaN, and the fleet
 * minReplicas with a queue of hundreds (found by review).
 */
function perReplica(mu: number): number {
  return Math.min(MAX_PER_REPLICA, Math.max(MIN_PER_REPLICA, mu));
}

/** A minute being summed: its start and the served counter then (and the sums). */
interface Minute {
  readonly startMs: number;
  readonly servedTotal: number;
}

/**
 * The minute with this reading added (`add`), opened afresh (`open`) when none is or the served
 * counter went back; `done` with what it served once it has lasted a minute, or as long as `lasts`
 * says (a fresh one opens then).
 */
function sumMinute<M extends Minute>(
  minute: M | undefined,
  servedTotal: number,
  nowMs: number,
  open: (startMs: number, servedTotal: number) => M,
  add: (minute: M) => M,
  lasts: (summed: M, served: number) => number = () => BACKLOG_MINUTE_SECONDS,
): { minute: M; done?: { minute: M; served: number } } {
  if (minute === undefined || servedTotal < minute.servedTotal) return { minute: open(nowMs, servedTotal) };
  const summed = add(minute);
  if (nowMs - minute.startMs < lasts(summed, servedTotal - minute.servedTotal) * 1000) return { minute: summed };
  return { minute: open(nowMs, servedTotal), done: { minute: summed, served: servedTotal - minute.servedTotal } };
}

/**
 * Little's law on the whole backlog, for a source with a served counter and no in-flight count:
 * each minute's backlog-seconds over the messages it served (a minute serving fewer than
 * MIN_SERVED_PER_MINUTE says nothing), the last BACKLOG_MINUTES kept; `seconds`, their lowest once
 * MIN_BACKLOG_MINUTES are in. A minute is S plus its mean wait, so the lowest is at least S.
 */
export function littleOnBacklog(signals: Signals, history: TriggerHistory, nowMs: number, dtSeconds: number) {
  const { servedTotal } = signals;
  let ratios = history.backlogSecondsPerServed;
  if (servedTotal === undefined) return { minute: undefined, ratios, seconds: undefined };
  const step = sumMinute(
    history.backlogMinute,
    servedTotal,
    nowMs,
    (startMs, total) => ({ startMs, servedTotal: total, backlogSeconds: 0 }),
    (m) => ({ ...m, backlogSeconds: m.backlogSeconds + Math.max(0, signals.backlog) * dtSeconds }),
  );
  if (step.done !== undefined && step.done.served >= MIN_SERVED_PER_MINUTE)
    ratios = appendBounded(ratios, step.done.minute.backlogSeconds / step.done.served, BACKLOG_MINUTES);
  const seconds = ratios !== undefined && ratios.length >= MIN_BACKLOG_MINUTES ? Math.min(...ratios) : undefined;
  return { minute: step.minute, ratios, seconds };
}

/**
 * A consumer that takes more messages than it serves at once (a Celery worker prefetches 4 per
 * process by default) holds the rest in flight: the broker counts them unacknowledged, Little's
 * law reads their wait inside the replica as service, and a fleet sized on them leaves them late.
 * Its throughput gives it away: over a minute, a consumer holding n serves min(n, c) / S a second,
 * flat once n passes its concurrency c, where a consumer that serves all it holds serves n / S.
 * Of the last BACKLOG_MINUTES (each at least SPAN_SERVICE_TIMES_PER_MINUTE of its S long, serving
 * MIN_SERVED_PER_OCCUPANCY_MINUTE or more, its consumers holding MIN_IN_FLIGHT_PER_CONSUMER each or more;
 * MIN_BACKLOG_MINUTES of them at least), the shortest S (in flight over served) times the highest
 * served per consumer reads c: S from a minute that held no more than c, c / S from one that held
 * c or more. When that is at most PREFETCH_SHARE of the most in flight per consumer any minute
 * saw, the consumers prefetch past it. A consumer that serves all it holds reads about its own n,
 * within the request mix's changes from minute to minute. Undefined while the minutes do not say
 * so (a fleet that always holds its whole prefetch looks like one with that many slots), or
 * without in-flight counts, consumers and a served counter (RabbitMQ's management API has all
 * three).
 */
export function detectConcurrency(signals: Signals, history: TriggerHistory, nowMs: number, dtSeconds: number) {
  const { inFlight, consumers, servedTotal } = signals;
  let minutes = history.occupancyMinutes;
  if (inFlight === undefined || consumers === undefined || servedTotal === undefined)
    return { minute: undefined, minutes, concurrency: undefined };
  const step = sumMinute(
    history.occupancyMinute,
    servedTotal,
    nowMs,
    (startMs, total) => ({ startMs, servedTotal: total, inFlightSeconds: 0, consumerSeconds: 0 }),
    (m) => ({
      ...m,
      inFlightSeconds: m.inFlightSeconds + inFlight * dtSeconds,
      consumerSeconds: m.consumerSeconds + consumers * dtSeconds,
    }),
    (m, served) => Math.max(BACKLOG_MINUTE_SECONDS, (SPAN_SERVICE_TIMES_PER_MINUTE * m.inFlightSeconds) / Math.max(1, served)),
  );
  const done = step.done;
  if (
    done !== undefined &&
    done.served >= MIN_SERVED_PER_OCCUPANCY_MINUTE &&
    done.minute.inFlightSeconds >= MIN_IN_FLIGHT_PER_CONSUMER * done.minute.consumerSeconds &&
    done.minute.consumerSeconds > 0
  ) {
    const { inFlightSeconds, consumerSeconds } = done.minute;
    const sample = {
      serviceSeconds: inFlightSeconds / done.served,
      servedPerConsumer: done.served / consumerSeconds,
      inFlightPerConsumer: inFlightSeconds / consumerSeconds,
    };
    minutes = appendBounded(minutes, sample, BACKLOG_MINUTES);
  }
  let concurrency: number | undefined;
  if (minutes !== undefined && minutes.length >= MIN_BACKLOG_MINUTES) {
    const bound = Math.min(...minutes.map((m) => m.serviceSeconds)) * Math.max(...minutes.map((m) => m.servedPerConsumer));
    if (bound <= PREFETCH_SHARE * Math.max(...minutes.map((m) => m.inFlightPerConsumer))) concurrency = Math.max(1, bound);
  }
  return { minute: step.minute, minutes, concurrency };
}
