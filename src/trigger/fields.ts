// Declarative field tables for trigger metadata: one entry per key, with its value schema, its
// default and the words that tell a user what is allowed. The parser (schema.ts) and the docs'
// metadata table are both driven from these tables, so they cannot drift apart.
import { z } from 'zod';
import { MAX_PER_REPLICA, MAX_REPLICAS, MIN_PER_REPLICA } from './types.ts';

export interface Field<T = unknown> {
  /** Value schema for the raw string; must reject what is not allowed. */
  readonly schema: z.ZodType<T, string>;
  /** Human words for what is allowed, quoted in INVALID_ARGUMENT messages. */
  readonly allowed: string;
  readonly description: string;
  /** Used when the key is absent. Fields without a default are optional (undefined) unless required. */
  readonly default?: T;
  /** The key must be given (by the trigger, `<key>FromEnv` or a connection profile); enforced by readGroup alone. */
  readonly required?: boolean;
  /** `<key>FromEnv` is accepted: KEDA resolves it from the workload's environment. */
  readonly fromEnv?: boolean;
  /** Never echoed back in errors or logs. */
  readonly secret?: boolean;
  /** A secret URL whose password is the secret: the rest of it says what is read (rabbitmq.host). */
  readonly secretInUrl?: boolean;
  /**
   * The key decides where, or how safely, the source's credentials are sent (an address, TLS, a
   * CA): a trigger that names a connection profile holding a secret may not set it, or any
   * ScaledObject could send the operator's credentials to a server of its choosing.
   */
  readonly routesCredentials?: boolean;
  /** Longest value a trigger may give; MAX_VALUE_CHARS when absent. */
  readonly maxChars?: number;
  /**
   * Whether an edit of the key starts what the scaler learned about the trigger over (its lineage,
   * Trigger.lineage): the key changes what the sources read or how their readings are read. When
   * absent: yes for source keys, no for the others.
   */
  readonly lineage?: boolean;
}

/** What a URL key allows besides its schemes: the %-escapes a source decodes must decode. */
const URL_ESCAPES =
  '(written out as scheme://host, no spaces or control characters before the path and none of the latter after; user, password and path %-escapes must decode as UTF-8)';

/** Longest value of a key: names, URLs and broker lists fit many times over. */
export const MAX_VALUE_CHARS = 8192;

/**
 * The longest ScaledObject namespace and name Kubernetes allows (a DNS label, a DNS subdomain). A
 * longer one comes from no ScaledObject, and kept in logs, /explain and the refusals it would hold
 * memory the size of what a client sends (found by review: 300 calls with 200 KB names exhausted
 * the chart's heap).
 */
export const MAX_NAMESPACE_CHARS = 63;
export const MAX_NAME_CHARS = 253;
/** Longest PEM certificate or key (a chain of a few), bearer token or PromQL query. */
export const LONG_VALUE_CHARS = 65_536;

const text = z.string().trim().min(1, 'must not be empty');

/** A plain decimal number as text: no "", no hex, no NaN or Infinity (Number() takes all of those). */
// One way to split the digits only: `\d+\.?\d*` tried every split of a long digit run (quadratic).
export const DECIMAL_NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function numberFrom(check: (n: number) => boolean): z.ZodType<number, string> {
  // z.coerce.number() turns "" into 0; metadata strings need a stricter reading.
  return z
    .string()
    .trim()
    .regex(DECIMAL_NUMBER)
    .transform(Number)
    .refine((n) => Number.isFinite(n) && check(n));
}

/**
 * The longest cold start, objective or keep-warm window: 30 days (a batch's objective may be over a
 * day). Far past it the model's products of rates and seconds overflow (a cold start of 1e308 s
 * made a demand NaN, dropped without a word) and mean nothing.
 */
const MAX_SECONDS = 30 * 86_400;
/**
 * kafka.commitIntervalSeconds at most: the time the served rate is averaged over (rates.ts, 30 s).
 * The rate comes from the committed offsets, so commits further apart make it jump at each one and
 * fall toward 0 before the next, and the served messages left out of the lag swing with it (found
 * by review: at 60 s the backlog read 0, 0, 0, 256 in turn; at 300 s 0 for 105 s, then all of it).
 */
