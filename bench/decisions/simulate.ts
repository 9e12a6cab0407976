// The discrete-event loop: replays a trace into a Fleet under one policy, all in simulated time,
// and reports what it cost and how long requests waited.
import { firstAbove } from '../../src/model/coldStart.ts';
import { EventQueue } from './eventQueue.ts';
import { type Ack, Fleet, type NodeBilling } from './fleet.ts';
import { lognormal, lognormalFromP50P99, rng } from './random.ts';
import { CONCURRENCY, type Trace } from './traces.ts';

/** A cold start's distribution: lognormal, by its median and 99th percentile (seconds). */
export interface ColdStartSpec {
  readonly p50: number;
  readonly p99: number;
}
/** Model loads in production: p50 about 23 s, p99 about 52 s (Alibaba GenAI cluster trace). */
export const PRODUCTION_COLD_START: ColdStartSpec = { p50: 23, p99: 52 };
/** Default latency objective: the share of requests that waited longer is reported. */
const OBJECTIVE_S = 60;
/** Simulated time after the last arrival, so that every policy gets to scale down. */
const TAIL_S = 600;
export const MAX_REPLICAS = 20;

export interface SimContext {
  readonly fleet: Fleet;
  readonly trace: Trace;
  readonly endS: number;
  readonly seed: number;
  now(): number;
  at(atS: number, run: () => void | Promise<void>): void;
  /** Repeats `run` every `everyS` from `firstS` until the end. */
  every(firstS: number, everyS: number, run: () => void | Promise<void>): void;
  /** Draws a cold start (same seed, same sequence for every policy). */
  coldStart(): number;
}

export interface Policy {
  readonly name: string;
  /** One line on how it is configured, for the report. */
  readonly setup: string;
  start(ctx: SimContext): void | Promise<void>;
}

export interface Result {
  readonly trace: string;
  readonly policy: string;
  readonly gpuSeconds: number;
  readonly coldStarts: number;
  readonly waitP50: number;
  readonly waitP95: number;
  readonly waitP99: number;
  /** lateRequests over requests, to 4 decimals (for the reader: verdicts compare the counts). */
  readonly overObjectiveShare: number;
  /** Requests that waited past the objective. */
  readonly lateRequests: number;
  /** Requests served. */
  readonly requests: number;
  /** The late requests by when they arrived: the largest runs of them, in time order. */
  readonly lateEpisodes?: readonly LateEpisode[];
}

/** Late requests that arrived within LATE_EPISODE_GAP_S of one another. */
export interface LateEpisode {
  readonly fromS: number;
  readonly toS: number;
  readonly requests: number;
}

/** Late arrivals further apart than this start another episode. */
export const LATE_EPISODE_GAP_S = 60;
/** Episodes a result keeps: the largest. */
export const LATE_EPISODES_KEPT = 5;

