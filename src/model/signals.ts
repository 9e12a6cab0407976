// How the readings of a trigger's sources add up to one set of signals. Pure.
//   Queue sources: backlogs add; a count (waiting, in flight, arrived, served), a rate or a replica
//   cap adds only when every queue source reports it (a partial sum would look smaller than the
//   truth); consumers are the largest any source sees (the same replicas consume every queue).
//   Their counters' bases join into one (another basis, and the summed counters do not compare).
//   A source whose consumers commit every so often (Kafka, commitIntervalSeconds) counts in its
//   backlog what they served since: up to its served rate times the interval (none while the group
//   has no members), left out of the backlog and said apart (uncommittedServed).
//   Whether they see the messages in service: each counts them in its backlog.
//   GPU sources: busy GPU-equivalents add; the first GPU source's target and activation apply. A GPU
//   source whose query matched no series adds nothing and is counted in gpuSourcesWithoutSeries:
//   the sum is then a lower bound, absent when no GPU source was read (gpuSeries.ts says when the
//   trigger can still be answered).
import type { Signals } from './types.ts';

/** One source's reading with the rates estimated for its identity (rates.ts). */
export interface SourceSignals {
  readonly kind: 'queue' | 'gpu';
  readonly backlog: number;
  readonly waiting?: number;
  readonly inFlight?: number;
  /** false where the source's formula leaves the in-flight messages out of its backlog (scaleOnInFlight, excludeUnacknowledged): not what a reading's numbers say, which flickered with the count (found by review). */
  readonly inFlightInBacklog?: false;
  readonly arrivedTotal?: number;
  readonly orderedQueues?: number;
  readonly servedTotal?: number;
  readonly counterBasis?: string;
  readonly consumers?: number;
  readonly replicaCap?: number;
  /** Seconds between its consumers' commits (Kafka: kafka.commitIntervalSeconds), when above 0. */
  readonly commitIntervalSeconds?: number;
  readonly arrivalRatePerSecond?: number;
  readonly serviceRatePerSecond?: number;
  readonly busyGpus?: number;
  /** GPU source: the query matched no series (busyGpus absent). */
  readonly noSeries?: boolean;
  readonly gpuTargetUtilization?: number;
  readonly gpuActivationThreshold?: number;
}

type Summed =
  | 'waiting'
  | 'inFlight'
  | 'arrivedTotal'
  | 'orderedQueues'
  | 'servedTotal'
  | 'replicaCap'
  | 'arrivalRatePerSecond'
  | 'serviceRatePerSecond';
const SUMMED: readonly Summed[] = [
  'waiting',
  'inFlight',
  'arrivedTotal',
  'orderedQueues',
  'servedTotal',
  'replicaCap',
  'arrivalRatePerSecond',
  'serviceRatePerSecond',
];

/** The backlog with what its consumers served and have not committed: all of it is work until it is. */
export function wholeBacklog(signals: Signals): number {
  return signals.backlog + (signals.uncommittedServed ?? 0);
}

export function sumSignals(sources: readonly SourceSignals[]): Signals {
  const out: { -readonly [K in keyof Signals]: Signals[K] } = { backlog: 0 };
  const queues = sources.filter((s) => s.kind === 'queue');
  // In the backlog: in flight apart and counted in it (RabbitMQ's management API, SQS with
  // scaleOnInFlight), or no waiting count apart (Kafka's lag). Not a passive declare's ready
  // messages, nor a backlog the settings leave them out of (excludeUnacknowledged, scaleOnInFlight
  // false: SQS never learns μ, and KEDA's rule on its backlog sees none of them; found by review).
  if (queues.length > 0)
    out.inServiceCounted = queues.every((s) =>
      s.inFlight !== undefined ? s.inFlightInBacklog !== false : s.waiting === undefined,
    );
  for (const s of queues) {
    // The top of a consumer's sawtooth, not its middle: taking half out, a busy period's served
    // rate read as a saturated fleet at each peak, and learned μ far too low (the diurnal trace at
    // 60 s: 30,001 GPU-s against 18,392 with commits at each message, 19,645 taking it all out).
    // A group with no members holds nothing uncommitted: what a consumer that left served and did
    // not commit is served again, and a served rate then is one that lingers after the pods went,
    // or a partition without a commit whose log end counts as served (found by review: 250 of a
    // lag of 256 left out, and the wake asked for 2 replicas instead of 52).
    const uncommitted =
      s.commitIntervalSeconds !== undefined && s.serviceRatePerSecond !== undefined && s.consumers !== 0
        ? Math.min(Math.max(0, s.backlog), s.serviceRatePerSecond * s.commitIntervalSeconds)
        : 0;
    if (uncommitted > 0) out.uncommittedServed = (out.uncommittedServed ?? 0) + uncommitted;
    out.backlog += s.backlog - uncommitted;
    if (s.consumers !== undefined) out.consumers = Math.max(out.consumers ?? 0, s.consumers);
  }
  if (queues.length > 0) {
    for (const key of SUMMED) {
      let sum = 0;
      let all = true;
      for (const s of queues) {
        const v = s[key];
        if (v === undefined) {
          all = false;
          break;
        }
        sum += v;
      }
      if (all) out[key] = sum;
    }
  }
  // One basis for the summed counters: each queue's, in order (none for a queue whose basis holds).
  if (queues.some((s) => s.counterBasis !== undefined)) out.counterBasis = queues.map((s) => s.counterBasis ?? '').join('|');
  const gpus = sources.filter((s) => s.kind === 'gpu');
  if (gpus.length > 0) {
    const read = gpus.filter((s) => s.noSeries !== true);
    if (read.length > 0) out.busyGpus = read.reduce((sum, s) => sum + (s.busyGpus ?? 0), 0);
    if (read.length < gpus.length) out.gpuSourcesWithoutSeries = gpus.length - read.length;
    out.gpuTargetUtilization = gpus[0]!.gpuTargetUtilization;
    out.gpuActivationThreshold = gpus[0]!.gpuActivationThreshold;
  }
  return out;
}