const MAX_COMMIT_INTERVAL_SECONDS = 30;

/**
 * A scheme, `//`, an authority with no whitespace, control character or backslash (the user and
 * password are masked there), then a path, query or fragment with no control character (a parser
 * drops tabs and newlines) or backslash (read as "/" by http); spaces there are percent-encoded as
 * Go's url.Parse takes them (a vhost "my vhost"; found by review).
 */
// eslint-disable-next-line no-control-regex
const WRITTEN_OUT_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s\x00-\x1f\x7f\\/?#]*(?:[/?#][^\x00-\x1f\x7f\\]*)?$/;

const kinds = {
  perReplica: numberFrom((n) => n >= MIN_PER_REPLICA && n <= MAX_PER_REPLICA),
  perReplicaInt: numberFrom((n) => n > 0 && Number.isInteger(n) && n <= MAX_PER_REPLICA),
  seconds: numberFrom((n) => n >= 0 && n <= MAX_SECONDS),
  positiveSeconds: numberFrom((n) => n > 0 && n <= MAX_SECONDS),
  nonNegativeNumber: numberFrom((n) => n >= 0),
  nonNegativeInt: numberFrom((n) => n >= 0 && Number.isInteger(n)),
  replicaCount: numberFrom((n) => n > 0 && Number.isInteger(n) && n <= MAX_REPLICAS),
  fraction: numberFrom((n) => n > 0 && n <= 1),
  // Any case; t and f as KEDA's own scalers take them (Go's strconv.ParseBool).
  bool: z.stringbool({ truthy: ['true', '1', 't', 'yes'], falsy: ['false', '0', 'f', 'no'] }),
  text,
  url: (schemes: readonly string[]) =>
    text.refine((s) => {
      // Written out, as Go's url.Parse in KEDA's own scalers needs too: the WHATWG parser also takes
      // `http:user:pw@host`, a password with a space or a tab in it, which the masking of passwords
      // (redact: `scheme://user:***@`) does not see, and their unsalted hash went into the trigger's
      // id, a metric label (found by review).
      if (!WRITTEN_OUT_URL.test(s)) return false;
      try {
        const url = new URL(s);
        // The sources decode the user, password and path (vhost, queue name): a %-escape that does
        // not decode is refused here, naming the key, instead of failing there as INTERNAL.
        decodeURIComponent(url.username);
        decodeURIComponent(url.password);
        decodeURIComponent(url.pathname);
        return schemes.includes(url.protocol.replace(/:$/, ''));
      } catch {
        return false;
      }
    }),
  // Words in any case and with spaces around, as booleans are: "HTTP", "Earliest", " plain".
  oneOf: <const T extends readonly [string, ...string[]]>(values: T) => z.string().trim().toLowerCase().pipe(z.enum(values)),
  autoOr: (number: z.ZodType<number, string>) =>
    z.union([z.string().trim().toLowerCase().pipe(z.literal('auto')), number]) as z.ZodType<'auto' | number, string>,
  // PEM text, not a file's path: Node ignores a CA that holds no certificate, and a certificate or
  // key that is not PEM fails only at the connection, where it reads as brokers that are down.
  pemCertificate: text.refine((s) => /-----BEGIN (TRUSTED )?CERTIFICATE-----/.test(s)),
  // Unencrypted: no key names a passphrase (KEDA's keyPassword), and Node's refusal of an encrypted
  // key came only at the connection, as brokers that are down (found by review).
  pemPrivateKey: text.refine(
    (s) =>
      /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(s) && !/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4, *ENCRYPTED/.test(s),
  ),
  list: text
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    )
    .refine((l) => l.length > 0),
  headers: text.transform(headerList).refine((h) => h !== undefined),
};

/** An HTTP header name (RFC 9110's token). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A header value this scaler sends: printable ASCII (no line break, no control character). */
const HEADER_VALUE = /^[\x20-\x7e]*$/;
/**
 * Headers a trigger may not set: the credentials have keys of their own (and are kept out of
 * logs as such), the rest are the request's own or the connection's.
 */
const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'host',
  'accept',
  // Node's client decompresses nothing and reads the whole answer: a compressed or partial one
  // would fail every read as a bad answer, not the trigger's metadata.
  'accept-encoding',
  'range',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);
