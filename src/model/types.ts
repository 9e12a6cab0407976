// Inputs and outputs of the scaling model. The model is pure: time comes in as nowMs.
import type { ScalingConfig } from '../trigger/types.ts';
import type { ArrivalMark, BacklogRises, RateMark, RiseWatch } from './arrivals.ts';
import type { Burst } from './bursts.ts';

/** A counter basis is a short fingerprint (kafkaLag.ts): longer ones, from another writer, are refused. */
export const MAX_COUNTER_BASIS_CHARS = 256;

/** The most marks a history keeps in one list of asks or demands within a cold start (the schema's bound too). */
export const MAX_MARKS = 64;

/** What the sources of one trigger say now, summed over its sources. */
export interface Signals {
  /** B: messages waiting, summed over the trigger's queue sources (uncommittedServed left out). */
  readonly backlog: number;
  /**
   * Messages the sources' backlogs counted that their consumers had served and not yet committed
   * (Kafka's lag, kafka.commitIntervalSeconds): estimated, and left out of the backlog; whether the
   * workload is active reads them too.
   */
  readonly uncommittedServed?: number;
  /** W: messages not yet handed to a consumer, when every queue source tells them apart from in-flight ones. */
  readonly waiting?: number;
  /** I: messages handed to consumers and not yet acknowledged, when every queue source reports them. */
  readonly inFlight?: number;
  /**
   * Of the waiting ones, those that wait inside a replica: prefetched by its consumer past its
   * concurrency (concurrencyPerReplica), or all it holds when it acknowledges before the work
   * (acknowledgement; service.ts). Set by the model, not by a source.
   */
  readonly prefetched?: number;
  /** λ: messages arriving per second (smoothed), when known. */
  readonly arrivalRatePerSecond?: number;
  /** Messages served per second by the whole fleet (smoothed), when known. */
  readonly serviceRatePerSecond?: number;
  /** Messages that arrived so far (cumulative counter summed over sources), when every source counts them. */
  readonly arrivedTotal?: number;
  /** Queues or partitions arrivedTotal sums, each served in arrival order, when every source says (SourceReading.orderedQueues). */
  readonly orderedQueues?: number;
  /** Messages served so far (cumulative counter summed over sources), when every source counts them. */
  readonly servedTotal?: number;
  /** What the counters count, where a source says (SourceReading.counterBasis): another basis, and they do not compare. */
  readonly counterBasis?: string;
  /**
   * Whether every queue source counts the messages in service in its backlog (in flight apart and
   * in it, or inside its lag: Kafka), so that what the replicas hold is sized; absent without a
   * queue source.
   */
  readonly inServiceCounted?: boolean;
  /** Replicas the brokers see consuming (consumers / group members), when known. */
  readonly consumers?: number;
  /**
   * G: busy GPU-equivalents, when the trigger has a GPU source whose query matched series (a lower
   * bound when gpuSourcesWithoutSeries is set).
   */
  readonly busyGpus?: number;
  /** GPU sources whose query matched no series: nothing read there, which is not idle GPUs. */
  readonly gpuSourcesWithoutSeries?: number;
  /** u*: target busy share per GPU (GPU source). */
  readonly gpuTargetUtilization?: number;
  /** Busy GPU-equivalents above which the workload counts as active (GPU source). */
  readonly gpuActivationThreshold?: number;
  /** Replicas beyond this cannot help (Kafka partitions). */
  readonly replicaCap?: number;
}

/** A replica level the demand stopped asking for: how long until it asked again, and how many levels. */
export interface Dip {
  readonly seconds: number;
  readonly replicas: number;
}

/** A replica count at a moment: what the model asked for, or a busy period's peak. */
export interface ReplicaMark {
  readonly atMs: number;
  readonly replicas: number;
}

/** An ask of the last HPA sync taken back within the HPA's tolerance (coldStart.ts, trackAsks). */
export interface RetractedAsk {
  /** When it was first made. */
  readonly atMs: number;
  /** Replicas taken back. */
  readonly replicas: number;
  readonly retractedAtMs: number;
}

