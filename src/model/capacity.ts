// The replica count for a steady arrival rate, by Erlang C (M/M/c): with c slots, offered load
// a = λ·S (slot-seconds per second) and mean service time S,
//   P(wait > t) = C(c, a) · exp(−(c − a)·t / S).
// Each replica costs a GPU-second per second; each request waiting past the objective costs
// lateRequestCost. A long objective against short requests lets the fleet run hot (c close to a);
// a short one against long requests buys the square-root margin, as far as it pays.

/**
 * Below the load by this many of its square roots, Erlang B is (a − i) / a to far better than
 * double precision once the recursion has run from there up to the load (each step scales an error
 * by about i / a: e^−800 over the stretch), so it starts there instead of at 0.
 */
const ERLANG_START_ROOTS = 40;

/** Offered loads (slot-seconds per second) past this are staffed by the square-root rule (pricedReplicas). */
const MAX_EXACT_LOAD = 1e8;

/**
 * Erlang B for c slots at offered load a, by its recursion B(i) = a·B(i−1) / (i + a·B(i−1)), from
 * B(`from`) = `b`. Past the load B falls faster than geometrically; once it is below 1e-18 the
 * wait it gives is nil at any rate a fleet sees, and the recursion stops. From 0, a large load's
 * starts 40 √a below it: the cost is about 50 √a steps, not a (a replica configured to take a
 * million messages, a thousand replicas of them: 10^9 steps took 8 s of the event loop).
 */
export function erlangB(c: number, a: number, from = 0, b = 1): number {
  if (from === 0) {
    const start = Math.floor(a - ERLANG_START_ROOTS * Math.sqrt(a));
    if (start > 0 && start < c) {
      from = start;
      b = (a - start) / a;
    }
  }
  for (let i = from + 1; i <= c; i++) {
    b = (a * b) / (i + a * b);
    if (i > a && b < 1e-18) return 0;
  }
  return b;
}

/** P(wait > t) with c slots, from Erlang B at c (1 when c <= a: the queue grows without end). */
function lateFromB(c: number, b: number, a: number, serviceSeconds: number, objectiveSeconds: number): number {
  if (!(a > 0)) return 0;
  if (c <= a) return 1;
  const waitProbability = (c * b) / (c - a * (1 - b));
  return Math.min(1, waitProbability * Math.exp((-(c - a) * objectiveSeconds) / serviceSeconds));
}

/** P(wait > t) with c slots (1 when c <= a: the queue grows without end). */
export function lateProbability(c: number, a: number, serviceSeconds: number, objectiveSeconds: number): number {
  return lateFromB(c, a > 0 && c > a ? erlangB(c, a) : 0, a, serviceSeconds, objectiveSeconds);
}

export interface SteadyLoad {
  /** λ, per second. */
  readonly arrivalRate: number;
  /** S, mean seconds a request holds a slot. */
  readonly serviceSeconds: number;
  /** k, slots per replica. */
  readonly slotsPerReplica: number;
  /** T. */
  readonly objectiveSeconds: number;
  /** GPU-seconds per request late. */
  readonly lateRequestCost: number;
}

/**
 * The stable replica count n (n·k > λ·S) that minimizes n + lateRequestCost · λ · P(wait > T): a
 * replica-second against the late requests it prevents. At most `limit` (maxReplicas) is priced:
 * a load that needs more gets its first stable count, which the bounds cut to the limit, with no
 * Erlang sums over slots nobody may run. Each count's B goes on from the one before, k steps.
 */
export function pricedReplicas(load: SteadyLoad, limit = 10_000): number {
  const { arrivalRate: lambda, serviceSeconds: S, slotsPerReplica: k, objectiveSeconds: T } = load;
  const a = lambda * S;
  if (!(a > 0)) return 0;
  // Whole slots: a learned k is an average (3.7 in flight per consumer), and the recursion steps a
  // slot at a time (chained from a fractional count it gave neither B at the count nor below it).
  const slots = (n: number) => Math.round(n * k);
  let best = Math.max(1, Math.floor(a / k) + 1);
  while (slots(best) <= a && best < limit) best++;
  if (best >= limit) return best;
  // A load no fleet carries (k or λ far past any replica's): square-root staffing at 3 roots, since
  // the sums, 50 √a steps, would hold the event loop for seconds (at 2^53, for ever).
  if (a > MAX_EXACT_LOAD) return Math.min(limit, Math.max(best, Math.ceil((a + 3 * Math.sqrt(a)) / k)));
  let b = erlangB(slots(best), a);
  let bestCost = best + load.lateRequestCost * lambda * lateFromB(slots(best), b, a, S, T);
  for (let n = best + 1; n <= limit; n++) {
    b = b === 0 ? 0 : erlangB(slots(n), a, slots(n - 1), b);
    const cost = n + load.lateRequestCost * lambda * lateFromB(slots(n), b, a, S, T);
    if (cost >= bestCost) break;
    best = n;
    bestCost = cost;
  }
  return best;
}
