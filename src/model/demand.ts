// D_backlog: the replicas the queue needs, from the fleet's capacity, the arrival rate and the
// objective T. A replica asked for now serves only after the cold start C.
//
// Fluid queue. A fleet of N replicas of k slots serves N·μ messages per second; a request queued
// behind Q others starts once Q slots are free: the idle ones (N·k less the a = λ·S in service) at
// once, then one per completion. It starts within T when
//   Q + a <= N·(k + μ·T).
// A fleet short of λ lets the queue grow, and the soonest a correction lands is one cold start
// away, so it must also hold then: Q + λ·C <= N·μ·(T + C). Q is the waiting backlog now (for the
// replicas to keep) and projected to when a replica asked for now would serve, with the fleet
// running and starting (for the ones to add): W' = W + λ·C − μ·(ready·C + Σ_starting (C − time
// left to start)). On top of Q, the arrivals' noise: z standard deviations over C (all of it in the
// second condition), less what the fleet serves beyond λ meanwhile: the replicas kept serve
// throughout, and a random walk with that drift piles up only so far (pileUp); the ones to add find
// the noise over C less the fleet's spare capacity then (a W' below zero).
// The replicas to keep, and those to add, are judged too by what each served over the current
// saturated stretch (the same consumers, every slot busy), when that is below μ: the request mix
// turned longer, and μ, averaged over minutes, still says the fleet keeps up.
// Messages a replica's consumer prefetched past its concurrency, or holds unacknowledged when it
// acknowledges before the work (signals.prefetched), wait behind that replica's requests, not the
// fleet's: one long request holds them all. While any do, the two conditions give the queue T less
// one service time (at least T / 2).
// The fleet may thus run on its queue, as long as no request waits past T: with an objective
// longer than the cold start, a fleet a replica short of λ for a while costs less than one a
// replica long. With a shorter one the steady fleet is Erlang C's, priced (capacity.ts), and a
// smaller one only where the queue's whole course says nobody waits past T before the replicas
// asked at the next decision serve (onQueue.ts), when decide.ts allows it.
// Without μ: KEDA's rule, ceil(B / messagesPerReplica).
import type { ScalingConfig } from '../trigger/types.ts';
import { pricedReplicas } from './capacity.ts';
import { HPA_SYNC_SECONDS, hpaStep } from './coldStart.ts';
import { ceilSafe, floorSafe } from './snap.ts';
import { landings, longestWait } from './onQueue.ts';
import { risen } from './arrivals.ts';
import type { Service } from './service.ts';
import { DEMAND_SOURCES, type DemandTerm, type Demands, type ReplicaMark, type Signals } from './types.ts';

/** Standard deviations of the arrivals over a cold start that the queue is sized to absorb. */
const ARRIVAL_NOISE_SD = 2;

export type Details = Record<string, number | string | boolean>;

export interface FleetView {
  readonly ready: number;
  /** Seconds each starting replica still needs before it serves. */
  readonly startingSecondsLeft: readonly number[];
}

/** Ready replicas (brokers' consumers when known) and the starting ones the model asked for. */
export function fleetView(
  signals: Signals,
  askedFleet: number,
  asks: readonly ReplicaMark[],
  coldStartSeconds: number,
  nowMs: number,
): FleetView {
  const asked = asks.reduce((n, a) => n + a.replicas, 0);
  // A replica with some of its consumers up (consumersPerReplica) is no longer starting.
  const starting =
    signals.consumers !== undefined ? Math.max(0, askedFleet - ceilSafe(signals.consumers)) : Math.min(askedFleet, asked);
  const ready = signals.consumers ?? askedFleet - starting;
  const left: number[] = [];
  for (const ask of [...asks].reverse()) {
    for (let i = 0; i < ask.replicas && left.length < starting; i++) {
      left.push(Math.max(0, (ask.atMs - nowMs) / 1000 + coldStartSeconds));
    }
  }
  // Starting replicas older than any remembered ask are late: count no help from them.
  while (left.length < starting) left.push(coldStartSeconds);
  return { ready, startingSecondsLeft: left };
}

/**
 * Whether messages wait for a slot: some waiting, or where the backlog counts the messages in
 * service too (Kafka's lag), more of it than the ready replicas' slots.
 */
export function queueStands(signals: Signals, slotsPerReplica: number, ready: number): boolean {
  return signals.waiting !== undefined ? signals.waiting > 0 : signals.backlog > slotsPerReplica * ready;
}

