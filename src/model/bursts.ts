// Bursts: only replicas already warm serve a burst at once, and the ones it asks for start its tail
// a cold start later, so the fleet keeps warm the capacity that pays for itself. Pure.
//
// A burst's need: the replicas that start, within T, what arrived within the last T (each request
// holding a slot for S): n = A_T · S / (k · (T + S)). A burst is an episode of need >= 2, from its
// rise to its fall below half its peak; the last MAX_BURSTS are kept with their peak need, the
// arrivals at that peak and the seconds it rose for. With n replicas warm, a burst that needed
// n_b > n has about A_T · (1 − n / n_b) of its requests past them: the later arrivals (the warm
// replicas take the first ones, in order), which wait for the replicas the burst asks for and are
// late as far as those come more than T after they arrived (lateWith; the share is coldStart.ts's
// excessLateShare). The floor is the n that minimizes
//   n + lateRequestCost · (bursts a second expected over the next 2 C) · mean over bursts of late(n):
// GPU-seconds per second of warm replicas against the late requests they prevent, the bursts'
// rate read from the gaps between them given the time since the last (burstRate). A prewarm for a
// predicted burst is priced the same way, each replica costing one cold start instead.

/** Bursts remembered per trigger. */
const MAX_BURSTS = 16;
/** The bursts' rate is taken over at least this span, so that the first one seen does not look like one a second. */
const MIN_BURST_SPAN_SECONDS = 300;

export interface Burst {
  readonly atMs: number;
  /** Peak need (replicas). */
  readonly need: number;
  /** Arrivals within T at the peak. */
  readonly size: number;
  /** Seconds from the episode's start to its peak (none in a history written before it was kept: 0). */
  readonly riseSeconds?: number;
}

/** How a burst's requests past the warm replicas turn late. */
export interface LatePricing {
  /** T. */
  readonly objectiveSeconds: number;
  /** The share of them late, for those that arrived so many seconds after the burst began (coldStart.ts, excessLateShare). */
  readonly share: (offsetSeconds: number) => number;
}

export interface BurstState {
  readonly episode: Burst | undefined;
  readonly bursts: readonly Burst[];
}

/** The need now, from the arrivals within the last T. */
export function burstNeed(
  arrivedWithinT: number,
  serviceSeconds: number,
  slotsPerReplica: number,
  objectiveSeconds: number,
): number {
  return (arrivedWithinT * serviceSeconds) / (slotsPerReplica * (objectiveSeconds + serviceSeconds));
}

/** Follows the current episode, and closes it into the list when the need falls below half its peak. */
export function trackBursts(state: BurstState, need: number, size: number, nowMs: number): BurstState {
  let { episode, bursts } = state;
  if (need >= 2 && (episode === undefined || need > episode.need)) {
    const atMs = episode?.atMs ?? nowMs;
    // Never negative: the episode may have begun on another replica whose clock runs ahead.
    episode = { atMs, need, size, riseSeconds: Math.max(0, nowMs - atMs) / 1000 };
  } else if (episode !== undefined && need < episode.need / 2) {
    bursts = [...bursts, episode].slice(-MAX_BURSTS);
    episode = undefined;
  }
  return episode === state.episode && bursts === state.bursts ? state : { episode, bursts };
}

/** Points the arrivals past the warm replicas are averaged over (midpoints). */
const OFFSET_POINTS = 4;

/**
 * Requests the bursts seen would have left late with `n` replicas warm. Those past the warm ones
 * arrived over the last (1 − n / n_b) of the burst's rise, taken evenly, counted from the episode's
 * start (a need of 2: what came before it is priced as if it came then, a little short). A rise
 * longer than T is taken as T: the size is the arrivals within T at the peak, and a burst whose need
 * crept up for minutes brought about as many in its first T seconds.
 */
export function lateWith(bursts: readonly Burst[], n: number, pricing: LatePricing): number {
  let late = 0;
  for (const b of bursts) {
    if (b.need <= n) continue;
    const rise = Math.min(b.riseSeconds ?? 0, pricing.objectiveSeconds);
    let share: number;
    if (rise > 0) {
      const from = (rise * n) / b.need;
      share = 0;
      for (let i = 0; i < OFFSET_POINTS; i++) share += pricing.share(from + ((i + 0.5) * (rise - from)) / OFFSET_POINTS);
      share /= OFFSET_POINTS;
    } else share = pricing.share(0);
    late += b.size * (1 - n / b.need) * share;
  }
  return late;
}

