// Scale to zero only when it pays. Idle for t seconds costs t GPU-seconds; a cold start costs K,
// its C GPU-seconds of loading plus the waiting of the requests that arrive while it loads,
// weighted by the latency objective T (coldStartCost). From the idle gaps a trigger has seen,
// pick the keep-warm window that would have cost least (the rent-or-buy problem with a learned gap
// distribution); with too few gaps, keep warm for the ski-rental break-even K, which is never
// worse than twice the offline optimum. When gaps are regular (periodic batches), also say when
// to wake one cold start early.

/** Gaps remembered per trigger. */
export const MAX_GAPS = 32;
/** Fewer gaps than this: not enough to learn from. */
export const MIN_GAPS_TO_LEARN = 3;
/** Gaps count as regular when the last ones are this close to their median (relative). */
export const REGULAR_SPREAD = 0.15;
export const REGULAR_GAPS = 2;

/**
 * K: one cold start in GPU-second-equivalents. Loading costs C GPU-seconds. The requests that
 * arrive while it loads wait up to C, which is C/T objectives: that waiting is counted as C
 * GPU-seconds per objective's worth, and at least once, so
 *   K = C + C·max(1, C/T) = 2C + (C/T)·(C − T) when C > T.
 * Within the objective (C <= T) a cold start costs 2C; each second it exceeds the objective adds
 * C/T cold-start-seconds more, so a cold start that breaks a tight objective is dear.
 */
export function coldStartCost(coldStartSeconds: number, objectiveSeconds: number): number {
  const C = coldStartSeconds;
  return C + C * Math.max(1, objectiveSeconds > 0 ? C / objectiveSeconds : 1);
}

export interface KeepWarmWindow {
  readonly seconds: number;
  readonly source: 'fixed' | 'learned' | 'break-even';
}

/** Idle + cold-start cost over the seen gaps when keeping warm for `w` seconds; K from coldStartCost. */
export function keepWarmCost(gaps: readonly number[], w: number, coldStartCostSeconds: number): number {
  let cost = 0;
  for (const g of gaps) cost += g <= w ? g : w + coldStartCostSeconds;
  return cost;
}

/** How long to stay warm after the last work; K = coldStartCost(C, T). */
export function keepWarmWindow(setting: 'auto' | number, gaps: readonly number[], coldStartCostSeconds: number): KeepWarmWindow {
  if (setting !== 'auto') return { seconds: setting, source: 'fixed' };
  if (gaps.length < MIN_GAPS_TO_LEARN) return { seconds: coldStartCostSeconds, source: 'break-even' };
  // The cheapest window is 0 or one of the seen gaps (cost is piecewise linear between them).
  let best = 0;
  let bestCost = keepWarmCost(gaps, 0, coldStartCostSeconds);
  for (const g of [...gaps].sort((a, b) => a - b)) {
    const cost = keepWarmCost(gaps, g, coldStartCostSeconds);
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