/** More headers than this on one query is no tenant header but a mistake (or abuse). */
const MAX_CUSTOM_HEADERS = 32;

/**
 * KEDA's customHeaders, `Name=value,Name2=value2` (spaces around each trimmed), as name-value
 * pairs; undefined when a pair is no header this scaler may send, or a name comes twice (any case).
 */
function headerList(text: string): readonly (readonly [string, string])[] | undefined {
  const pairs: [string, string][] = [];
  const seen = new Set<string>();
  for (const item of text.split(',')) {
    if (item.trim() === '') continue;
    const at = item.indexOf('=');
    if (at < 0) return undefined;
    const name = item.slice(0, at).trim();
    const value = item.slice(at + 1).trim();
    const lower = name.toLowerCase();
    const reserved = RESERVED_HEADERS.has(lower) || lower.startsWith('content-');
    if (!HEADER_NAME.test(name) || !HEADER_VALUE.test(value) || reserved || seen.has(lower)) return undefined;
    seen.add(lower);
    pairs.push([name, value]);
  }
  return pairs.length > 0 && pairs.length <= MAX_CUSTOM_HEADERS ? pairs : undefined;
}

/** A table entry, its literal `required` and `default` kept so that ValuesOf types the parsed values. */
function field<T, const F extends Field<T>>(f: F & Field<T>): F {
  return f;
}

/** What a field parses to. */
type FieldValue<F> = F extends { readonly schema: infer Z extends z.ZodType } ? z.output<Z> : never;

/** The values a table parses to: present for required and defaulted fields, else possibly undefined. */
export type ValuesOf<Table> = {
  readonly [K in keyof Table]: Table[K] extends { readonly required: true } | { readonly default: unknown }
    ? FieldValue<Table[K]>
    : FieldValue<Table[K]> | undefined;
};

const bool = (description: string, dflt: boolean, lineage?: false) =>
  field({
    schema: kinds.bool,
    allowed: 'true or false (any case; also 1/0, t/f, yes/no)',
    default: dflt,
    description,
    ...(lineage === false && { lineage }),
  });

const connection = field({
  schema: kinds.text,
  allowed: "the name of a connection profile in the scaler's configuration",
  description: "Connection profile from the scaler's configuration; its keys act as defaults for this source.",
});