/** Draws cold starts: at least 5 s, at most 120 s or twice the p99. */
export function coldStartSampler(seed: number, spec: ColdStartSpec = PRODUCTION_COLD_START): () => number {
  const random = rng(seed ^ 0x9e3779b9);
  const { mu, sigma } = lognormalFromP50P99(spec.p50, spec.p99);
  const cap = Math.max(120, 2 * spec.p99);
  return () => Math.min(cap, Math.max(5, lognormal(random, mu, sigma)));
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** What one run cost, and every request's wait (sorted): a Result for any objective. */
export interface Outcome {
  readonly trace: string;
  readonly policy: string;
  readonly gpuSeconds: number;
  readonly coldStarts: number;
  readonly waits: Float64Array;
  /** Each request's arrival and wait, in the order they started (not sorted); absent, no episodes are told. */
  readonly started?: { readonly arrivals: readonly number[]; readonly waits: readonly number[] };
}

export async function simulate(trace: Trace, policy: Policy, seed: number, objectiveS = OBJECTIVE_S): Promise<Result> {
  return summarize(await run(trace, policy, seed), objectiveS);
}

export function summarize(outcome: Outcome, objectiveS: number): Result {
  const { waits } = outcome;
  const late = waits.length - firstAbove(waits, objectiveS);
  return {
    trace: outcome.trace,
    policy: outcome.policy,
    gpuSeconds: outcome.gpuSeconds,
    coldStarts: outcome.coldStarts,
    waitP50: round(percentile(waits, 50)),
    waitP95: round(percentile(waits, 95)),
    waitP99: round(percentile(waits, 99)),
    overObjectiveShare: round(waits.length === 0 ? 0 : late / waits.length, 4),
    lateRequests: late,
    requests: waits.length,
    ...(late > 0 && outcome.started !== undefined && { lateEpisodes: lateEpisodes(lateArrivals(outcome.started, objectiveS)) }),
  };
}

/** When the requests that waited past `objectiveS` arrived. */
function lateArrivals({ arrivals, waits }: NonNullable<Outcome['started']>, objectiveS: number): number[] {
  const late: number[] = [];
  for (let i = 0; i < waits.length; i++) if (waits[i]! > objectiveS) late.push(arrivals[i]!);
  return late;
}

/** The largest runs of late arrivals (each a gap of at most LATE_EPISODE_GAP_S), in time order. */
export function lateEpisodes(arrivals: readonly number[]): LateEpisode[] {
  const sorted = Float64Array.from(arrivals).sort();
  const runs: LateEpisode[] = [];
  let from = 0;
  for (let i = 1; i <= sorted.length; i++) {
    if (i < sorted.length && sorted[i]! - sorted[i - 1]! <= LATE_EPISODE_GAP_S) continue;
    runs.push({ fromS: Math.floor(sorted[from]!), toS: Math.ceil(sorted[i - 1]!), requests: i - from });
    from = i;
  }
  return runs
    .toSorted((a, b) => b.requests - a.requests || a.fromS - b.fromS)
    .slice(0, LATE_EPISODES_KEPT)
    .sort((a, b) => a.fromS - b.fromS);
}

/** Replays `trace` under `policy`, on replicas that serve `slots` requests at once and take `prefetch` from the queue, acknowledged `ack` the work. */
export async function run(
  trace: Trace,
  policy: Policy,
  seed: number,
  coldStarts: ColdStartSpec = PRODUCTION_COLD_START,
  slots: number = CONCURRENCY,
  prefetch: number = slots,
  ack: Ack = 'after',
  nodes?: NodeBilling,
): Promise<Outcome> {
  const queue = new EventQueue<() => void | Promise<void>>();
  let now = 0;
  const at = (atS: number, run: () => void | Promise<void>) => queue.push(atS, run);
  const fleet = new Fleet(slots, { at }, prefetch, ack, nodes);
  const lastArrival = trace.requests.at(-1)?.arrivalS ?? 0;
  const endS = lastArrival + TAIL_S;
  const coldStart = coldStartSampler(seed, coldStarts);
  for (const r of trace.requests) at(r.arrivalS, () => fleet.arrive(r.arrivalS, r));
  const ctx: SimContext = {
    fleet,
    trace,
    endS,
    seed,
    now: () => now,
    at,
    every(firstS, everyS, run) {
      const tick = async () => {
        await run();
        if (now + everyS <= endS) at(now + everyS, tick);
      };
      at(firstS, tick);
    },
    coldStart,
  };
  await policy.start(ctx);
  for (let e = queue.pop(); e !== undefined && e.atS <= endS; e = queue.pop()) {
    now = e.atS;
    await e.event();
  }
  now = endS;
  fleet.close(endS);
  return {
    trace: trace.name,
    policy: policy.name,
    gpuSeconds: Math.round(fleet.gpuSeconds),
    coldStarts: fleet.coldStarts,
    waits: Float64Array.from(fleet.waits).sort(),
    started: { arrivals: fleet.waitArrivals, waits: fleet.waits },
  };
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
