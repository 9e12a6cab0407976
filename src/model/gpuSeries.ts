// What a GPU query that matched no series means. Pods that do not exist have no series, so a
// workload at zero reads none and that is no work; a running workload that reads none has lost
// its exporter or never matched it (a label typo), and its GPUs may be busy: reading that as
// idle would let KEDA scale a busy workload to zero. Pure.
import type { ScalingConfig } from '../trigger/types.ts';
import { wholeBacklog } from './signals.ts';
import type { Signals, TriggerHistory } from './types.ts';

/**
 * Whether the workload runs, as far as the scaler can tell: the trigger's last answer was active;
 * with none (a scaler that just started without a state store, or settings just edited into a new
 * trigger), the last answer of another trigger of its ScaledObject (`workloadActive`: the one
 * before the edit), else whether a queue of the trigger sees consumers or messages in flight (a
 * scaler restarted without a state store beside an SQS workload at work, which counts no consumers:
 * read as at zero, it was answered inactive and scaled to zero mid-request; found by review).
 */
export function workloadRuns(signals: Signals, history: TriggerHistory, workloadActive?: boolean): boolean {
  return history.lastActive ?? workloadActive ?? ((signals.consumers ?? 0) > 0 || (signals.inFlight ?? 0) > 0);
}

/**
 * Why the trigger cannot be answered now, or undefined when it can. It cannot when some GPU query
 * matched no series while the workload runs (workloadRuns) and nothing read shows work: no queue
 * backlog above activation, no GPUs read above their threshold. Work anywhere is an answer
 * (active, and the queue's demand: the missing GPUs lower nothing, decide.ts), and so is a
 * workload at zero (the last answer inactive, or none yet and no consumers seen: no pods, no
 * series).
 */
export function unanswerableWithoutGpuSeries(
  signals: Signals,
  scaling: ScalingConfig,
  history: TriggerHistory,
  workloadActive?: boolean,
): string | undefined {
  if (signals.gpuSourcesWithoutSeries === undefined) return undefined;
  if (!workloadRuns(signals, history, workloadActive)) return undefined;
  if (wholeBacklog(signals) > scaling.activationBacklog) return undefined;
  // Messages in flight are work the queue sees: active from them (decide.ts).
  if ((signals.inFlight ?? 0) > 0) return undefined;
  if (signals.busyGpus !== undefined && signals.busyGpus > (signals.gpuActivationThreshold ?? 0)) return undefined;
  const why =
    history.lastActive !== undefined
      ? 'the last answer was active'
      : workloadActive === true
        ? "no answer for this trigger yet, and the ScaledObject's last, before its settings were edited, was active"
        : `no answer of this scaler's before it, and ${signals.consumers ?? 0} consumer(s) on the trigger's queues`;
  return (
    `the GPU query matched no series while the workload is running (${why}) and no ` +
    'queue of the trigger has work: the GPU exporter may be gone, or gpu.query / gpu.namespace / gpu.podSelector ' +
    'may not match its series. Not read as idle GPUs, so KEDA keeps the workload (or uses its fallback) instead of scaling it to zero'
  );
}