/** Keys without a source prefix: how backlog and GPU demand become a replica count. */
export const scalingFields = {
  messagesPerReplica: field({
    schema: kinds.perReplica,
    allowed: `a number from ${MIN_PER_REPLICA} to ${MAX_PER_REPLICA}`,
    default: 5,
    description:
      "Backlog one replica should hold (KEDA's queueLength / lagThreshold): KEDA's rule while the per-replica throughput is unknown, and the requests one replica serves at once until in-flight counts show them.",
  }),
  throughputPerReplica: field({
    schema: kinds.perReplica,
    allowed: `a number from ${MIN_PER_REPLICA} to ${MAX_PER_REPLICA} (messages per second)`,
    description:
      "Messages per second one warm replica serves. Learned from the brokers when absent; SQS and RabbitMQ over amqp count no served messages, so set it for them; Kafka learns it only while every replica is busy, reading long requests low, so a load test's figure serves it better.",
  }),
  concurrencyPerReplica: field({
    lineage: true,
    schema: kinds.perReplicaInt,
    allowed: `an integer > 0 and <= ${MAX_PER_REPLICA}`,
    description:
      "Requests one replica serves at once, when its consumer takes more from the queue than that (a prefetch above its concurrency: Celery's default is 4 per process): the messages in flight beyond this many per replica (per consumer, unless consumersPerReplica says a replica opens several) wait inside the replicas, and count as waiting. Read where the source reports messages in flight and consumers (RabbitMQ's management API). When absent, the in-flight messages per consumer say it, which holds when the prefetch is the concurrency; a prefetch past it shows in the consumers' throughput, which stops growing with what they hold, and is read from that once what they hold has varied enough (docs/model.md); setting this is surer.",
  }),
  consumersPerReplica: field({
    lineage: true,
    schema: kinds.perReplicaInt,
    allowed: `an integer > 0 and <= ${MAX_PER_REPLICA}`,
    default: 1,
    description:
      "Consumers each replica opens on the queue (a worker with a channel per thread or process opens several): the brokers' consumer count over this is the replicas the model reads (how many serve, what each holds, when a new one starts). Read where the source reports consumers (RabbitMQ, Kafka's group members). When, for ten minutes in a row, the queues count 1.75 times the replicas asked for or more (read while the fleet is settled), the scaler says the number it reads in a warning and in the explanation (`consumersPerReplicaSuggested`).",
  }),
  acknowledgement: field({
    lineage: true,
    schema: kinds.oneOf(['after-work', 'before-work']),
    allowed: 'after-work or before-work (any case)',
    default: 'after-work' as const,
    description:
      "When the workers acknowledge a message. after-work: once served, so the broker counts it in flight (unacknowledged) while a replica serves it. before-work: as they take or start it (Celery's default early acknowledgment, task_acks_late = False; consumers in automatic acknowledgment mode): what the broker counts in flight waits inside the replicas, and nothing counts what is served, so every message of the backlog counts as waiting and the throughput is read from stretches with every replica busy (docs/model.md).",
  }),
  coldStartSeconds: field({
    schema: kinds.autoOr(kinds.seconds),
    allowed: `"auto" (any case) or a number of seconds from 0 to ${MAX_SECONDS}`,
    default: 'auto' as const,
    description:
      'Time from "replica asked for" to "replica serving" (KEDA and the HPA reacting, pod start, model load). auto: learned from the brokers\' consumer count, the 95th percentile of the last 20 replicas, moving from coldStartPriorSeconds as they come; coldStartPriorSeconds without a consumer count (SQS).',
  }),
  coldStartPriorSeconds: field({
    schema: kinds.positiveSeconds,
    allowed: `a number > 0 and at most ${MAX_SECONDS} (seconds)`,
    default: 60,
    description:
      "With coldStartSeconds auto: the cold start assumed before any replica was seen (its 95th percentile), which each of the first 20 replicas moves a twentieth of the way toward what they took. Set it near your loads' p95 when they are slower than drainSeconds: the first wakes are then priced as late, where the default takes them for on time until the replicas say otherwise.",
  }),
  drainSeconds: field({
    schema: kinds.positiveSeconds,
    allowed: `a number > 0 and at most ${MAX_SECONDS} (seconds)`,
    default: 60,
    description: 'Latency objective: the most a request should wait in the queue before a replica starts it.',
  }),
  lateRequestCost: field({
    // Bounded: priced against cold starts and idle gaps, a cost near the doubles' end overflowed them.
    schema: kinds.seconds,
    allowed: `a number >= 0 and at most ${MAX_SECONDS} (GPU-seconds)`,
    default: 10,
    description:
      'What one request waiting past drainSeconds is worth, in GPU-seconds: the model keeps warm replicas and headroom only where they cost less than the late requests they prevent.',
  }),
  activationBacklog: field({
    schema: kinds.nonNegativeNumber,
    allowed: 'a number >= 0',
    default: 0,
    description: 'Backlog above which a workload scaled to zero wakes.',
  }),
  minReplicas: field({
    schema: kinds.replicaCount,
    allowed: `an integer from 1 to ${MAX_REPLICAS}`,
    default: 1,
    description: 'Lower bound on the desired replica count while active (scale to zero is decided by activity).',
  }),
  maxReplicas: field({
    schema: kinds.replicaCount,
    allowed: `an integer from 1 to ${MAX_REPLICAS}`,
    default: 100,
    description: 'Upper bound on the desired replica count.',
  }),
  keepWarm: field({
    schema: kinds.autoOr(kinds.seconds),
    allowed: `"auto" (any case) or a number of seconds from 0 to ${MAX_SECONDS}`,
    default: 'auto' as const,
    description:
      'How long to stay active after the last work: learned from idle gaps, a cold start priced at the cold start plus the requests it would leave late (its mean where a wake leaves none late) (auto), or fixed seconds; fixed seconds also turn the prewarm for regular gaps off.',
  }),
} as const;

