// The cold start C, learned from what the model asked for and when the brokers saw it serving.
// Pure: the caller keeps the state.
//
// Each rise of the ready count (the brokers' consumers) is matched to the oldest replicas asked for
// and not yet serving; the time between is one sample of what a replica asked for now takes to
// serve: KEDA's and the HPA's reaction, the pod's start and the model's load, all of it. Asks the
// model takes back before they serve are dropped (newest first). A ready replica nobody asked for
// (a restarted pod, minReplicaCount) gives no sample. C is a high quantile of the recent samples,
// as docs/model.md advises a user who sets it by hand: the model plans with it that a replica asked
// for now serves within C, and one that takes longer leaves requests late.
import type { ScalingConfig } from '../trigger/types.ts';
import { ceilSafe } from './snap.ts';
import type { ReplicaMark, RetractedAsk } from './types.ts';

/** How C is set: seconds, or auto, learned from coldStartPriorSeconds. */
export type ColdStartSetting = Pick<ScalingConfig, 'coldStartSeconds' | 'coldStartPriorSeconds'>;

/** Samples remembered (newest last); C moves from the prior to their quantile as they fill. */
const MAX_SAMPLES = 20;
/**
 * Samples one reading's rise may add. Cold starts spread by about a third of their median, so the
 * replicas of one ask come ready over several readings; a rise of many in one reading is consumers
 * that left for a moment and came back (a broker restarted, a proxy reset), or a process paused
 * past its asks, matched to an ask the dip itself made or an old one: alone, it replaced the whole
 * window (C from 45 s to 5 s; after a pause of 9 minutes, to 540 s). A quarter of the window stays
 * a minority the quantile and the outlier bound see through.
 */
const MAX_SAMPLES_PER_RISE = MAX_SAMPLES / 4;
/** Asks remembered while waiting to serve: older ones are served, or never will be. */
const MAX_PENDING = 32;
/** An ask older than this starts nothing any more (a cap below the model's ask, a quota): dropped. */
const MAX_PENDING_AGE_MS = 30 * 60_000;
/** Samples above this multiple of their median are not cold starts (a pod restart matched to a stale ask). */
const OUTLIER_FACTOR = 4;
/** The HPA leaves its target alone while desired/current is within 1 ± this (its default). */
const HPA_TOLERANCE = 0.1;
/** Seconds between the HPA's reads of the metric (its default sync period): what it acts on next. */
export const HPA_SYNC_SECONDS = 15;

/**
 * The fewest replicas the HPA adds to a fleet of n: one, or what leaves its tolerance (a rise to
 * within 1 + HPA_TOLERANCE of n starts nothing, as trackAsks counts it).
 */
export function hpaStep(n: number): number {
  return Math.floor(HPA_TOLERANCE * n) + 1;
}

/** The replicas an ask of `asked` starts on a target of `target`: those past it when it leaves the HPA's tolerance, else none. */
function startedBy(asked: number, target: number): number {
  return asked > target && (target === 0 || asked > target * (1 + HPA_TOLERANCE)) ? asked - target : 0;
}
/** The quantile of the samples C is: nineteen in twenty replicas serve within it. */
const COLD_START_QUANTILE = 0.95;
/**
 * Samples the prior counts as for the mean cold start: a mean settles within a few samples (cold
 * starts spread by about a third of their median), where the 95th percentile needs the 20.
 */
const MEAN_PRIOR_SAMPLES = 2;

export interface ColdStartState {
  /** Replicas asked for and not serving yet, oldest first. */
  readonly pending: readonly ReplicaMark[];
  /** Seconds from ask to serving of recent replicas, newest last. */
  readonly samples: readonly number[];
}

/**
 * Matches a rise of the ready count from `before` to `ready` to the oldest pending asks: one
 * sample per whole replica matched. Unchanged state when nothing rose.
 */
export function observeReady(state: ColdStartState, before: number | undefined, ready: number, nowMs: number): ColdStartState {
  let rise = before === undefined ? 0 : ready - before;
  if (rise <= 0 || state.pending.length === 0) return state;
  const pending = [...state.pending];
  const samples = [...state.samples];
  let room = MAX_SAMPLES_PER_RISE;
  while (rise > 0 && pending.length > 0) {
    const oldest = pending[0]!;
    const matched = Math.min(rise, oldest.replicas);
    // Whole replicas: a replica counted in its consumers (consumersPerReplica) rises a channel at a
    // time, and a sample a channel moved C four times too fast (found by review).
    const added = Math.min(ceilSafe(oldest.replicas) - ceilSafe(oldest.replicas - matched), room);
    for (let i = 0; i < added; i++) samples.push(Math.max(0, (nowMs - oldest.atMs) / 1000));
    room -= added;
    rise -= matched;
    if (matched === oldest.replicas) pending.shift();
    else pending[0] = { atMs: oldest.atMs, replicas: oldest.replicas - matched };
  }
  return { pending, samples: samples.slice(-MAX_SAMPLES) };
}