/** The fleet may run on its queue (onQueue.ts): how old the queue's head is, when known. */
interface OnQueue {
  readonly headAgeSeconds: number | undefined;
}

interface RateView {
  /** The 30 s average. */
  readonly fast: number | undefined;
  /** Averaged over about 100 arrivals (arrivals.ts). */
  readonly steady: number | undefined;
}

/**
 * D_backlog, with the figures behind it in `details` (none when it is undefined: a demand asked
 * again under other terms), for the objective T (`drainSeconds` unless told).
 */
export function backlogDemand(...args: Parameters<typeof fluidDemand>): number {
  const [, scaling, , , , , details] = args;
  return computedDemand(fluidDemand(...args), 'backlog', scaling.maxReplicas, details);
}

/** backlogDemand before a demand it could not compute is read as maxReplicas. */
function fluidDemand(
  signals: Signals,
  scaling: ScalingConfig,
  service: Service,
  fleet: FleetView,
  rates: RateView,
  coldStartSeconds: number,
  details: Details | undefined,
  objectiveSeconds = scaling.drainSeconds,
  onQueue?: OnQueue,
): number {
  const backlog = Math.max(0, signals.backlog);
  const mu = service.throughputPerReplica;
  if (mu === undefined || !(mu > 0)) {
    if (details !== undefined) details.rule = 'ceil(B / messagesPerReplica): no throughput known yet';
    return ceilSafe(backlog / scaling.messagesPerReplica);
  }
  const C = coldStartSeconds;
  const T = objectiveSeconds;
  const fast = Math.max(0, rates.fast ?? 0);
  const steady = Math.max(0, rates.steady ?? fast);
  // The 30 s average when it rises above the steady one by more than its noise, else the steady one.
  const lambda = risen(fast, steady) ? fast : steady;
  // Messages in a replica's hands are being served: only the waiting ones queue.
  const waiting = Math.max(0, signals.waiting ?? backlog);
  const k = service.slotsPerReplica;
  const S = service.serviceSeconds ?? k / mu;
  const fleetSize = fleet.ready + fleet.startingSecondsLeft.length;
  // While a full round of slots' worth of messages waits, every ready slot is busy and the
  // brokers' served rate is what the ready fleet does. Below μ·ready (μ learned from the first,
  // shortest completions, or the mix turned longer) the queue drains slower than μ says: project
  // with the served rate. It lags a fleet that just grew, which errs toward more replicas.
  const observed = signals.serviceRatePerSecond;
  const drained =
    waiting >= k * fleet.ready && observed !== undefined && observed > 0
      ? Math.min(mu * fleet.ready, observed)
      : mu * fleet.ready;
  const servedInHorizon = drained * C + mu * fleet.startingSecondsLeft.reduce((s, left) => s + Math.max(0, C - left), 0);
  const projected = waiting + lambda * C - servedInHorizon;

  const noise = ARRIVAL_NOISE_SD * Math.sqrt(lambda * C);
  const measured = service.saturatedPerReplica;
  const servedPerReplica = measured !== undefined && measured < mu ? measured : undefined;
  // Replicas serving m per second each (a request k / m seconds): by μ, and by the stretch's rate
  // when it is lower.
  const perReplica = servedPerReplica === undefined ? [mu] : [mu, servedPerReplica];
  // The slower of them, what the checks of one rate below plan on.
  const slowest = servedPerReplica ?? mu;
  const secondsAt = (m: number) => (m === mu ? S : k / m);
  // The two conditions, as replicas, for `queued` waiting and a margin on top of it: started
  // within T, and drained within T after C.
  const budget = (signals.prefetched ?? 0) > 0 ? Math.max(T / 2, T - S) : T;
  const startedWithinT = (queued: number, margin: number, m: number) =>
    (queued + lambda * secondsAt(m) + margin) / (k + m * budget);
  const drainedAfterC = (queued: number, margin: number, m: number) => (queued + margin + lambda * C) / (m * (budget + C));
  const need = (queued: number, margin: number) =>
    Math.max(...perReplica.map((m) => Math.max(startedWithinT(queued, margin, m), drainedAfterC(queued, margin, m))));
  // The replicas to keep serve through the cold start: what the arrivals' noise piles up while
  // they do depends on how far their rate is above λ (pileUp). The fewest that fit, at most the
  // fleet there is and as many as the whole noise on top of the queue asks for.
  const fits = (n: number) =>
    perReplica.every(
      (m) => startedWithinT(waiting, pileUp(noise, lambda, n * m - lambda, C), m) <= n && drainedAfterC(waiting, noise, m) <= n,
    );
  const most = Math.min(fleetSize, ceilSafe(need(waiting, noise)));
  let keep = ceilSafe(need(waiting, 0));
  while (keep < most && !fits(keep)) keep++;
  keep = Math.min(keep, most);
  // At T >= C the fleet may run on its queue, but while one stands it keeps the replicas λ keeps
  // busy: one given back then leaves the rest short of λ, and the queue grows until the second
  // condition asks for it again a cold start later, a cold start per turn of that cycle. A backlog
  // that counts the messages in service too (Kafka's lag) stands once it is past the ready slots
  // (queueStands).
  const stands = queueStands(signals, k, fleet.ready);
  const busyAtRate = T >= C && stands ? Math.min(fleetSize, floorSafe(steady / mu)) : 0;
  if (busyAtRate > keep) {
    keep = busyAtRate;
    if (details !== undefined) details.keptBusyAtArrivalRate = busyAtRate;
  }
  // The ones to add serve after C, with the queue projected there; the noise over C is what the
  // fleet's spare capacity over C (a negative projection) does not absorb.
  const add = ceilSafe(need(Math.max(0, projected + noise), 0));
  const rate =
    T < C
      ? pricedReplicas(
          {
            arrivalRate: steady,
            serviceSeconds: S,
            slotsPerReplica: k,
            objectiveSeconds: T,
            lateRequestCost: scaling.lateRequestCost,
          },
          scaling.maxReplicas,
        )
      : 0;
  // The messages waiting now start within T of now at the latest (the youngest of them arrived by
  // now): each replica ready now starts k at once and μ a second through T, one starting does from
  // when it is up, and one asked now only from C on; where the budget (T, less what waits inside
  // the replicas) outlasts C. The conditions above size the queue at C as if its messages had just
  // arrived.
  let forWaiting = 0;
  if (budget > C && waiting > 0) {
    let capacity = fleet.ready * (k + slowest * budget);
    for (const left of fleet.startingSecondsLeft) capacity += k + slowest * Math.max(0, budget - left);
    const short = waiting - capacity;
    if (short > 0) forWaiting = fleetSize + ceilSafe(short / (k + slowest * (budget - C)));
    if (details !== undefined && forWaiting > 0) details.waitingStartedWithinT = forWaiting;
  }
  const steadyFleet = Math.max(rate, keep, add, forWaiting);
  // On the queue (when decide.ts allows it, T < C): the fewest replicas below that whose longest
  // wait stays within T until the correction the next decision asks for serves: the smallest step
  // the HPA takes (a replica, or past its tolerance), and no fewer than it needs to keep up with λ
  // (the queue left at the horizon then drains). None fewer than the fleet while a queue stands
  // (one given back then would be asked for again at once), and a rise at least such a step. The
  // wait only shortens as replicas are added: searched by halves.
  let onQueueFleet: number | undefined;
  let onQueueWait = 0;
  if (onQueue !== undefined && T < C && lambda > 0 && steadyFleet > 1) {
    const view = {
      waiting,
      headAgeSeconds: onQueue.headAgeSeconds ?? waiting / lambda,
      arrivalRate: lambda,
      perReplica: slowest,
    };
    const limit = Math.min(steadyFleet, scaling.maxReplicas, signals.replicaCap ?? Number.POSITIVE_INFINITY);
    const step = (n: number) => Math.min(hpaStep(n), limit - n);
    // The replicas λ keeps busy: the fleet with the correction must be more.
    const busy = floorSafe(lambda / slowest);
    let low = Math.max(stands ? fleetSize : 1, 1, busy + 1 - step(busy));
    let high = limit - 1;
    if (low <= high) {
      const starting = [...fleet.startingSecondsLeft].sort((a, b) => a - b);
      const lands = landings(fleet.ready, starting, C, high);
      const horizon = C + HPA_SYNC_SECONDS;
      const waitWith = (n: number) => longestWait(view, lands, n, horizon, step(n), ARRIVAL_NOISE_SD);
      let wait = waitWith(high);
      if (wait <= T) {
        // high passes: the fewest that pass lie in [low, high].
        while (low < high) {
          const mid = Math.floor((low + high) / 2);
          const w = waitWith(mid);
          if (w <= T) {
            high = mid;
            wait = w;
          } else low = mid + 1;
        }
        onQueueFleet = high > fleetSize ? Math.max(high, Math.min(limit, fleetSize + hpaStep(fleetSize))) : high;
        onQueueWait = wait;
      }
    }
    if (onQueueFleet !== undefined && onQueueFleet >= steadyFleet) onQueueFleet = undefined;
  }
  // A message waiting needs a replica: a need below 1e-9 a replica (an objective of days) is not
  // float noise to snap to 0 (found by fuzzing).
  const demand = waiting > 0 ? Math.max(1, onQueueFleet ?? steadyFleet) : (onQueueFleet ?? steadyFleet);
  if (details === undefined) return demand;
  Object.assign(details, {
    rule:
      onQueueFleet !== undefined
        ? 'on the queue: the longest wait within T until the replicas asked next serve'
        : rate >= Math.max(keep, add) && rate > 0
          ? 'Erlang C, priced: the steady fleet for λ'
          : add > keep
            ? 'fluid queue: W′ within T after a cold start'
            : 'fluid queue: W within T',
    arrivalRatePerSecond: round(lambda),
    steadyArrivalRatePerSecond: round(steady),
    waiting: round(waiting),
    projectedBacklog: round(projected),
    noiseMessages: round(noise),
    keptNoiseMessages: round(pileUp(noise, lambda, keep * mu - lambda, C)),
    serviceSeconds: round(S),
    slotsPerReplica: round(k),
    readyReplicas: fleet.ready,
    readyServedPerSecond: round(drained),
    startingReplicas: fleet.startingSecondsLeft.length,
  });
  if (servedPerReplica !== undefined) details.servedPerReadyReplica = round(servedPerReplica);
  if (budget < T) details.queueBudgetSeconds = round(budget);
  if (T < C) details.rateReplicas = rate;
  if (onQueueFleet !== undefined) {
    details.onQueueReplicas = onQueueFleet;
    details.longestWaitSeconds = round(onQueueWait);
  }
  return demand;
}