const rabbitmqFields = {
  connection,
  host: field({
    schema: kinds.url(['amqp', 'amqps', 'http', 'https']),
    allowed: `an amqp://, amqps://, http:// or https:// URL ${URL_ESCAPES}`,
    description:
      "Broker URL: AMQP (its path is the vhost), or the management API for protocol http (its path's last segment is the vhost, empty for the root one as after a trailing slash, and what comes before it a path prefix, as KEDA reads it).",
    required: true,
    fromEnv: true,
    secret: true,
    secretInUrl: true,
  }),
  queueName: field({ schema: kinds.text, allowed: 'a queue name', required: true, description: 'Queue to watch.' }),
  vhostName: field({
    schema: z.string(),
    allowed: 'a virtual host name',
    description: 'Virtual host; overrides the one in the host URL (empty: none, the URL says).',
  }),
  protocol: field({
    schema: kinds.oneOf(['auto', 'amqp', 'http']),
    allowed: 'auto, amqp or http (any case)',
    default: 'auto' as const,
    description: 'auto picks amqp or http from the host URL scheme.',
  }),
  excludeUnacknowledged: bool('http only: count ready messages only, not unacknowledged ones.', false),
  ca: field({
    lineage: false,
    schema: kinds.pemCertificate,
    allowed: 'a PEM CA certificate (-----BEGIN CERTIFICATE----- ...)',
    description:
      'CA that signed the certificate of the broker (amqps://) or of the management API (https://), added to the public roots.',
    fromEnv: true,
    maxChars: LONG_VALUE_CHARS,
    routesCredentials: true,
  }),
  unsafeSsl: {
    ...bool("Skip verification of the broker's (amqps://) or the management API's (https://) certificate.", false, false),
    routesCredentials: true,
  },
} as const;

const sqsFields = {
  connection,
  queueURL: field({
    schema: kinds.url(['http', 'https']),
    allowed: `an https:// queue URL (http:// for a local SQS-compatible server) ${URL_ESCAPES}`,
    description: 'Queue URL.',
    required: true,
    fromEnv: true,
  }),
  awsRegion: field({
    schema: kinds.text,
    allowed: 'an AWS region such as eu-west-1',
    description:
      "Region; when absent, the one the queue URL's host names (sqs.<region>.amazonaws.com, its FIPS, legacy and VPC endpoint forms), else the scaler's AWS_REGION or AWS_DEFAULT_REGION.",
  }),
  awsEndpoint: field({
    schema: kinds.url(['http', 'https']),
    allowed: `an http(s):// URL ${URL_ESCAPES}`,
    description: 'Custom endpoint (local or private).',
  }),
  scaleOnInFlight: bool('Count in-flight (received, not deleted) messages.', true),
  scaleOnDelayed: bool('Count delayed messages.', false),
} as const;

