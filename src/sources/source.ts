// The contract every source meets: read one broker (or Prometheus) and report what it saw. A
// source knows nothing about scaling. Errors are the typed errors of ../errors.ts, never a 0.
import type { SourceConfig } from '../trigger/types.ts';

/** One reading of one source. Counters are cumulative; rates are per second. */
export interface SourceReading {
  /** Messages waiting, by the source's formula (0 for sources without a queue, e.g. GPU). */
  readonly backlog: number;
  /** Messages waiting for a consumer, when the broker tells them apart from in-flight ones. */
  readonly waiting?: number;
  /** Messages delivered to consumers and not yet acknowledged, when the broker reports them (counted in backlog or not). */
  readonly inFlight?: number;
  /** false where the source's formula leaves the in-flight messages out of the backlog (absent: counted in it). */
  readonly inFlightInBacklog?: false;
  /** Busy GPU-equivalents (GPU source only). */
  readonly busyGpus?: number;
  /**
   * The GPU query matched no series (GPU source with ignoreNullValues): nothing was read, which
   * is not the same as idle GPUs. busyGpus is absent; the engine decides what it means (engine.ts).
   */
  readonly noSeries?: boolean;
  /** Consumers the broker sees on the queue (RabbitMQ) or members of the group (Kafka). */
  readonly consumers?: number;
  /** Replicas beyond this count cannot help (Kafka partitions when idle consumers are not allowed). */
  readonly replicaCap?: number;
  /** Cumulative count of messages that arrived (e.g. sum of Kafka log-end offsets). */
  readonly arrivedTotal?: number;
  /**
   * Queues or partitions that count sums, each served in arrival order (a RabbitMQ queue: 1; Kafka:
   * its partitions): only with one are the waiting messages the last arrivals, which dates the
   * oldest of them (model/arrivals.ts, queueHeadAgeSeconds).
   */
  readonly orderedQueues?: number;
  /** Cumulative count of messages served (e.g. sum of Kafka committed offsets). */
  readonly servedTotal?: number;
  /**
   * What the counters count, where that can change (Kafka: the partitions summed; a group without
   * kafka.topic starts committing on another topic): counters of readings with different bases do
   * not compare, a jump between them is no arrivals.
   */
  readonly counterBasis?: string;
  /** Arrival rate as the broker reports it (RabbitMQ management publish rate). */
  readonly arrivalRatePerSecond?: number;
  /** Service rate as the broker reports it (RabbitMQ management ack/deliver rate). */
  readonly serviceRatePerSecond?: number;
}

export interface Source {
  /** Cache identity: equal for every trigger that names the same thing with the same credentials. */
  readonly identity: string;
  /** Safe to log and to use in errors (no credentials). */
  readonly label: string;
  readonly kind: SourceConfig['kind'];
  /** One query. Must honour `signal` (the cache aborts it on timeout). */
  read(signal: AbortSignal): Promise<SourceReading>;
}

/** Creates sources of one kind and owns their shared connections. */
export interface SourceDriver<C extends SourceConfig = SourceConfig> {
  readonly kind: C['kind'];
  /** Same identity for configs that read the same thing. */
  identity(config: C): string;
  create(config: C): Source;
  /** Closes the connections no read has used for `idleMs`. */
  closeIdle(idleMs: number): Promise<void>;
  /** Closes every connection the driver holds. */
  close(): Promise<void>;
}

/** A driver whose module is imported when the first trigger of its kind is evaluated. */
export interface LazySourceDriver {
  readonly kind: SourceConfig['kind'];
  load(): Promise<SourceDriver>;
}
