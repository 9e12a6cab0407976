// Online rate estimation per source: arrival and service rates from broker counters or
// broker-reported rates, smoothed with a time-based EWMA so that the polling cadence does not
// change the estimate. Pure: the caller keeps the state and passes the time.

/** What a rate estimate can be made from (a SourceReading fits). */
export interface RateSample {
  readonly backlog: number;
  readonly arrivedTotal?: number;
  readonly servedTotal?: number;
  /** What the counters count (SourceReading.counterBasis). */
  readonly counterBasis?: string;
  readonly arrivalRatePerSecond?: number;
  readonly serviceRatePerSecond?: number;
}

export interface RateState {
  readonly atMs: number;
  /** The sample before this one (undefined for a first sample): how far apart this estimate's samples are. */
  readonly previousAtMs?: number;
  readonly backlog: number;
  readonly arrivedTotal?: number;
  readonly servedTotal?: number;
  readonly counterBasis?: string;
  readonly arrivalRatePerSecond?: number;
  readonly serviceRatePerSecond?: number;
}

/** Smoothing time constant: rates follow a change within about this many seconds. */
export const RATE_TIME_CONSTANT_SECONDS = 30;

/**
 * Rates below this (messages per second: one in about 12 days) are 0. An average that decays
 * toward 0 never reaches it by itself, and a rate of 1e-30 would make every reading of an idle
 * queue a new figure, and so a new decision, for ever.
 */
export const RATE_FLOOR_PER_SECOND = 1e-6;

function smooth(previous: number | undefined, sample: number | undefined, dtSeconds: number): number | undefined {
  if (sample === undefined || !Number.isFinite(sample)) return previous;
  if (previous === undefined) return zeroBelowFloor(sample);
  const alpha = 1 - Math.exp(-dtSeconds / RATE_TIME_CONSTANT_SECONDS);
  return zeroBelowFloor(previous + alpha * (sample - previous));
}

function zeroBelowFloor(rate: number): number {
  return rate < RATE_FLOOR_PER_SECOND ? 0 : rate;
}

function counterRate(prev: number | undefined, next: number | undefined, dtSeconds: number): number | undefined {
  if (prev === undefined || next === undefined || dtSeconds <= 0) return undefined;
  const delta = next - prev;
  // A counter that went backwards was reset (topic recreated, broker restarted): no sample.
  return delta >= 0 ? delta / dtSeconds : undefined;
}

/** Whether two counter bases are both known and differ: counters read over them do not compare. */
export function otherBasis(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && a !== b;
}

/**
 * Arrivals from backlog deltas, for sources without counters (SQS, RabbitMQ amqp): growth plus
 * what was served. Without a service rate this is the net growth only, a lower bound that is
 * exact while the workload is scaled to zero (the moment that matters for waking).
 */
function backlogArrivalRate(
  prevBacklog: number,
  backlog: number,
  servicePerSecond: number | undefined,
  dtSeconds: number,
): number | undefined {
  if (dtSeconds <= 0) return undefined;
  return Math.max(0, (backlog - prevBacklog) / dtSeconds + (servicePerSecond ?? 0));
}

export function updateRates(prev: RateState | undefined, sample: RateSample, atMs: number): RateState {
  if (prev === undefined || atMs <= prev.atMs) {
    return {
      atMs,
      backlog: sample.backlog,
      arrivedTotal: sample.arrivedTotal,
      servedTotal: sample.servedTotal,
      ...(sample.counterBasis !== undefined && { counterBasis: sample.counterBasis }),
      arrivalRatePerSecond: sample.arrivalRatePerSecond,
      serviceRatePerSecond: sample.serviceRatePerSecond,
    };
  }
  const dt = (atMs - prev.atMs) / 1000;
  // Counters over another basis (other partitions) do not compare: no sample from them this time.
  const counted = otherBasis(prev.counterBasis, sample.counterBasis)
    ? { ...prev, arrivedTotal: undefined, servedTotal: undefined }
    : prev;
  const service = sample.serviceRatePerSecond ?? counterRate(counted.servedTotal, sample.servedTotal, dt);
  const arrival =
    sample.arrivalRatePerSecond ??
    counterRate(counted.arrivedTotal, sample.arrivedTotal, dt) ??
    (sample.arrivedTotal === undefined ? backlogArrivalRate(prev.backlog, sample.backlog, service, dt) : undefined);
  return {
    atMs,
    previousAtMs: prev.atMs,
    backlog: sample.backlog,
    arrivedTotal: sample.arrivedTotal,
    servedTotal: sample.servedTotal,
    ...(sample.counterBasis !== undefined && { counterBasis: sample.counterBasis }),
    arrivalRatePerSecond: smooth(prev.arrivalRatePerSecond, arrival, dt),
    serviceRatePerSecond: smooth(prev.serviceRatePerSecond, service, dt),
  };
}
