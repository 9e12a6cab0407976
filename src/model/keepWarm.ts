// Scale to zero only when it pays. Idle for t seconds costs t GPU-seconds; a cold start costs
// about C GPU-seconds of model loading plus about C seconds of waiting for the first requests.
// From the idle gaps a trigger has seen, pick the keep-warm window that would have cost least
// (the rent-or-buy problem with a learned gap distribution); with too few gaps, keep warm for the
// ski-rental break-even C, which is never worse than twice the offline optimum.
// When gaps are regular (periodic batches), also say when to wake one cold start early.

/** Gaps remembered per trigger. */
export const MAX_GAPS = 32;
/** Fewer gaps than this: not enough to learn from. */
export const MIN_GAPS_TO_LEARN = 3;
/** A cold start counted in GPU-seconds-equivalents per second of cold start: loading + waiting. */
export const COLD_START_COST_FACTOR = 2;
/** Gaps count as regular when the last ones are this close to their median (relative). */
export const REGULAR_SPREAD = 0.15;
export const REGULAR_GAPS = 3;

export interface KeepWarmWindow {
  readonly seconds: number;
  readonly source: 'fixed' | 'learned' | 'break-even';
}

/** Expected idle + cold-start cost over the seen gaps when keeping warm for `w` seconds. */
export function keepWarmCost(gaps: readonly number[], w: number, coldStartSeconds: number): number {
  let cost = 0;
  for (const g of gaps) cost += g <= w ? g : w + COLD_START_COST_FACTOR * coldStartSeconds;
  return cost;
}

export function keepWarmWindow(setting: 'auto' | number, gaps: readonly number[], coldStartSeconds: number): KeepWarmWindow {
  if (setting !== 'auto') return { seconds: setting, source: 'fixed' };
  if (gaps.length < MIN_GAPS_TO_LEARN) return { seconds: coldStartSeconds, source: 'break-even' };
  // The cheapest window is 0 or one of the seen gaps (cost is piecewise linear between them).
  let best = 0;
  let bestCost = keepWarmCost(gaps, 0, coldStartSeconds);
  for (const g of [...gaps].sort((a, b) => a - b)) {
    const cost = keepWarmCost(gaps, g, coldStartSeconds);
    if (cost < bestCost - 1e-9) {
      best = g;
      bestCost = cost;
    }
  }
  return { seconds: best, source: 'learned' };
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

export function appendBounded(list: readonly number[] | undefined, value: number, max: number): number[] {
  const next = [...(list ?? []), value];
  return next.length > max ? next.slice(next.length - max) : next;
}
