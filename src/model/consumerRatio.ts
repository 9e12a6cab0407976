// Whether the queues' consumers say each replica opens more of them than the trigger's
// consumersPerReplica says (a channel per worker thread, read as one replica each): the model then
// sizes for a fleet several times too large, and learns nothing that tells it so (docs/model.md,
// "Several consumers a replica": 4 a replica untold, 0 of the 33 rows of the bar). Said, not
// corrected: another trigger of the ScaledObject, its minReplicaCount or another deployment on the
// queue hold more consumers too, and only the user knows which. Pure.
//
// Read where the fleet is what the trigger asked for: at moments its ask is near the largest of
// the last ASK_PEAK_WINDOW_MS (an HPA keeps the largest recommendation of its scale-down
// stabilization window, 300 s by default), none of the replicas asked for is still starting, and
// the consumers have not fallen within the window (a fleet still shrinking). There, as many
// consumers a replica as the trigger says read at most 1 / PEAK_SHARE times the replicas asked; k
// times as many read about k times them. The ratio's logarithm is averaged over about RATIO_TAU_SECONDS of
// such moments, and said once it has stayed at HINT_RATIO or more for HINT_AFTER_SECONDS of them
// in a row. Measured in the simulator (docs/model.md, "Several consumers a replica").
import { slidingMax, within } from './marks.ts';
import type { ConsumerRatio, ReplicaMark } from './types.ts';

/** The longest an HPA keeps a larger recommendation (its default scale-down stabilization). */
export const ASK_PEAK_WINDOW_MS = 300_000;
/**
 * How near the window's largest ask one must be to be read (the fleet kept for the largest is at
 * most 1.5 times it, under HINT_RATIO).
 */
const PEAK_SHARE = 2 / 3;
/** The average's time constant, in seconds read at a peak. */
const RATIO_TAU_SECONDS = 300;
/** Seconds read in a row with the average at HINT_RATIO or more before it is said. */
export const HINT_AFTER_SECONDS = 600;
/** Consumers a replica asked, over what the trigger says, from which it is said. */
const HINT_RATIO = 1.75;
/** A step's weight is at most a minute's: a silence is no evidence. */
const MAX_STEP_SECONDS = 60;
/** The ratio a record may hold, as log2: a million consumers a replica, or a millionth (historySchema). */
export const MAX_RATIO_LOG2 = 20;

export interface ConsumerReading {
  /** The asks that can still be the largest of the window (marks.ts slidingMax). */
  readonly askPeaks: readonly ReplicaMark[];
  readonly ratio: ConsumerRatio | undefined;
  /** The consumersPerReplica the readings say, when they say a larger one than the trigger's. */
  readonly suggested: number | undefined;
}

/** What one decision reads the consumers against. */
export interface ConsumerMoment {
  /** The consumers read as replicas (over the trigger's consumersPerReplica, `perReplica`), if reported. */
  readonly replicas: number | undefined;
  /** Those of the previous decision. */
  readonly before: number | undefined;
  /** The replicas the last answer asked for. */
  readonly asked: number;
  /** Whether some of them are still starting. */
  readonly starting: boolean;
  readonly perReplica: number;
}

/** One decision's reading, from the history's `askPeaks` and `ratio`. */
export function readConsumers(
  { replicas, before, asked, starting, perReplica }: ConsumerMoment,
  askPeaks: readonly ReplicaMark[],
  ratio: ConsumerRatio | undefined,
  nowMs: number,
  dtSeconds: number,
): ConsumerReading {
  // SQS reports no consumers (RabbitMQ its consumers, Kafka its group's members): nothing to read.
  if (replicas === undefined) return { askPeaks, ratio, suggested: undefined };
  // An ask of 0 is never the window's largest while another is in it, and is read as nothing: not
  // kept, so a trigger at zero keeps no list.
  const peaks =
    asked > 0
      ? slidingMax(askPeaks, { atMs: nowMs, replicas: asked }, ASK_PEAK_WINDOW_MS)
      : within(askPeaks, nowMs, ASK_PEAK_WINDOW_MS);
  // A fall of the consumers is a fleet still shrinking: an HPA whose behavior gives replicas back
  // more slowly than its window (a Pods policy of one a minute) keeps more than the ask for longer
  // (found by review: 2 suggested of one consumer a replica, 14 pods kept for an ask of 2). The
  // run of moments above the ratio is broken too. A fall dated after now (a clock stepped back)
  // counts from now.
  let fellAtMs = ratio?.fellAtMs === undefined ? undefined : Math.min(ratio.fellAtMs, nowMs);
  let aboveSeconds = ratio?.aboveSeconds ?? 0;
  if (before !== undefined && replicas < before) {
    fellAtMs = nowMs;
    aboveSeconds = 0;
  }
  const settled = fellAtMs === undefined || nowMs - fellAtMs >= ASK_PEAK_WINDOW_MS;
  // Near the window's largest ask, the fleet an HPA keeps is at most 1 / PEAK_SHARE times it; with
  // none still starting, the consumers are the fleet's whole.
  const atPeak = asked >= PEAK_SHARE * (peaks[0]?.replicas ?? 0);
  let log2 = ratio?.log2 ?? 0;
  if (asked >= 1 && atPeak && settled && !starting && dtSeconds > 0) {
    const step = Math.min(dtSeconds, MAX_STEP_SECONDS);
    // Half a replica at the least: none up yet reads as a small ratio, not minus infinity; within
    // what a record holds (a broker's count past a million a replica is not kept as one).
    const x = Math.min(MAX_RATIO_LOG2, Math.max(-MAX_RATIO_LOG2, Math.log2(Math.max(replicas, 0.5) / asked)));
    log2 += (1 - Math.exp(-step / RATIO_TAU_SECONDS)) * (x - log2);
    // Seconds in a row with the moment and the average at the ratio or above: the average alone
    // stays above for minutes after the moments fall under it (found by review: a fleet held 600 s
    // by a longer stabilization window, then 1 a replica, was said 2 a replica).
    const above = 2 ** x >= HINT_RATIO && 2 ** log2 >= HINT_RATIO;
    aboveSeconds = above ? Math.min(HINT_AFTER_SECONDS, aboveSeconds + step) : 0;
  }
  const next: ConsumerRatio | undefined =
    ratio === undefined && log2 === 0 && fellAtMs === undefined
      ? undefined
      : { log2, aboveSeconds, ...(fellAtMs !== undefined && { fellAtMs }) };
  // The average too: a record from elsewhere (another version, garbage the schema passed) may hold a
  // full count beside a ratio under HINT_RATIO (found by review: "set consumersPerReplica to 0").
  const said = aboveSeconds >= HINT_AFTER_SECONDS && 2 ** log2 >= HINT_RATIO;
  return { askPeaks: peaks, ratio: next, suggested: said ? Math.round(perReplica * 2 ** log2) : undefined };
}