/** Since when the fleet has been saturated with the same consumers, and the served counter then. */
interface BusyStretch {
  readonly startMs: number;
  readonly servedTotal: number;
  readonly consumers: number;
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
  /** Whether the previous decision was active (an inactive trigger's fleet is at zero). */
  readonly lastActive?: boolean;
  /** Whether μ was known at the previous decision. */
  readonly lastThroughputKnown?: boolean;
  /** Since μ became known, while demands guessed before it are still held: when, and the waiting backlog then. */
  readonly heldGuesses?: { readonly atMs: number; readonly waiting: number };
  /** Replicas added by recent decisions (within one cold start): they are still starting. */
  readonly recentAsks?: readonly ReplicaMark[];
  /** Unheld backlog/GPU demand of recent decisions that can still be the largest within one cold start (oldest first, strictly decreasing), for the scale-down hold. */
  readonly recentDemands?: readonly ReplicaMark[];
  /** Recent dips of that demand, for the hold's length (hold.ts; newest last). */
  readonly holdDips?: readonly Dip[];
  /** λ averaged over about 100 arrivals: what the steady fleet is sized for. */
  readonly steadyArrivalRatePerSecond?: number;
  /** Samples of the 30 s rate over the last 40 s, for its trend (oldest first). */
  readonly rateTrail?: readonly RateMark[];
  /** The rise of the 30 s rate being watched, and the share of recent ones that lasted a cold start. */
  readonly riseWatch?: RiseWatch;
  /** Little's law evidence: message-seconds in flight and messages served (decayed). */
  readonly serviceEvidence?: {
    readonly occupancySeconds: number;
    readonly served: number;
    readonly averagingSeconds: number;
    /** Seconds of readings behind it, up to the longest averaging window. */
    readonly spanSeconds: number;
  };
  /** k learned: messages one replica holds while messages wait. */
  readonly slotsPerReplica?: number;
  /** Until when replicas that left may still hold messages the brokers count on the rest (no sample raises k). */
  readonly drainingUntilMs?: number;
  /** In-flight count and served counter at the previous decision. */
  readonly lastInFlight?: number;
  readonly lastServedTotal?: number;
  /** μ learned from the brokers (messages per second per replica) while the fleet was busy. */
  readonly learnedThroughputPerReplica?: number;
  /** Evidence behind it: messages served and replica-seconds spent while saturated (decayed). */
  readonly throughputEvidence?: { readonly served: number; readonly replicaSeconds: number };
  /** The current stretch of saturated fleet, for the next throughput sample. */
  readonly busyStretch?: BusyStretch;
  /** Without in-flight counts, the minute being summed for Little's law on the whole backlog: its start, backlog-seconds and the served counter then. */
  readonly backlogMinute?: { readonly startMs: number; readonly backlogSeconds: number; readonly servedTotal: number };
  /** Backlog-seconds over messages served of recent minutes (newest last): each at least S (service.ts). */
  readonly backlogSecondsPerServed?: readonly number[];
  /** The backlog's rises summed, the arrival count of a source that has none (arrivals.ts). */
  readonly backlogRises?: BacklogRises;
  /** Arrival counter samples over the last objective, for the arrivals within it (oldest first). */
  readonly arrivalMarks?: readonly ArrivalMark[];
  /** Arrivals in the first C − T seconds of the busy periods that ended the gaps (the newest gap's may be pending). */
  readonly gapHeads?: readonly number[];
  /** The busy period whose head is being counted: when it began and the arrival counter then. */
  readonly headStart?: { readonly atMs: number; readonly total: number };
  /** The burst being watched, and recent ones (bursts.ts). */
  readonly burstEpisode?: Burst;
  readonly bursts?: readonly Burst[];
  /** Peak demand of the current busy period, and of recent finished ones (newest last). */
  readonly busyPeakReplicas?: number;
  readonly busyPeaks?: readonly number[];
  /** The most messages the queue held during the current busy period, and the last busy periods' (keep-warm). */
  readonly busyPeakBacklog?: number;
  readonly busyBacklogPeaks?: readonly number[];
  /** With coldStartSeconds auto: replicas asked for and not serving yet (oldest first), and seconds from ask to serving of recent ones (newest last) (coldStart.ts). */
  readonly pendingStarts?: readonly ReplicaMark[];
  readonly coldStartSamples?: readonly number[];
  /** An ask of the last HPA sync taken back within its tolerance (coldStart.ts, trackAsks). */
  readonly retractedStart?: RetractedAsk;
  /** With in-flight counts, consumers and a served counter, the minute being summed for the concurrency (service.ts, detectConcurrency): its start, the served counter then, message-seconds in flight and consumer-seconds. */
  readonly occupancyMinute?: {
    readonly startMs: number;
    readonly servedTotal: number;
    readonly inFlightSeconds: number;
    readonly consumerSeconds: number;
  };
  /** Recent minutes' Little's S, served per consumer-second and in flight per consumer (newest last). */
  readonly occupancyMinutes?: readonly OccupancyMinute[];
  /** The ready count (brokers' consumers) at the previous decision, when the brokers report it. */
  readonly lastReady?: number;
  /** The counters' basis at the previous decision (Signals.counterBasis). */
  readonly counterBasis?: string;
  /** The asks that can still be the largest of the last 5 minutes (consumerRatio.ts; oldest first, strictly decreasing). */
  readonly askPeaks?: readonly ReplicaMark[];
  /** The consumers read against the replicas asked, at those peaks (consumerRatio.ts). */
  readonly consumerRatio?: ConsumerRatio;
}

