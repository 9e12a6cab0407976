// The scaling model: signals + trigger + history -> desired replicas, activity, explanation.
// Pure (no I/O, no clock): the server and the simulator call this same function.
import type { DemandTerm, ModelInput, ModelOutput, TriggerHistory } from './types.ts';

/** ceil that ignores float noise: 7 / 0.7 is 10.000000000000002, and must give 10, not 11. */
export function ceilSafe(x: number): number {
  const rounded = Math.round(x);
  return Math.abs(x - rounded) < 1e-9 ? rounded : Math.ceil(x);
}

export function emptyHistory(): TriggerHistory {
  return { idleGapsSeconds: [] };
}

export function decide({ signals, scaling, history, nowMs }: ModelInput): ModelOutput {
  const backlogDemand = ceilSafe(Math.max(0, signals.backlog) / scaling.messagesPerReplica);
  const demands: { backlog: number; gpu?: number } = { backlog: backlogDemand };
  let desired = backlogDemand;
  let winner: DemandTerm = 'backlog';
  if (signals.busyGpus !== undefined && signals.gpuTargetUtilization !== undefined) {
    demands.gpu = ceilSafe(Math.max(0, signals.busyGpus) / signals.gpuTargetUtilization);
    if (demands.gpu > desired) {
      desired = demands.gpu;
      winner = 'gpu';
    }
  }
  if (signals.replicaCap !== undefined && desired > signals.replicaCap) {
    desired = signals.replicaCap;
    winner = 'replicaCap';
  }
  if (desired > scaling.maxReplicas) {
    desired = scaling.maxReplicas;
    winner = 'maxReplicas';
  }
  if (desired < scaling.minReplicas) {
    desired = scaling.minReplicas;
    winner = 'minReplicas';
  }

  const backlogActive = signals.backlog > scaling.activationBacklog;
  const gpuActive = signals.busyGpus !== undefined && signals.busyGpus > (signals.gpuActivationThreshold ?? 0);
  const active = backlogActive || gpuActive;
  const activeReason = backlogActive
    ? `backlog ${signals.backlog} > activationBacklog ${scaling.activationBacklog}`
    : gpuActive
      ? `busy GPUs ${signals.busyGpus} > activation threshold ${signals.gpuActivationThreshold ?? 0}`
      : `backlog ${signals.backlog} <= activationBacklog ${scaling.activationBacklog}`;

  return {
    decision: {
      desiredReplicas: desired,
      active,
      explanation: { signals, demands, winner, activeReason, details: {} },
    },
    history: {
      ...history,
      lastWorkAtMs: active ? nowMs : history.lastWorkAtMs,
      lastDesiredReplicas: desired,
      lastDecisionAtMs: nowMs,
    },
  };
}