const kafkaFields = {
  connection,
  bootstrapServers: field({
    schema: kinds.list.refine((l) =>
      l.every((b) => {
        const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:/@]+):(\d{1,5})$/.exec(b);
        return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
      }),
    ),
    allowed: 'a comma-separated list of host:port (port 1-65535)',
    description: 'Broker list.',
    required: true,
    fromEnv: true,
    routesCredentials: true,
  }),
  topic: field({
    // Kafka's own rule for topic names: a mistyped one fails here, not as a broker error.
    schema: kinds.list.refine((l) => l.every((t) => /^[a-zA-Z0-9._-]{1,249}$/.test(t) && t !== '.' && t !== '..')),
    allowed: 'a topic name (letters, digits, ".", "_", "-"; at most 249) or a comma-separated list of them',
    description: 'Topic(s); all topics the group has offsets for when absent.',
    // KEDA's Kafka scaler takes both from the workload's environment too (found by review).
    fromEnv: true,
  }),
  consumerGroup: field({
    schema: kinds.text,
    allowed: 'a consumer group id',
    required: true,
    description: 'Consumer group.',
    fromEnv: true,
  }),
  offsetResetPolicy: field({
    schema: kinds.oneOf(['latest', 'earliest']),
    allowed: 'latest or earliest (any case)',
    default: 'latest' as const,
    description: 'How a partition without a committed offset counts: earliest = its whole retained log, latest = 1.',
  }),
  commitIntervalSeconds: field({
    // Commit intervals are seconds; a larger number is auto.commit.interval.ms copied in
    // milliseconds (5000: found by review, it took the whole lag out).
    schema: numberFrom((n) => n >= 0 && n <= MAX_COMMIT_INTERVAL_SECONDS),
    allowed: `a number of seconds >= 0 and at most ${MAX_COMMIT_INTERVAL_SECONDS} (auto.commit.interval.ms 5000 is 5)`,
    default: 0,
    description:
      "How often the group's consumers commit their offsets when they commit on a timer after serving (kafka-python and the Java client every 5 s by default, Sarama 1 s): what they served since still counts in the lag, and the model takes the group's served rate times this out of the lag it sizes and learns from (at most the lag, and none while the group has no members); whether the workload is active reads the whole lag. At most 30: the served rate is averaged over 30 s, and commits further apart make it swing between them. 0 (the lag as KEDA reads it) for consumers that commit each message, or whose requests outlast the interval; docs/sources.md, \"Commits\", says which interval each client's defaults call for (kafkajs: commit a message at a time, and 0).",
  }),
  allowIdleConsumers: bool('Let the replica count exceed the partition count.', false),
  scaleToZeroOnInvalidOffset: bool('A partition without a committed offset counts 0 (under either policy).', false),
  sasl: field({
    lineage: false,
    // KEDA's Kafka scaler names the plain mechanism `plaintext`: taken as it is, for a trigger moved over.
    schema: z
      .string()
      .trim()
      .toLowerCase()
      .transform((s) => (s === 'plaintext' ? 'plain' : s))
      .pipe(z.enum(['none', 'plain', 'scram_sha256', 'scram_sha512'])),
    allowed: 'none, plain (or plaintext, as KEDA names it), scram_sha256 or scram_sha512 (any case)',
    default: 'none' as const,
    description: 'SASL mechanism.',
    routesCredentials: true,
  }),
  // Whom the profile's password is presented as: a trigger's own beside it refused (found by review).
  username: field({
    lineage: false,
    schema: kinds.text,
    allowed: 'a user name',
    description: 'SASL user.',
    fromEnv: true,
    routesCredentials: true,
  }),
  password: field({
    lineage: false,
    schema: kinds.text,
    allowed: 'a password',
    description: 'SASL password.',
    fromEnv: true,
    secret: true,
  }),
  tls: field({
    lineage: false,
    schema: kinds.oneOf(['enable', 'disable']),
    allowed: 'enable or disable (any case)',
    default: 'disable' as const,
    description: 'TLS to the brokers.',
    routesCredentials: true,
  }),
  ca: field({
    lineage: false,
    schema: kinds.pemCertificate,
    allowed: 'a PEM CA certificate (-----BEGIN CERTIFICATE----- ...)',
    description: 'CA for the brokers.',
    fromEnv: true,
    maxChars: LONG_VALUE_CHARS,
    routesCredentials: true,
  }),
  cert: field({
    lineage: false,
    schema: kinds.pemCertificate,
    allowed: 'a PEM certificate (-----BEGIN CERTIFICATE----- ...)',
    description: 'Client certificate.',
    fromEnv: true,
    maxChars: LONG_VALUE_CHARS,
  }),
  key: field({
    lineage: false,
    schema: kinds.pemPrivateKey,
    allowed: 'a PEM private key, not encrypted (-----BEGIN ... PRIVATE KEY----- ...)',
    description: 'Client key.',
    fromEnv: true,
    secret: true,
    maxChars: LONG_VALUE_CHARS,
  }),
  unsafeSsl: { ...bool("Skip verification of the brokers' certificates.", false, false), routesCredentials: true },
} as const;