/** The consumers read against the replicas asked (consumerRatio.ts). */
export interface ConsumerRatio {
  /** log2 of their ratio, averaged over the moments read (0 before any). */
  readonly log2: number;
  /** Seconds read in a row with the average at the hint's ratio or above. */
  readonly aboveSeconds: number;
  /** When the consumers last fell (the fleet shrinking): moments within the window after are not read. */
  readonly fellAtMs?: number;
}

/** Every term that can fix the desired count, in the order the explanation lists them. */
export const DEMAND_TERMS = ['backlog', 'gpu', 'burst', 'hold', 'prewarm', 'minReplicas', 'maxReplicas', 'replicaCap'] as const;
/** The terms that demand replicas; the others are the bounds applied after them. */
export const DEMAND_SOURCES = ['backlog', 'gpu', 'burst', 'hold', 'prewarm'] as const satisfies readonly DemandTerm[];
export type Demands = Partial<Record<(typeof DEMAND_SOURCES)[number], number>>;
export type DemandTerm = (typeof DEMAND_TERMS)[number];

interface Explanation {
  readonly signals: Signals;
  /** Replica demand computed by each term before bounds. */
  readonly demands: Readonly<Demands>;
  /** The term that fixed the final count. */
  readonly winner: DemandTerm;
  /** Why active is what it is, in words. */
  readonly activeReason: string;
  /** Extra model figures (projected backlog, keep-warm window, ...). */
  readonly details: Readonly<Record<string, number | string | boolean>>;
}

/** A minute of in-flight readings, summed (service.ts, detectConcurrency). */
interface OccupancyMinute {
  readonly serviceSeconds: number;
  readonly servedPerConsumer: number;
  readonly inFlightPerConsumer: number;
}

export interface Decision {
  /** D: the replica count the HPA should land on while active. */
  readonly desiredReplicas: number;
  readonly active: boolean;
  readonly explanation: Explanation;
}

/** The workload as another trigger of its ScaledObject last answered for it (the one before an edit). */
export interface Workload {
  readonly active: boolean;
  /** The replicas it asked for. */
  readonly replicas: number;
}

export interface ModelInput {
  readonly signals: Signals;
  readonly scaling: ScalingConfig;
  readonly history: TriggerHistory;
  readonly nowMs: number;
  /**
   * For a trigger with no answer of its own whose GPU query matched no series: whether the workload
   * runs, and on how many replicas (gpuSeries.ts). A fact of the workload, not of the trigger.
   */
  readonly workload?: Workload;
}

export interface ModelOutput {
  readonly decision: Decision;
  readonly history: TriggerHistory;
}
