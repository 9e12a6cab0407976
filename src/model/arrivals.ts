// What the model reads from the arrival rate and the arrival counter, beyond the 30 s average of
// rates.ts: a steady rate to size the fleet for, the rate's trend, and how many requests arrived
// within the last objective. Pure: the caller keeps the state.
import { RATE_TIME_CONSTANT_SECONDS } from './rates.ts';

/** The steady rate averages over about this many arrivals' worth of time. */
const STEADY_ARRIVALS = 100;
const STEADY_MIN_SECONDS = 30;
const STEADY_MAX_SECONDS = 300;

/**
 * λ averaged over about STEADY_ARRIVALS arrivals (30 s to 5 min): the mean rate the steady fleet
 * is sized for, with Erlang C's margin for the Poisson noise around it. The 30 s average carries
 * that noise (±27 % at 0.4 req/s), and a fleet sized on its peaks is oversized.
 */
export function steadyArrivalRate(
  previous: number | undefined,
  lambda: number | undefined,
  dtSeconds: number,
): number | undefined {
  if (lambda === undefined) return previous;
  if (previous === undefined) return lambda;
  // The larger of the two sets the pace: a rate that rises from nothing is followed at its new pace.
  const tau = Math.min(STEADY_MAX_SECONDS, Math.max(STEADY_MIN_SECONDS, STEADY_ARRIVALS / Math.max(previous, lambda, 1e-6)));
  return previous + (1 - Math.exp(-dtSeconds / tau)) * (lambda - previous);
}

/** The backlog's rises, summed: the arrival counter of a source without one. */
export interface BacklogRises {
  readonly backlog: number;
  readonly total: number;
}

/**
 * Counts arrivals from the backlog for a source that counts none (SQS, RabbitMQ over amqp): each
 * rise of the backlog between two readings. A lower bound (what is served between two readings
 * hides as many arrivals), exact while no replica serves: a wake from zero, the head of a burst.
 */
export function countRises(previous: BacklogRises | undefined, backlog: number): BacklogRises {
  const b = Math.max(0, backlog);
  if (previous === undefined) return { backlog: b, total: b };
  if (b === previous.backlog) return previous;
  return { backlog: b, total: previous.total + Math.max(0, b - previous.backlog) };
}

/** An arrival-counter sample. */
export interface ArrivalMark {
  readonly atMs: number;
  readonly total: number;
}

/** Keeps arrival-counter samples at least T/8 apart, the oldest at or before now − T; a counter that went back starts over. */
export function markArrivals(
  marks: readonly ArrivalMark[] | undefined,
  total: number,
  nowMs: number,
  objectiveSeconds: number,
): readonly ArrivalMark[] {
  let list = marks ?? [];
  const last = list.at(-1);
  if (last !== undefined && total < last.total) list = [];
  if (list.length === 0 || nowMs - list.at(-1)!.atMs >= (objectiveSeconds * 1000) / 8) list = [...list, { atMs: nowMs, total }];
  const cutoff = nowMs - objectiveSeconds * 1000;
  let drop = 0;
  while (drop + 1 < list.length && list[drop + 1]!.atMs <= cutoff) drop++;
  return drop === 0 ? list : list.slice(drop);
}

/** Arrivals within about the last T seconds: since the oldest mark (none before any mark). */
export function arrivalsWithin(marks: readonly ArrivalMark[], total: number): number {
  return Math.max(0, total - (marks[0]?.total ?? total));
}

/**
 * How long the oldest of `waiting` messages has waited at most: they are the last `waiting` of
 * `total` arrivals, so the first of them came after the latest mark that counted no more than
 * `total − waiting`. Undefined when no mark counted so few (it waited about T or longer).
 */
export function queueHeadAgeSeconds(
  marks: readonly ArrivalMark[],
  total: number,
  waiting: number,
  nowMs: number,
): number | undefined {
  const head = total - waiting;
  let atMs: number | undefined;
  for (const m of marks) if (m.total <= head) atMs = m.atMs;
  return atMs === undefined ? undefined : Math.max(0, nowMs - atMs) / 1000;
}

/** The 30 s rate counts as a rise (and is projected) when above the steady one by this many of its standard deviations. */
const RISE_SD = 3;

/** The 30 s average's Poisson noise at `rate`: sqrt(rate / 2τ). */
function rateNoise(rate: number): number {
  return Math.sqrt(Math.max(0, rate) / (2 * RATE_TIME_CONSTANT_SECONDS));
}

/** Whether the 30 s rate has risen above the steady one by more than its noise (RISE_SD of it). */
export function risen(fast: number, steady: number): boolean {
  return fast > steady + RISE_SD * rateNoise(steady);
}

/** Whether the 30 s rate has fallen below the steady one by more than its noise: the steady one still carries traffic that is gone. */
export function fallen(fast: number, steady: number): boolean {
  return fast < steady - RISE_SD * rateNoise(steady);
}

