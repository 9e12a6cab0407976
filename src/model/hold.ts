// The scale-down hold, learned. A replica the demand no longer asks for is kept for h seconds: if
// the demand wants it back within h, it was there; if not, it cost h and the next one costs a cold
// start C. With h = C (rent-or-buy's break-even) that is never worse than twice the best in
// hindsight, and it is what the hold is until enough dips are seen (but where the queue decides). A dip is the time a replica
// level spent not asked for: from the last decision that asked for it to the one that asks for it
// again, or past the window if none does (then longer than any hold that would pay). The hold
// picked is the one that would have cost least over the recent dips, each weighted by the replicas
// it left: 0 on periodic batches (the next one is minutes away, past C), about the noise's dips on
// steady traffic. decide.ts uses it at any T (with T < C a replica missing also leaves requests
// late, which the dips do not price: measured, they cost less than the holds), except at T ≥ C
// while a queue stands, where the fluid queue decides (QUEUE_DECIDES); and while a queue stands it
// keeps at least the replicas that start its oldest message within what is left of T: the fluid
// queue sizes a queue as if its messages had just arrived, and those of a drained burst waited
// already.
import { type ArrivalMark, queueHeadAgeSeconds } from './arrivals.ts';
import type { Dip, ReplicaMark, Signals } from './types.ts';

/** Dips remembered per trigger. */
export const MAX_DIPS = 32;
/** A dip past the window is recorded at least this long: past any hold for a cold start under an hour, whatever C is learned later. */
const LONG_DIP_SECONDS = 3600;
/** Fewer dips than this: hold for C. */
const MIN_DIPS_TO_LEARN = 3;

export interface Hold {
  readonly seconds: number;
  readonly source: 'cold start' | 'learned' | 'queue';
}

/** No hold while the fluid queue decides (decide.ts: T ≥ C and a queue stands). */
export const QUEUE_DECIDES: Hold = Object.freeze({ seconds: 0, source: 'queue' });

/**
 * The dips that end when the demand is `demand` at `nowMs`, read from the sliding maximum `marks`
 * before it is added (decide.ts slidingMax: replicas strictly decreasing, the last ones the previous
 * decision's, its demand and a prewarm). The levels between mark i and mark i + 1 were last asked
 * for at mark i: those up to `demand` come back now, after `nowMs − atMs`; those whose mark has left
 * the window are dips longer than it, recorded at twice its length and at least LONG_DIP_SECONDS.
 * Seconds are rounded to tenths (the record stays short).
 */
export function endedDips(marks: readonly ReplicaMark[], demand: number, nowMs: number, windowMs: number): Dip[] {
  const ended: Dip[] = [];
  const previousMs = marks.at(-1)?.atMs;
  for (let i = 0; i < marks.length - 1; i++) {
    const { atMs, replicas } = marks[i]!;
    // The previous decision's marks: its levels were asked for then, not left.
    if (atMs >= previousMs!) break;
    const below = marks[i + 1]!.replicas;
    // A mark up to CLOCK_STEP_BACK_MS ahead (another replica's clock) ends a dip of none, not a negative one.
    const ageMs = Math.max(0, nowMs - atMs);
    const back = Math.min(replicas, demand);
    if (ageMs >= windowMs) {
      // A record from elsewhere need not decrease: no dip of no levels.
      if (replicas > below)
        ended.push({ seconds: Math.max(LONG_DIP_SECONDS, Math.round(windowMs / 50) / 10), replicas: replicas - below });
    } else if (back > below) {
      ended.push({ seconds: Math.round(ageMs / 100) / 10, replicas: back - below });
    }
  }
  return ended;
}

/** Σ over the dips of replicas · (seconds <= h ? seconds : h + C): GPU-seconds a hold of h would have spent. */
export function holdCost(dips: readonly Dip[], holdSeconds: number, coldStartSeconds: number): number {
  let cost = 0;
  for (const { seconds, replicas } of dips)
    cost += replicas * (seconds <= holdSeconds ? seconds : holdSeconds + coldStartSeconds);
  return cost;
}

/**
 * The hold that would have cost least over `dips`, at most C: 0 or a dip's length (the cost is
 * piecewise linear between them), the longer one on a tie. C while fewer than MIN_DIPS_TO_LEARN.
 */
export function learnedHold(dips: readonly Dip[], coldStartSeconds: number): Hold {
  const C = coldStartSeconds;
  if (dips.length < MIN_DIPS_TO_LEARN) return { seconds: C, source: 'cold start' };
  // Candidates in no particular order (no array built: it runs on every decision that holds).
  let best = C;
  let bestCost = holdCost(dips, C, C);
  for (let i = -1; i < dips.length; i++) {
    const h = i < 0 ? 0 : dips[i]!.seconds;
    if (h >= C) continue;
    const cost = holdCost(dips, h, C);
    if (cost < bestCost - 1e-9 || (Math.abs(cost - bestCost) <= 1e-9 && h > best)) {
      best = h;
      bestCost = cost;
    }
  }
  return { seconds: best, source: 'learned' };
}

/**
 * The age of the oldest of `waiting` messages (arrivals.ts, queueHeadAgeSeconds), where the
 * counters date it: a broker's arrival counter (the backlog's rises count requeued messages as
 * new) over one queue or partition served in arrival order (over several, the waiting ones need
 * not be the last arrivals: a partition lagging behind one that takes the traffic), and marks no
 * later than now (written by a replica whose clock runs ahead, they would make it younger).
 */
export function queueHeadAge(
  signals: Signals,
  marks: readonly ArrivalMark[],
  waiting: number,
  nowMs: number,
): number | undefined {
  if (signals.arrivedTotal === undefined || signals.orderedQueues !== 1) return undefined;
  if (marks.some((m) => m.atMs > nowMs)) return undefined;
  return queueHeadAgeSeconds(marks, signals.arrivedTotal, waiting, nowMs);
}
