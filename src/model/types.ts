// Inputs and outputs of the scaling model. The model is pure: time comes in as nowMs.
import type { ScalingConfig } from '../trigger/types.ts';

/** What the sources of one trigger say now, summed over its sources. */
export interface Signals {
  /** B: messages waiting, summed over the trigger's queue sources. */
  readonly backlog: number;
  /** λ: messages arriving per second (smoothed), when known. */
  readonly arrivalRatePerSecond?: number;
  /** Messages served per second by the whole fleet (smoothed), when known. */
  readonly serviceRatePerSecond?: number;
  /** Replicas the brokers see consuming (consumers / group members), when known. */
  readonly consumers?: number;
  /** G: busy GPU-equivalents, when the trigger has a GPU source. */
  readonly busyGpus?: number;
  /** u*: target busy share per GPU (GPU source). */
  readonly gpuTargetUtilization?: number;
  /** Busy GPU-equivalents above which the workload counts as active (GPU source). */
  readonly gpuActivationThreshold?: number;
  /** Replicas beyond this cannot help (Kafka partitions). */
  readonly replicaCap?: number;
}

/** Per-trigger memory the model keeps between calls. Owned and updated by the model only. */
export interface TriggerHistory {
  /** Last time (ms) the trigger had work (backlog above activation, or busy GPUs). */
  readonly lastWorkAtMs?: number;
  /** Start (ms) of the current idle period, if idle now. */
  readonly idleSinceMs?: number;
  /** Lengths (s) of recent idle gaps that ended with new work, newest last. */
  readonly idleGapsSeconds: readonly number[];
  /** Desired replicas of the previous decision, and when it was made. */
  readonly lastDesiredReplicas?: number;
  readonly lastDecisionAtMs?: number;
  /** Model-specific extra state (kept opaque to the server). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

export type DemandTerm = 'backlog' | 'gpu' | 'minReplicas' | 'maxReplicas' | 'replicaCap';

export interface Explanation {
  readonly signals: Signals;
  /** Replica demand computed by each term before bounds. */
  readonly demands: Readonly<Partial<Record<'backlog' | 'gpu', number>>>;
  /** The term that fixed the final count. */
  readonly winner: DemandTerm;
  /** Why active is what it is, in words. */
  readonly activeReason: string;
  /** Extra model figures (projected backlog, keep-warm window, ...). */
  readonly details: Readonly<Record<string, number | string | boolean>>;
}

export interface Decision {
  /** D: the replica count the HPA should land on while active. */
  readonly desiredReplicas: number;
  readonly active: boolean;
  readonly explanation: Explanation;
}

export interface ModelInput {
  readonly signals: Signals;
  readonly scaling: ScalingConfig;
  readonly history: TriggerHistory;
  readonly nowMs: number;
}

export interface ModelOutput {
  readonly decision: Decision;
  readonly history: TriggerHistory;
}