/**
 * How far the arrivals' noise can pile a queue up over the cold start C while the fleet serves
 * `spare` messages per second beyond λ: z standard deviations of the arrivals over t, less
 * spare·t, peak at z²λ / (4·spare) (at t = z²λ / (4·spare²)) or at C if that comes first. A fleet
 * with no spare rate gathers all of it (`noise`, z of them over C).
 */
export function pileUp(noise: number, lambda: number, spare: number, C: number): number {
  if (!(spare > 0)) return noise;
  const z2 = ARRIVAL_NOISE_SD * ARRIVAL_NOISE_SD;
  const peakAt = (z2 * lambda) / (4 * spare * spare);
  return peakAt < C ? (z2 * lambda) / (4 * spare) : noise - spare * C;
}

/** Three decimals, or three significant digits under 1: a rate of one request an hour (0.000278 a second) is not 0 (found by review). */
export function round(x: number): number {
  if (Math.abs(x) >= 1 || x === 0 || !Number.isFinite(x)) return Math.round(x * 1000) / 1000;
  // Arithmetic, not toPrecision: its string cost 15 times as much on the decision path (found by review).
  const scale = 10 ** (2 - Math.floor(Math.log10(Math.abs(x))));
  return Math.round(x * scale) / scale;
}

/**
 * A demand the model could not compute (NaN) asks for maxReplicas, and `details.uncomputedDemand`
 * says which: never dropped, as the largest-demand rule drops a NaN, which left the fleet at
 * minReplicas with a queue waiting, and wrote the NaN into the history the store then refused.
 */
function computedDemand(value: number, term: DemandTerm, maxReplicas: number, details: Details | undefined): number {
  if (!Number.isNaN(value)) return value;
  if (details !== undefined) details.uncomputedDemand = term;
  return maxReplicas;
}

/** computedDemand for every term of `demands`: the same object when each was computed. */
export function computedDemands<D extends Demands>(demands: D, maxReplicas: number, details: Details): D {
  let out: D | undefined;
  for (const term of DEMAND_SOURCES) {
    const value = demands[term];
    if (value === undefined || !Number.isNaN(value)) continue;
    out ??= { ...demands };
    out[term] = computedDemand(value, term, maxReplicas, details);
  }
  return out ?? demands;
}