/**
 * The pending asks after a decision that asks for `asked` replicas with `ready` serving, after
 * one that asked for `previousAsk` (a mark is for no more than the rise of the ask). The HPA's
 * target is the ready replicas and the pending ones; it moves only when the ask leaves its
 * tolerance (10 % either way, the HPA's default), so an ask within it starts nothing and is no
 * mark (it would be matched, minutes later, to a replica a larger ask started). Above: a mark for
 * the replicas beyond the target. Below: the newest dropped (the HPA removes pods not ready first);
 * within the tolerance, the marks younger than one HPA sync beyond what the ask now would start:
 * the HPA reads the metric once a sync and stream checks decide every second, so an ask taken back
 * that soon may never have been read (kept, one waited 91 s for a replica a later ask started, and
 * C read 91 s for an hour). Such an ask is remembered (`retracted`) for one sync: asked again
 * within it, its mark is dated from when it was first made, so an ask that flickers across the
 * tolerance for minutes, surely read, is not dated anew at every flicker (found by review: C
 * learned 45 s short).
 */
export function trackAsks(
  marks: readonly ReplicaMark[],
  ready: number,
  asked: number,
  nowMs: number,
  retracted?: RetractedAsk,
  previousAsk = 0,
): AskMarks {
  const syncMs = HPA_SYNC_SECONDS * 1000;
  const recent = retracted !== undefined && nowMs - retracted.retractedAtMs < syncMs ? retracted : undefined;
  const stale = marks.length > 0 && nowMs - marks[0]!.atMs > MAX_PENDING_AGE_MS;
  const pending = stale ? marks.filter((mark) => nowMs - mark.atMs <= MAX_PENDING_AGE_MS) : marks;
  let waiting = 0;
  for (const mark of pending) waiting += mark.replicas;
  const target = ready + waiting;
  // No more than the model asks beyond its last ask: a consumer that reconnects, or replicas a
  // quota holds back, leave the ask where it was. Marked by ready and pending alone, the dip of a
  // reconnect was a new ask of a replica, its return a sample of seconds, and C fell from 40 s to
  // 5 s in an hour; an ask never served was dated anew once it expired, and C rose to 20 minutes
  // (found by review).
  const started = Math.min(
    startedBy(asked, target),
    previousAsk > 0 ? Math.max(0, asked - previousAsk) : Number.POSITIVE_INFINITY,
  );
  if (started > 0) {
    const again = Math.min(recent?.replicas ?? 0, started);
    // Asked again within a sync of being taken back: dated from when it was first made.
    const added = again > 0 ? [{ atMs: recent!.atMs, replicas: again }] : [];
    if (started > again) added.push({ atMs: nowMs, replicas: started - again });
    return { pending: [...pending, ...added].slice(-MAX_PENDING) };
  }
  if (asked >= target || waiting === 0) return { pending, retracted: recent };
  // Below the tolerance the HPA removes the newest down to the ask; within it, the asks of the last
  // sync keep only what the ask now would start from the ready and older pending replicas.
  let keep = Math.max(0, asked - ready);
  let taken: RetractedAsk | undefined;
  if (!(asked < target * (1 - HPA_TOLERANCE))) {
    const young = pending.findIndex((mark) => nowMs - mark.atMs < syncMs);
    if (young < 0) return { pending, retracted: recent };
    let older = 0;
    for (let i = 0; i < young; i++) older += pending[i]!.replicas;
    const youngKept = startedBy(asked, ready + older);
    keep = older + youngKept;
    if (keep >= waiting) return { pending, retracted: recent };
    taken = {
      atMs: Math.min(recent?.atMs ?? Number.POSITIVE_INFINITY, pending[young]!.atMs),
      replicas: Math.max(recent?.replicas ?? 0, waiting - older - youngKept),
      retractedAtMs: nowMs,
    };
  }
  const kept: ReplicaMark[] = [];
  for (const mark of pending) {
    if (keep === 0) break;
    const n = Math.min(keep, mark.replicas);
    kept.push(n === mark.replicas ? mark : { atMs: mark.atMs, replicas: n });
    keep -= n;
  }
  return { pending: kept, retracted: taken };
}

/** trackAsks' result: the pending asks, and an ask taken back within the last sync, if any. */
export interface AskMarks {
  readonly pending: readonly ReplicaMark[];
  readonly retracted?: RetractedAsk;
}

export interface ColdStart {
  readonly seconds: number;
  readonly source: 'configured' | 'learned' | 'default';
}

/**
 * C: the configured seconds; else the quantile of the samples, weighed against the prior
 * (`coldStartPriorSeconds`: what C is while nothing has been seen) by how full the sample list is
 * (a few samples from one scale-up say little about the tail). Samples above OUTLIER_FACTOR times
 * their median are left out of the quantile.
 */
