// The replica count for a steady arrival rate, by Erlang C (M/M/c): with c slots, offered load
// a = λ·S (slot-seconds per second) and mean service time S,
//   P(wait > t) = C(c, a) · exp(−(c − a)·t / S).
// Each replica costs a GPU-second per second; each request waiting past the objective costs
// lateRequestCost. A long objective against short requests lets the fleet run hot (c close to a);
// a short one against long requests buys the square-root margin, as far as it pays.

/** P(wait > t) with c slots (1 when c <= a: the queue grows without end). */
export function lateProbability(c: number, a: number, serviceSeconds: number, objectiveSeconds: number): number {
  if (!(a > 0)) return 0;
  if (c <= a) return 1;
  // Erlang B by its recursion, B(i) = a·B(i−1) / (i + a·B(i−1)); then C = c·B / (c − a·(1 − B)).
  let b = 1;
  for (let i = 1; i <= c; i++) b = (a * b) / (i + a * b);
  const waitProbability = (c * b) / (c - a * (1 - b));
  return Math.min(1, waitProbability * Math.exp((-(c - a) * objectiveSeconds) / serviceSeconds));
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
 * replica-second against the late requests it prevents.
 */
export function pricedReplicas(load: SteadyLoad, limit = 10_000): number {
  const { arrivalRate: lambda, serviceSeconds: S, slotsPerReplica: k, objectiveSeconds: T } = load;
  if (!(lambda * S > 0)) return 0;
  const lateRate = (n: number) => lambda * lateProbability(n * k, lambda * S, S, T);
  let best = Math.max(1, Math.floor((lambda * S) / k) + 1);
  let bestCost = best + load.lateRequestCost * lateRate(best);
  for (let n = best + 1; n <= limit; n++) {
    const cost = n + load.lateRequestCost * lateRate(n);
    if (cost >= bestCost) break;
    best = n;
    bestCost = cost;
  }
  return best;
}
