// The typed trigger that the schema produces from KEDA's string metadata.

/**
 * The most replicas a trigger may ask for (minReplicas, maxReplicas): far past any GPU fleet, and
 * a bound on the model's work per decision, which prices fleet sizes up to maxReplicas.
 */
export const MAX_REPLICAS = 100_000;

/**
 * The most requests or messages one replica may be said to hold or serve a second: past every
 * inference server's batch. Far past it the model's sums over a replica's slots held the event loop
 * (1e13: a second per decision; 1e16: for ever, as i + 1 === i in doubles).
 */
export const MAX_PER_REPLICA = 1_000_000;

/**
 * The least messages one replica may hold or serve a second: far below it a backlog or a service
 * time divided by it overflowed to Infinity in the explanation (found by review: 1e-306).
 */
export const MIN_PER_REPLICA = 0.000001;

/** What KEDA sends with every call: the ScaledObject's name and namespace and the trigger's metadata. */
export interface TriggerRef {
  readonly name: string;
  readonly namespace: string;
  readonly metadata: Readonly<Record<string, string>>;
}

export interface RabbitmqSourceConfig {
  readonly kind: 'rabbitmq';
  readonly host: string;
  readonly queueName: string;
  /** Explicit vhost (overrides the URL's); undefined keeps the URL's. */
  readonly vhostName: string | undefined;
  readonly protocol: 'amqp' | 'http';
  readonly excludeUnacknowledged: boolean;
  /** PEM CA for an amqps:// broker or an https:// management API, added to the public roots. */
  readonly ca: string | undefined;
  readonly unsafeSsl: boolean;
}

export interface SqsSourceConfig {
  readonly kind: 'sqs';
  readonly queueURL: string;
  readonly awsRegion: string;
  readonly awsEndpoint: string | undefined;
  readonly scaleOnInFlight: boolean;
  readonly scaleOnDelayed: boolean;
}

export interface KafkaSourceConfig {
  readonly kind: 'kafka';
  readonly bootstrapServers: readonly string[];
  /** Empty: every topic the group has committed offsets for. */
  readonly topics: readonly string[];
  readonly consumerGroup: string;
  readonly offsetResetPolicy: 'latest' | 'earliest';
  /** How often the group's consumers commit (0: each message or batch): what they served since counts in the lag. */
  readonly commitIntervalSeconds: number;
  readonly allowIdleConsumers: boolean;
  readonly scaleToZeroOnInvalidOffset: boolean;
  readonly sasl: 'none' | 'plain' | 'scram_sha256' | 'scram_sha512';
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly unsafeSsl: boolean;
}

export interface GpuSourceConfig {
  readonly kind: 'gpu';
  readonly serverAddress: string;
  /** PromQL returning busy GPU-equivalents (one series or a scalar). */
  readonly query: string;
  /** The keys the query was built from, when gpu.query did not give it (what an error names). */
  readonly queryFrom?: string;
  readonly targetUtilization: number;
  readonly activationThreshold: number;
  readonly ignoreNullValues: boolean;
  readonly bearerToken: string | undefined;
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** Headers sent with every query (gpu.customHeaders), name and value. */
  readonly customHeaders: readonly (readonly [string, string])[] | undefined;
  readonly ca: string | undefined;
  readonly unsafeSsl: boolean;
}

export type SourceConfig = RabbitmqSourceConfig | SqsSourceConfig | KafkaSourceConfig | GpuSourceConfig;

export interface ScalingConfig {
  readonly messagesPerReplica: number;
  readonly throughputPerReplica: number | undefined;
  /** Requests a replica serves at once, when its consumer prefetches more (in flight past it waits). */
  readonly concurrencyPerReplica: number | undefined;
  /** Consumers each replica opens on the queue: the brokers' consumer count over this is the replicas. */
  readonly consumersPerReplica: number;
  /** When the workers acknowledge a message: after serving it (in flight = in service), or before (in flight waits). */
  readonly acknowledgement: 'after-work' | 'before-work';
  /** Seconds, or learned from the brokers' consumers (auto). */
  readonly coldStartSeconds: 'auto' | number;
  /** With coldStartSeconds auto: C before any replica was seen, which the first 20 move from. */
  readonly coldStartPriorSeconds: number;
  readonly drainSeconds: number;
  /** GPU-seconds one request waiting past drainSeconds is worth. */
  readonly lateRequestCost: number;
  readonly activationBacklog: number;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly keepWarm: 'auto' | number;
}

export interface Trigger {
  /** Stable identity of this trigger: namespace/name plus a hash of its metadata. */
  readonly id: string;
  /**
   * namespace/name plus a hash of its sources' metadata and the settings that say how their
   * readings are read: what the model learns is about these. A trigger whose other settings are
   * edited (drainSeconds, maxReplicas, ...) has a new id and the same lineage, and carries on from
   * what was learned under the old one (Engine).
   */
  readonly lineage: string;
  readonly name: string;
  readonly namespace: string;
  /** Name returned by GetMetricSpec (KEDA prefixes it with sN- for the HPA). */
  readonly metricName: string;
  readonly sources: readonly SourceConfig[];
  readonly scaling: ScalingConfig;
}

/** Connection profiles from the scaler's configuration: kind -> profile name -> key -> value. */
export type ConnectionProfiles = Partial<Record<SourceConfig['kind'], Record<string, Record<string, string>>>>;