export function coldStartSeconds(
  { coldStartSeconds: setting, coldStartPriorSeconds: prior }: ColdStartSetting,
  samples: readonly number[],
): ColdStart {
  if (setting !== 'auto') return { seconds: setting, source: 'configured' };
  if (samples.length === 0) return { seconds: prior, source: 'default' };
  const seconds = weighed(samples, prior, (kept) => sortedQuantile(kept, COLD_START_QUANTILE));
  return { seconds, source: 'learned' };
}

/**
 * What a cold start costs on average, in GPU-seconds of a replica loading: the configured C (no
 * more is known), else the mean of the samples, moved from the prior as if it were
 * MEAN_PRIOR_SAMPLES samples. Keep-warm's price of a wake that leaves nobody late (decide.ts).
 */
export function meanColdStartSeconds(
  { coldStartSeconds: setting, coldStartPriorSeconds: prior }: ColdStartSetting,
  samples: readonly number[],
): number {
  if (setting !== 'auto') return setting;
  let sum = prior * MEAN_PRIOR_SAMPLES;
  for (const x of samples) sum += x;
  return sum / (samples.length + MEAN_PRIOR_SAMPLES);
}

/**
 * A statistic of the samples (sorted, outliers left out) moved from the prior by how full the
 * sample list is: a few samples from one scale-up say little about the tail. Samples above
 * OUTLIER_FACTOR times their median are not cold starts.
 */
function weighed(samples: readonly number[], prior: number, statistic: (kept: readonly number[]) => number): number {
  return prior + sampleWeight(samples) * (statistic(keptSamples(samples)) - prior);
}

/**
 * How far the samples move a statistic from the prior: by how full their list is, all the way from
 * MAX_SAMPLES. Never past it: a record of another writer's with more (the store's schema takes up to
 * 64) moved C past its samples, to −100 s for 64 samples of 10 s and a prior of 60 (found by review).
 */
function sampleWeight(samples: readonly number[]): number {
  return Math.min(1, samples.length / MAX_SAMPLES);
}

/** The samples sorted, those above OUTLIER_FACTOR times their median left out. */
function keptSamples(samples: readonly number[]): readonly number[] {
  // Sorted once: the median, the outliers (at its end) and the statistic all read the same list.
  const sorted = [...samples].sort((a, b) => a - b);
  const limit = OUTLIER_FACTOR * sortedQuantile(sorted, 0.5);
  return sorted.at(-1)! > limit ? sorted.filter((x) => x <= limit) : sorted;
}

/**
 * The share of a burst's requests past its warm replicas left late, for those that arrived
 * `offsetSeconds` after the burst began (bursts.ts, lateWith): the replicas asked for them serve a
 * cold start c after the ask and start them evenly over the next HPA sync period H (the asks a
 * growing queue makes land a sync apart, and what waits meanwhile drains), so of those a share
 * clamp((c + H − T − offset) / H, 0, 1) starts more than T after it arrived. Averaged over the
 * samples, weighed against the prior as C is; a configured C or the prior, a bound on the whole
 * reaction (docs/model.md, "Choosing the parameters"), counts them all late when it is longer than
 * T + offset, else none.
 */
export function excessLateShare(
  { coldStartSeconds: setting, coldStartPriorSeconds: priorSeconds }: ColdStartSetting,
  samples: readonly number[],
  objectiveSeconds: number,
): (offsetSeconds: number) => number {
  const bound = setting === 'auto' ? priorSeconds : setting;
  const prior = (offset: number) => (bound > objectiveSeconds + offset ? 1 : 0);
  if (setting !== 'auto' || samples.length === 0) return prior;
  const kept = keptSamples(samples);
  const weight = sampleWeight(samples);
  // Prefix sums: a share is then two binary searches (the floor's search asks for hundreds a decision).
  const sums = [0];
  for (const c of kept) sums.push(sums.at(-1)! + c);
  return (offset) => {
    // Samples up to `from` start all of it in time, those from `from + H` on none of it.
    const from = objectiveSeconds + offset - HPA_SYNC_SECONDS;
    const lo = firstAbove(kept, from);
    const hi = firstAbove(kept, from + HPA_SYNC_SECONDS - 1e-9);
    const late = kept.length - hi + (sums[hi]! - sums[lo]! - from * (hi - lo)) / HPA_SYNC_SECONDS;
    const p = prior(offset);
    return p + weight * (late / kept.length - p);
  };
}

/** The index of the first of `sorted` above `x` (its length when none is). */
export function firstAbove(sorted: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The q-quantile of a non-empty list, linearly interpolated between order statistics. */
export function quantile(list: readonly number[], q: number): number {
  return sortedQuantile(
    [...list].sort((a, b) => a - b),
    q,
  );
}

/** quantile() of a list already in ascending order. */
function sortedQuantile(sorted: readonly number[], q: number): number {
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}
