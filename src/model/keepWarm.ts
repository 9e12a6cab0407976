// Scale to zero only when it pays. Idle for t seconds costs t GPU-seconds per replica kept warm;
// a gap not bridged costs a cold start: its C GPU-seconds of loading, plus, when C is longer than
// the objective, the requests that arrive in its first C − T seconds (they wait past T), at
// lateRequestCost each. From the idle gaps a trigger has seen, pick the keep-warm window that would
// have cost least (the rent-or-buy problem with a learned gap distribution), from the first gap
// on; before it, or past the longest gap seen, keep warm for the break-even K, which is never
// worse than twice the offline optimum. When gaps are regular (periodic batches), also say when to
// wake one cold start early.

/** Gaps remembered per trigger. */
export const MAX_GAPS = 32;
/**
 * Fewer gaps than this: nothing to learn from. One is enough: the break-even is paid in full on
 * every long gap, at T < C with the late head priced in (docs/model-experiments.md).
 */
const MIN_GAPS_TO_LEARN = 1;
/** Gaps count as regular when the last ones are this close to their median (relative). */
const REGULAR_SPREAD = 0.15;
const REGULAR_GAPS = 2;

export interface KeepWarmWindow {
  readonly seconds: number;
  readonly source: 'fixed' | 'learned' | 'break-even';
}

/**
 * Idle + cold-start cost over the seen gaps when keeping warm for `w` seconds: a gap bridged costs
 * its length, one not bridged costs w plus the cold start that ends it, K (a number for every gap,
 * or one per gap: `costs[i]` for `gaps[i]`).
 */
export function keepWarmCost(gaps: readonly number[], w: number, coldStartCostSeconds: number | readonly number[]): number {
  let cost = 0;
  for (let i = 0; i < gaps.length; i++) {
    const g = gaps[i]!;
    cost += g <= w ? g : w + (typeof coldStartCostSeconds === 'number' ? coldStartCostSeconds : coldStartCostSeconds[i]!);
  }
  return cost;
}

/**
 * How long to stay warm after the last work, with K per gap (or one for all) and `breakEven`, the
 * wake cost when no gap says more. Before the first gap: `breakEven`. When bridging every
 * gap seen is cheapest, the window runs `breakEven` past the longest: beyond the gaps seen nothing
 * is known, and rent-or-buy's break-even is never worse than twice the best in hindsight there.
 */
export function keepWarmWindow(
  setting: 'auto' | number,
  gaps: readonly number[],
  coldStartCostSeconds: number | readonly number[],
  breakEven: number,
): KeepWarmWindow {
  if (setting !== 'auto') return { seconds: setting, source: 'fixed' };
  if (gaps.length < MIN_GAPS_TO_LEARN) return { seconds: breakEven, source: 'break-even' };
  // The cheapest window is 0 or one of the seen gaps (cost is piecewise linear between them).
  let best = 0;
  let bestCost = keepWarmCost(gaps, 0, coldStartCostSeconds);
  let longest = 0;
  for (const g of [...gaps].sort((a, b) => a - b)) {
    longest = g;
    const cost = keepWarmCost(gaps, g, coldStartCostSeconds);
    if (cost < bestCost - 1e-9) {
      best = g;
      bestCost = cost;
    }
  }
  return { seconds: best >= longest && best > 0 ? best + breakEven : best, source: 'learned' };
}

export interface Prewarm {
  /** Seconds after the idle period began when the next work is expected. */
  readonly expectedGapSeconds: number;
  /** Stop waiting for it this many seconds after the idle period began. */
  readonly giveUpAfterSeconds: number;
}

/** Regular gaps (e.g. a batch every 10 minutes) predict the next one; irregular ones predict nothing. */
export function predictGap(gaps: readonly number[], coldStartSeconds: number): Prewarm | undefined {
  if (gaps.length < REGULAR_GAPS) return undefined;
  const last = gaps.slice(-REGULAR_GAPS);
  const sorted = [...last].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const min = sorted[0]!;
  const max = sorted[sorted.length - 1]!;
  if (median <= 0 || (max - min) / median > REGULAR_SPREAD) return undefined;
  return { expectedGapSeconds: min, giveUpAfterSeconds: max + coldStartSeconds };
}

/**
 * Whether a prewarm on `next` would have caught a gap of `gapSeconds`: its replicas, asked one cold
 * start before the expected end, are ready by then, so work that came up to T earlier waits no
 * longer than the objective; past the give-up point they are gone.
 */
export function covers(next: Prewarm, gapSeconds: number, objectiveSeconds: number): boolean {
  return gapSeconds >= next.expectedGapSeconds - objectiveSeconds && gapSeconds <= next.giveUpAfterSeconds;
}

export function appendBounded<T>(list: readonly T[] | undefined, value: T, max: number): T[] {
  const next = [...(list ?? []), value];
  return next.length > max ? next.slice(next.length - max) : next;
}