/**
 * The arrival rate the counter vouches for over the last `shortestSeconds` or more (its marks reach
 * back about T): over each window from a mark at least that old to now, the arrivals counted less
 * RISE_SD standard deviations of their Poisson count, per second; the highest of them, undefined
 * without such a window. A step of the rate (a tenant's few a minute turning into 8 a second)
 * shows here within seconds, where the 30 s average has caught up 1 − e^(−t/30) of it (54 % a cold
 * start of 23 s later); a cluster shorter than the window is spread over it.
 */
export function recentRateFloor(
  marks: readonly ArrivalMark[],
  total: number,
  nowMs: number,
  shortestSeconds: number,
): number | undefined {
  let floor: number | undefined;
  for (const mark of marks) {
    const seconds = (nowMs - mark.atMs) / 1000;
    // Oldest first: the rest are younger still.
    if (seconds < shortestSeconds) break;
    const arrived = Math.max(0, total - mark.total);
    floor = Math.max(floor ?? 0, (arrived - RISE_SD * Math.sqrt(arrived)) / seconds);
  }
  return floor;
}

/** A rise being watched (the level it crossed, and when), and the share of recent rises that lasted a cold start. */
export interface RiseWatch {
  readonly probe?: { readonly atMs: number; readonly level: number };
  readonly lasting?: number;
}

/** How fast the share of lasting rises follows its samples (about the last three rises). */
const LASTING_SMOOTHING = 0.3;

/**
 * Watches each rise for one cold start: whether the 30 s rate is still above the level it crossed
 * when the replicas asked for it could serve. A rise that is noise (a Poisson rate of 0.4 a second
 * crosses 3 of its standard deviations now and then) is gone by then; a surge or a climb is not.
 * `lasting` starts at 1 (every rise taken for real) and moves a third of the way to each outcome.
 */
export function watchRises(
  watch: RiseWatch | undefined,
  fast: number | undefined,
  steady: number | undefined,
  coldStartSeconds: number,
  nowMs: number,
): RiseWatch {
  let { probe, lasting } = watch ?? {};
  if (probe !== undefined && nowMs - probe.atMs >= coldStartSeconds * 1000) {
    const lasted = fast !== undefined && fast > probe.level ? 1 : 0;
    lasting = (lasting ?? 1) + LASTING_SMOOTHING * (lasted - (lasting ?? 1));
    probe = undefined;
  }
  if (probe === undefined && fast !== undefined && steady !== undefined && risen(fast, steady)) {
    probe = { atMs: nowMs, level: steady + RISE_SD * rateNoise(steady) };
  }
  return watch !== undefined && probe === watch.probe && lasting === watch.lasting ? watch : { probe, lasting };
}

/** A sample of the 30 s rate. */
export interface RateMark {
  readonly atMs: number;
  readonly rate: number;
}

/** Rate samples are kept this far apart, and this long. */
const TRAIL_STEP_MS = 5_000;
const TRAIL_SPAN_MS = 40_000;
/** The trend is the rise since a sample at least this old. */
const TREND_BASE_MS = 25_000;
/** The part of the rise within this many of its noise's standard deviations is noise. */
const TREND_NOISE_SD = 1;
/** A larger rise is a surge, not a trend (the 30 s rate then counts whole: demand.ts). */
const TREND_MAX_SD = 3;

/** The 30 s rate's samples, TRAIL_STEP_MS apart, over the last TRAIL_SPAN_MS (oldest first). */
export function markRates(trail: readonly RateMark[] | undefined, rate: number | undefined, nowMs: number): readonly RateMark[] {
  let list = trail ?? [];
  if (rate !== undefined && (list.length === 0 || nowMs - list.at(-1)!.atMs >= TRAIL_STEP_MS))
    list = [...list, { atMs: nowMs, rate }];
  let drop = 0;
  while (drop < list.length && nowMs - list[drop]!.atMs > TRAIL_SPAN_MS) drop++;
  return drop === 0 ? list : list.slice(drop);
}

/**
 * What the 30 s rate lags behind a rate that climbs: an average over τ seconds trails a ramp by τ
 * times its slope. The slope is the rise since the oldest sample at least TREND_BASE_MS old; the
 * part of τ · slope within TREND_NOISE_SD standard deviations of the average's Poisson noise
 * (sqrt(rate / 2τ)) is noise, and it counts up to TREND_MAX_SD of them. 0 while the rate holds or
 * falls, and before a sample is old enough.
 */
export function rateTrend(trail: readonly RateMark[], rate: number | undefined, nowMs: number): number {
  if (rate === undefined || !(rate > 0)) return 0;
  const base = trail.find((m) => nowMs - m.atMs >= TREND_BASE_MS);
  if (base === undefined) return 0;
  const tau = RATE_TIME_CONSTANT_SECONDS;
  const lag = ((rate - base.rate) / ((nowMs - base.atMs) / 1000)) * tau;
  const sd = rateNoise(rate);
  return Math.min(TREND_MAX_SD * sd, Math.max(0, lag - TREND_NOISE_SD * sd));
}