/** The n in 0..top with the least cost (the smallest on a tie), n at most `limit` (maxReplicas). */
function cheapest(top: number, limit: number, cost: (n: number) => number): number {
  let best = 0;
  let bestCost = cost(0);
  for (let n = 1; n <= Math.min(top, limit); n++) {
    const c = cost(n);
    if (c < bestCost - 1e-9) {
      best = n;
      bestCost = c;
    }
  }
  return best;
}

const topNeed = (bursts: readonly Burst[]) => Math.ceil(Math.max(...bursts.map((b) => b.need)));

/** The bursts' hazard is shrunk toward their average rate by this many gaps' worth of it. */
const HAZARD_PRIOR_GAPS = 2;

/**
 * Bursts a second to expect over the next `windowSeconds`, given the time since the last one
 * began: of the gaps seen between bursts (start to start) at least that long, the share that ended
 * within the window (their hazard), shrunk toward the bursts' average rate. Bursts come in clusters
 * (the next one within a minute, then none for many), which an average over the hour spreads
 * evenly: the floor then idled through the long gaps and was short in the clusters. With no gap as
 * long as the time since the last burst, nothing is known: the average.
 */
export function burstRate(bursts: readonly Burst[], nowMs: number, windowSeconds: number): number {
  // A window of 0 (a cold start of 0 s) holds no burst: 0/0 otherwise (found by fuzzing).
  if (bursts.length === 0 || !(windowSeconds > 0)) return 0;
  const average = bursts.length / Math.max(MIN_BURST_SPAN_SECONDS, (nowMs - bursts[0]!.atMs) / 1000);
  const elapsed = (nowMs - bursts.at(-1)!.atMs) / 1000;
  let atRisk = 0;
  let ended = 0;
  for (let i = 1; i < bursts.length; i++) {
    const gap = (bursts[i]!.atMs - bursts[i - 1]!.atMs) / 1000;
    if (gap < elapsed) continue;
    atRisk++;
    if (gap < elapsed + windowSeconds) ended++;
  }
  return (ended + HAZARD_PRIOR_GAPS * average * windowSeconds) / (windowSeconds * (atRisk + HAZARD_PRIOR_GAPS));
}

/**
 * The warm floor that costs least: replicas against the late requests they prevent, at
 * `burstsPerSecond` bursts like the ones seen (burstRate).
 */
export function burstFloor(
  bursts: readonly Burst[],
  lateRequestCost: number,
  burstsPerSecond: number,
  maxReplicas: number,
  pricing: LatePricing,
): number {
  // The share falls as the offset grows: none late at 0, none at all.
  if (bursts.length === 0 || !(pricing.share(0) > 0)) return 0;
  const perBurst = (lateRequestCost * burstsPerSecond) / bursts.length;
  return cheapest(topNeed(bursts), maxReplicas, (n) => n + perBurst * lateWith(bursts, n, pricing));
}

/** Bursts a prewarm is sized from: the last few, the ones most like the next. */
const PREWARM_BURSTS = 3;

/**
 * The replicas to prewarm before an expected burst: each costs its cold start C, and the recent
 * bursts say how many requests n warm replicas would leave late. The n that minimizes
 *   n · C + lateRequestCost · (mean late(n) over the last bursts),
 * or undefined when no burst is known.
 */
export function prewarmSize(
  bursts: readonly Burst[],
  coldStartSeconds: number,
  lateRequestCost: number,
  maxReplicas: number,
  pricing: LatePricing,
): number | undefined {
  const recent = bursts.slice(-PREWARM_BURSTS);
  if (recent.length === 0) return undefined;
  return cheapest(
    topNeed(recent),
    maxReplicas,
    (n) => n * coldStartSeconds + (lateRequestCost * lateWith(recent, n, pricing)) / recent.length,
  );
}