const gpuFields = {
  connection,
  serverAddress: field({
    schema: kinds.url(['http', 'https']),
    allowed: `an http(s):// Prometheus base URL ${URL_ESCAPES}`,
    description: 'Prometheus base URL.',
    required: true,
    fromEnv: true,
    routesCredentials: true,
  }),
  query: field({
    schema: kinds.text,
    allowed: 'a PromQL expression returning one series',
    description: 'PromQL giving busy GPU-equivalents; built from namespace and podSelector when absent.',
    maxChars: LONG_VALUE_CHARS,
  }),
  namespace: field({
    schema: kinds.text,
    allowed: 'a namespace',
    description: "Namespace of the workload pods (with gpu.podSelector alone: the ScaledObject's).",
  }),
  podSelector: field({
    schema: kinds.text,
    allowed: 'a regular expression over pod names',
    description: "Pods of the workload (PromQL =~ on the exporter's pod label).",
  }),
  targetUtilization: field({
    lineage: false,
    schema: kinds.fraction,
    allowed: 'a number > 0 and <= 1',
    default: 0.8,
    description:
      "Target busy share per GPU: the GPU demand is ceil(busy GPU-equivalents / this), used where the trigger's queues do not count the messages in service (RabbitMQ over amqp, a backlog that leaves them out, acknowledgement before-work, no queue).",
  }),
  activationThreshold: field({
    lineage: false,
    schema: kinds.nonNegativeNumber,
    allowed: 'a number >= 0 (busy GPU-equivalents)',
    default: 0.2,
    description: 'Busy GPU-equivalents above which the workload counts as active (idle GPUs read a few percent).',
  }),
  ignoreNullValues: bool(
    'An empty query result (no series). true: no GPUs while the workload is at zero (the last answer inactive); while it runs, NOT_FOUND unless a queue of the trigger has work or messages in flight, and then, where the GPUs size the fleet, their demand held at the fleet asked for (never idle GPUs). false: always NOT_FOUND.',
    true,
    false,
  ),
  bearerToken: field({
    lineage: false,
    // It goes into the Authorization header as it is: a character a header cannot carry would fail
    // every read (as UNAVAILABLE), so it is refused here.
    schema: kinds.text.refine((s) => /^[\x21-\x7e]+$/.test(s)),
    allowed: 'a token (printable ASCII, no spaces)',
    description: 'Bearer token for Prometheus.',
    fromEnv: true,
    secret: true,
    maxChars: LONG_VALUE_CHARS,
  }),
  // Whom the profile's password is presented as: the tenant of Grafana Cloud and Mimir's basic
  // auth, which a trigger beside the profile chose (found by review).
  username: field({
    lineage: false,
    schema: kinds.text,
    allowed: 'a user name',
    description: 'Basic auth user.',
    fromEnv: true,
    routesCredentials: true,
  }),
  password: field({
    lineage: false,
    schema: kinds.text,
    allowed: 'a password',
    description: 'Basic auth password.',
    fromEnv: true,
    secret: true,
  }),
  customHeaders: field({
    schema: kinds.headers,
    allowed: `Name=value pairs separated by commas (X-Scope-OrgID=team-a), at most ${MAX_CUSTOM_HEADERS}: names HTTP tokens, each once; values printable ASCII without commas; not Authorization (gpu.bearerToken, gpu.username), Host, Accept, Accept-Encoding, Range, Content-* or a connection header`,
    description:
      "Headers sent with every query (KEDA's customHeaders): the tenant of Mimir or Cortex (X-Scope-OrgID), a key for a gateway. Kept out of logs, labels and /explain, as a secret.",
    fromEnv: true,
    secret: true,
    maxChars: LONG_VALUE_CHARS,
    // The tenant a profile's token reads: a trigger may not pick another one (found by review).
    routesCredentials: true,
  }),
  ca: field({
    lineage: false,
    schema: kinds.pemCertificate,
    allowed: 'a PEM CA certificate (-----BEGIN CERTIFICATE----- ...)',
    description: "CA that signed Prometheus' certificate (added to the public roots).",
    fromEnv: true,
    maxChars: LONG_VALUE_CHARS,
    routesCredentials: true,
  }),
  unsafeSsl: { ...bool("Skip verification of Prometheus' certificate.", false, false), routesCredentials: true },
} as const;

export const sourceFields = {
  rabbitmq: rabbitmqFields,
  sqs: sqsFields,
  kafka: kafkaFields,
  gpu: gpuFields,
} as const;

export type SourceKind = keyof typeof sourceFields;
export const sourceKinds = Object.keys(sourceFields) as SourceKind[];

/** Keys KEDA itself reads from the trigger; accepted and ignored. */
export const kedaKeys: ReadonlySet<string> = new Set([
  'scalerAddress',
  'enableTLS',
  'unsafeSsl',
  'tlsCertFile',
  'caCert',
  'tlsClientCert',
  'tlsClientKey',
]);
