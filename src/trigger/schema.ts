// Trigger metadata -> typed Trigger. All validation lives here (driven by fields.ts); every
// problem becomes one line of an InvalidTrigger that names the key, the value and what is allowed.
import { createHash } from 'node:crypto';
import { InvalidTrigger, quote, redact } from '../errors.ts';
import { regionInQueueUrl } from './sqsUrl.ts';
import {
  type Field,
  MAX_NAMESPACE_CHARS,
  MAX_NAME_CHARS,
  MAX_VALUE_CHARS,
  type SourceKind,
  type ValuesOf,
  kedaKeys,
  scalingFields,
  sourceFields,
  sourceKinds,
} from './fields.ts';
import type {
  ConnectionProfiles,
  GpuSourceConfig,
  KafkaSourceConfig,
  RabbitmqSourceConfig,
  ScalingConfig,
  SourceConfig,
  SqsSourceConfig,
  Trigger,
} from './types.ts';

const METRIC_NAME = 'inference-desired-replicas';

export interface ParseOptions {
  readonly profiles?: ConnectionProfiles;
  /** The scaler's own environment, for defaults such as AWS_REGION. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

type FieldTable = Readonly<Record<string, Field>>;

class Issues {
  readonly list: string[] = [];
  total = 0;
  /** Keys the trigger wrote otherwise (`rabbitmq.hostFromEnv` for `rabbitmq.host`): issues name them as written. */
  private readonly written = new Map<string, string>();
  /** Keys (and `<kind>.*` for a whole group) an issue was already about: none of them is then also "required". */
  private readonly told = new Set<string>();
  /** Long texts given once; an issue after the first says "as above". */
  private readonly given = new Set<string>();
  add(key: string, problem: string): void {
    this.told.add(key);
    // Past what an InvalidTrigger keeps only the count matters: 100,000 unknown keys format 10 lines.
    if (this.total++ < InvalidTrigger.KEPT) this.list.push(`${this.written.get(key) ?? key}: ${problem}`);
  }
  /** A problem whose text lists what is allowed: whole the first time, "as above" after. */
  addOnce(key: string, problem: string, short: string): void {
    this.add(key, this.given.has(problem) ? short : problem);
    this.given.add(problem);
  }
  /** An issue already covers the key (written otherwise), or `<kind>.*`, the whole group (its profile does not exist). */
  tell(key: string): void {
    this.told.add(key);
  }
  /** Whether an issue was about the key already, or about its whole group. */
  toldOf(key: string, group: string): boolean {
    return this.told.has(key) || this.told.has(`${group}*`);
  }
  writtenAs(key: string, rawKey: string): void {
    this.written.set(key, rawKey);
  }
}

/** An unknown key as its issue names it: as it is when it reads as a key, else quoted (and so bounded). */
function keyText(key: string): string {
  return /^[\w.-]{1,60}$/.test(key) ? key : quote(key);
}

/**
 * A refused value as its issue quotes it: a secret never (an empty one as empty); any other with what
 * lies before its last "@" masked, from after "://" when it has a scheme, else from its start. A URL
 * that does not parse cannot be split into user, password and host, its password may hold "/" or "@"
 * written raw, where redact() (made for any text) stops, and one without a scheme
 * ("admin:pw@prometheus:9090", "u:pw@kafka:9092,...") has no "://" for redact() to anchor on.
 */
function describeValue(raw: string, field: Field): string {
  if (field.secret) return raw === '' ? '""' : '(redacted)';
  const at = raw.lastIndexOf('@');
  if (at < 0) return quote(raw);
  const from = raw.indexOf('://');
  const start = from >= 0 && at > from ? from + 3 : 0;
  return quote(`${raw.slice(0, start)}***${raw.slice(at)}`);
}

/** What an issue says of a value its field refuses. */
function refused(value: string, field: Field): string {
  return `got ${describeValue(value, field)}; allowed: ${field.allowed}`;
}

/**
 * Reads one group of raw values (already without prefix) against a field table: each value parsed,
 * defaults filled in, required keys enforced (the one place they are). undefined when any of the
 * group's keys had a problem: its cross-field rules and builder then do not run.
 */
function readGroup<T extends FieldTable>(
  table: T,
  raw: Record<string, string>,
  keyPrefix: string,
  issues: Issues,
): ValuesOf<T> | undefined {
  const values: Record<string, unknown> = {};
  const before = issues.total;
  let missing = false;
  for (const [name, field] of Object.entries(table)) {
    const value = raw[name];
    if (value === undefined) {
      if (field.default !== undefined) values[name] = field.default;
      else if (field.required) {
        missing = true;
        // Not when an issue above says why it is missing (a value too long, a profile not found).
        if (!issues.toldOf(`${keyPrefix}${name}`, keyPrefix))
          issues.add(`${keyPrefix}${name}`, `is required; allowed: ${field.allowed}${otherWays(table, keyPrefix, name, field)}`);
      }
      continue;
    }
    const parsed = field.schema.safeParse(value);
    if (parsed.success) values[name] = parsed.data;
    else issues.add(`${keyPrefix}${name}`, refused(value, field));
  }
  // A key refused before (too long, set twice) is missing here too: the rules would then say it is
  // required, or that another goes with it, beside the issue that said what was wrong with it.
  const toldBefore = Object.keys(table).some((name) => issues.toldOf(`${keyPrefix}${name}`, keyPrefix));
  // Sound: every field was parsed by its own schema, and none required is missing.
  return issues.total === before && !missing && !toldBefore ? (values as ValuesOf<T>) : undefined;
}

/** The other ways a required key can be given: from the workload's environment, or a connection profile. */
function otherWays(table: FieldTable, keyPrefix: string, name: string, field: Field): string {
  const ways = [
    // KEDA resolves FromEnv itself and leaves the key out when the variable is unset or empty:
    // a user who wrote one is told why it may still be missing.
    ...(field.fromEnv
      ? [`${keyPrefix}${name}FromEnv, which KEDA leaves out when the scaled workload's variable is unset or empty`]
      : []),
    ...(keyPrefix !== '' && Object.hasOwn(table, 'connection') ? [`a profile named by ${keyPrefix}connection`] : []),
  ];
  return ways.length > 0 ? ` (or ${ways.join(', or ')})` : '';
}

/** A trigger's value longer than its field takes is refused before it is parsed. */
function tooLong(key: string, value: string, field: Field, issues: Issues): boolean {
  const maxChars = field.maxChars ?? MAX_VALUE_CHARS;
  if (value.length <= maxChars) return false;
  issues.add(key, `${refused(value, field)}, at most ${maxChars} characters`);
  return true;
}

/** The field a source key names: `<key>FromEnv` names `<key>` where that field takes it. */
function fieldName(table: FieldTable, name: string): string {
  const base = name.slice(0, -'FromEnv'.length);
  return name.endsWith('FromEnv') && table[base]?.fromEnv ? base : name;
}

/**
 * Splits metadata into the top-level group and one group per source prefix, folding
 * `<key>FromEnv` into `<key>` and reporting unknown keys.
 */
function splitMetadata(metadata: Readonly<Record<string, string>>, issues: Issues) {
  const top: Record<string, string> = {};
  const groups = new Map<SourceKind, Record<string, string>>();
  for (const [rawKey, value] of Object.entries(metadata)) {
    if (kedaKeys.has(rawKey)) continue;
    const dot = rawKey.indexOf('.');
    const prefix = dot > 0 ? rawKey.slice(0, dot) : '';
    if (dot > 0 && (sourceKinds as string[]).includes(prefix)) {
      const kind = prefix as SourceKind;
      const table: FieldTable = sourceFields[kind];
      const name = fieldName(table, rawKey.slice(dot + 1));
      if (name !== rawKey.slice(dot + 1) && metadata[`${prefix}.${name}`] !== undefined) {
        issues.add(rawKey, `set either ${prefix}.${name} or ${rawKey}, not both; allowed: one of the two`);
        continue;
      }
      if (!Object.hasOwn(table, name)) {
        issues.addOnce(keyText(rawKey), unknownSourceKey[kind], `unknown key; allowed ${kind} keys: as above`);
        continue;
      }
      if (tooLong(rawKey, value, table[name]!, issues)) {
        issues.tell(`${prefix}.${name}`);
        continue;
      }
      if (name !== rawKey.slice(dot + 1)) issues.writtenAs(`${prefix}.${name}`, rawKey);
      const group = groups.get(kind) ?? {};
      group[name] = value;
      groups.set(kind, group);
    } else if (Object.hasOwn(scalingFields, rawKey)) {
      if (!tooLong(rawKey, value, (scalingFields as FieldTable)[rawKey]!, issues)) top[rawKey] = value;
    } else {
      issues.addOnce(keyText(rawKey), unknownTopKey, 'unknown key; allowed: as above');
    }
  }
  return { top, groups };
}

function allowedKeys(table: FieldTable): string[] {
  return Object.entries(table).flatMap(([name, f]) => (f.fromEnv ? [name, `${name}FromEnv`] : [name]));
}

// What an unknown key is told, built once (the tables are fixed), not once per key.
const unknownTopKey =
  `unknown key; allowed: ${Object.keys(scalingFields).join(', ')}, keys prefixed ${sourceKinds.map((k) => `${k}.`).join(', ')}, ` +
  `or KEDA's own keys (${[...kedaKeys].join(', ')})`;
const unknownSourceKey = Object.fromEntries(
  sourceKinds.map((kind) => [kind, `unknown key; allowed ${kind} keys: ${allowedKeys(sourceFields[kind]).join(', ')}`]),
) as Record<SourceKind, string>;

/**
 * A connection profile's values checked as a trigger's would be, key by key (a profile may hold
 * any subset: the trigger gives the rest, so nothing is required and the cross-field rules wait
 * for the trigger), but for their length: the limit is for what a client sends, and a profile is
 * the operator's (a CA bundle of 200 KB). The issues name `connections.<kind>.<name>.<key>`,
 * secrets never quoted.
 */
export function profileIssues(kind: SourceKind, name: string, profile: Readonly<Record<string, string>>): string[] {
  const table: FieldTable = sourceFields[kind];
  const issues = new Issues();
  for (const [key, value] of Object.entries(profile)) {
    const field = table[key];
    const where = `connections.${kind}.${name}.${key}`;
    if (field === undefined) continue;
    if (!field.schema.safeParse(value).success) issues.add(where, refused(value, field));
  }
  return issues.list;
}

/** Merges a named connection profile under the trigger's own keys. */
function withProfile(
  kind: SourceKind,
  group: Record<string, string>,
  profiles: ConnectionProfiles | undefined,
  issues: Issues,
): Record<string, string> {
  const name = group.connection;
  if (name === undefined) return group;
  const named = profiles?.[kind] ?? {};
  const profile = Object.hasOwn(named, name) ? named[name] : undefined;
  if (profile === undefined) {
    const known = Object.keys(profiles?.[kind] ?? {});
    issues.add(
      `${kind}.connection`,
      `got ${quote(name)}; allowed: ${known.length ? known.join(', ') : `no ${kind} profiles are configured`}`,
    );
    issues.tell(`${kind}.*`);
    return group;
  }
  // A profile's secret goes only where, and as safely as, the profile says: a secret key, or an
  // address with credentials in it (gpu.serverAddress with user:password@, found by review). A key
  // secret for the credentials its URL may hold (rabbitmq.host) is one only when it holds some.
  const table: FieldTable = sourceFields[kind];
  const holdsCredentials = Object.entries(profile).some(([key, value]) => {
    const field = table[key];
    if (field?.secret === true) return field.secretInUrl !== true || hasUserInfo(value);
    return field?.routesCredentials === true && hasUserInfo(value);
  });
  if (holdsCredentials) {
    for (const key of Object.keys(group)) {
      if (table[key]?.routesCredentials !== true) continue;
      issues.add(
        `${kind}.${key}`,
        `set by the trigger, and connection profile ${quote(name)} holds credentials, which go only where and how the profile says; allowed: leave ${kind}.${key} to the profile, or give the trigger's own credentials without ${kind}.connection`,
      );
    }
  }
  // A cross-field rule that trips over a profile's value says where the value came from.
  for (const key of Object.keys(profile)) {
    if (group[key] === undefined) issues.writtenAs(`${kind}.${key}`, `${kind}.${key} (from connection profile ${keyText(name)})`);
  }
  return { ...profile, ...group };
}

/** Whether `value` is a URL with a user or password in it. */
function hasUserInfo(value: string): boolean {
  try {
    const url = new URL(value);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}

/**
 * Refuses `ca` and a true `unsafeSsl` beside an address (`hostKey`, e.g. `gpu.serverAddress`) whose
 * scheme has no TLS: they would be silently ignored. `tlsSchemes` says which schemes have it.
 */
function refuseTlsKeys(
  hostKey: string,
  scheme: string,
  tlsSchemes: string,
  v: { readonly ca?: string | undefined; readonly unsafeSsl: boolean },
  issues: Issues,
): void {
  const prefix = hostKey.slice(0, hostKey.indexOf('.'));
  const refuse = (key: 'ca' | 'unsafeSsl') =>
    issues.add(
      `${prefix}.${key}`,
      `applies only with TLS, not to ${hostKey}'s ${scheme}:// URL; allowed: ${tlsSchemes} ${hostKey}, or leave it out`,
    );
  if (v.ca !== undefined) refuse('ca');
  if (v.unsafeSsl) refuse('unsafeSsl');
}

/** A rule between a group's keys: what docs/metadata.md says of it, and its check. */
interface Rule<V> {
  readonly says: string;
  readonly check: (values: V, issues: Issues, env: ParseOptions['env']) => void;
}

/** Checks the values of a group against each other; the keys themselves are already valid. */
function check<V>(rules: readonly Rule<V>[], values: V, issues: Issues, env: ParseOptions['env']): void {
  for (const rule of rules) rule.check(values, issues, env);
}

type RabbitmqValues = ValuesOf<typeof sourceFields.rabbitmq>;

/** auto takes its protocol from the host URL's scheme, in any case (URL parsers take "HTTP://" too). */
function rabbitmqProtocol(v: RabbitmqValues): { scheme: string; protocol: 'amqp' | 'http' } {
  const scheme = (v.host.split(':')[0] ?? '').toLowerCase();
  const fromScheme = scheme.startsWith('http') ? 'http' : 'amqp';
  return { scheme, protocol: v.protocol === 'auto' ? fromScheme : v.protocol };
}

const rabbitmqRules: Rule<RabbitmqValues>[] = [
  {
    says: '`rabbitmq.protocol` amqp or http matches the scheme of `rabbitmq.host`.',
    check: (v, issues) => {
      const { scheme } = rabbitmqProtocol(v);
      if (v.protocol !== 'auto' && v.protocol !== (scheme.startsWith('http') ? 'http' : 'amqp')) {
        issues.add(
          'rabbitmq.protocol',
          `got "${v.protocol}" but rabbitmq.host is a ${scheme}:// URL; allowed: a host URL matching the protocol`,
        );
      }
    },
  },
  {
    says: '`rabbitmq.excludeUnacknowledged` true needs protocol http.',
    check: (v, issues) => {
      if (v.excludeUnacknowledged && rabbitmqProtocol(v).protocol === 'amqp') {
        issues.add(
          'rabbitmq.excludeUnacknowledged',
          'applies to protocol http only (amqp counts ready messages); allowed: false with amqp',
        );
      }
    },
  },
  {
    // Found by review: a queue named ".." read GET /api/queues/ (every queue of every vhost), as
    // the WHATWG URL every Node client takes removes such a segment, "%2E%2E" too.
    says: 'Over http, `rabbitmq.queueName` and `rabbitmq.vhostName` are not `.` or `..` (a URL drops such path segments).',
    check: (v, issues) => {
      if (rabbitmqProtocol(v).protocol !== 'http') return;
      for (const [key, value] of [
        ['rabbitmq.queueName', v.queueName],
        ['rabbitmq.vhostName', v.vhostName],
      ] as const) {
        if (value === '.' || value === '..')
          issues.add(
            key,
            `got "${value}", which the management API cannot be asked for (a URL drops the path segment); allowed: another name, or protocol amqp`,
          );
      }
    },
  },
  {
    says: '`rabbitmq.ca` and `rabbitmq.unsafeSsl` true need an amqps:// or https:// `rabbitmq.host`.',
    check: (v, issues) => {
      const { scheme } = rabbitmqProtocol(v);
      if (scheme !== 'amqps' && scheme !== 'https') refuseTlsKeys('rabbitmq.host', scheme, 'an amqps:// or https://', v, issues);
    },
  },
];

function buildRabbitmq(v: RabbitmqValues): RabbitmqSourceConfig {
  return {
    kind: 'rabbitmq',
    host: v.host,
    queueName: v.queueName,
    // Empty (a Helm template with nothing to put there): absent, as KEDA's RabbitMQ scaler reads it.
    vhostName: v.vhostName === undefined || v.vhostName.trim() === '' ? undefined : v.vhostName,
    protocol: rabbitmqProtocol(v).protocol,
    excludeUnacknowledged: v.excludeUnacknowledged,
    ca: v.ca,
    unsafeSsl: v.unsafeSsl,
  };
}

type SqsValues = ValuesOf<typeof sourceFields.sqs>;

/** The region: given, else named by the queue URL, else the scaler's AWS_REGION / AWS_DEFAULT_REGION. */
function sqsRegion(v: SqsValues, env: ParseOptions['env']): string | undefined {
  return v.awsRegion ?? regionInQueueUrl(v.queueURL) ?? env?.AWS_REGION ?? env?.AWS_DEFAULT_REGION;
}

const sqsRules: Rule<SqsValues>[] = [
  {
    says: '`sqs.awsRegion` is required when the queue URL names no region and the scaler has neither AWS_REGION nor AWS_DEFAULT_REGION.',
    check: (v, issues, env) => {
      if (sqsRegion(v, env) === undefined) {
        issues.add(
          'sqs.awsRegion',
          'is required when the queue URL names no region and the scaler has neither AWS_REGION nor AWS_DEFAULT_REGION; allowed: an AWS region such as eu-west-1',
        );
      }
    },
  },
  // Found by review: the client then asks another region's endpoint for the queue, and the
  // answer reads as a queue that does not exist.
  {
    says: '`sqs.awsRegion`, when the queue URL is an AWS one naming a region and no `sqs.awsEndpoint` is set, is that region.',
    check: (v, issues) => {
      const named = regionInQueueUrl(v.queueURL);
      if (v.awsRegion !== undefined && v.awsEndpoint === undefined && named !== undefined && v.awsRegion !== named) {
        issues.add(
          'sqs.awsRegion',
          `got ${JSON.stringify(v.awsRegion)}, but sqs.queueURL names region ${named}; allowed: ${named}, or leave sqs.awsRegion out`,
        );
      }
    },
  },
];

function buildSqs(v: SqsValues, env: ParseOptions['env']): SqsSourceConfig {
  return {
    kind: 'sqs',
    queueURL: v.queueURL,
    awsRegion: sqsRegion(v, env) ?? '',
    awsEndpoint: v.awsEndpoint,
    scaleOnInFlight: v.scaleOnInFlight,
    scaleOnDelayed: v.scaleOnDelayed,
  };
}

type KafkaValues = ValuesOf<typeof sourceFields.kafka>;

const kafkaRules: Rule<KafkaValues>[] = [
  {
    says: '`kafka.username` and `kafka.password` are required when `kafka.sasl` is not none.',
    check: (v, issues) => {
      if (v.sasl === 'none') return;
      const f = sourceFields.kafka;
      if (v.username === undefined)
        issues.add('kafka.username', `is required; allowed: ${f.username.allowed} when kafka.sasl is ${v.sasl}`);
      if (v.password === undefined)
        issues.add('kafka.password', `is required; allowed: ${f.password.allowed} when kafka.sasl is ${v.sasl}`);
    },
  },
  {
    says: '`kafka.cert` and `kafka.key` go together.',
    check: (v, issues) => {
      if ((v.cert === undefined) !== (v.key === undefined)) {
        issues.add(
          v.cert === undefined ? 'kafka.cert' : 'kafka.key',
          'kafka.cert and kafka.key go together; allowed: both or neither',
        );
      }
    },
  },
  {
    says: '`kafka.ca`, `kafka.cert` and `kafka.key` need `kafka.tls: enable`.',
    check: (v, issues) => {
      if (v.tls === 'enable') return;
      // Certificates given without TLS would be silently ignored.
      for (const key of ['ca', 'cert', 'key'] as const) {
        if (v[key] !== undefined)
          issues.add(`kafka.${key}`, 'applies only with kafka.tls: enable; allowed: set kafka.tls to enable, or drop it');
      }
    },
  },
];

function buildKafka(v: KafkaValues): KafkaSourceConfig {
  return {
    kind: 'kafka',
    bootstrapServers: v.bootstrapServers,
    // A topic named twice would count its partitions twice.
    topics: [...new Set(v.topic ?? [])],
    consumerGroup: v.consumerGroup,
    offsetResetPolicy: v.offsetResetPolicy,
    commitIntervalSeconds: v.commitIntervalSeconds,
    allowIdleConsumers: v.allowIdleConsumers,
    scaleToZeroOnInvalidOffset: v.scaleToZeroOnInvalidOffset,
    sasl: v.sasl,
    username: v.username,
    password: v.password,
    tls: v.tls === 'enable',
    ca: v.ca,
    cert: v.cert,
    key: v.key,
    unsafeSsl: v.unsafeSsl,
  };
}

function promString(s: string): string {
  return JSON.stringify(s);
}

/** The default busy-GPU query over the DCGM exporter: sum of utilisation / 100 over the workload's pods. */
export function defaultGpuQuery(namespace: string | undefined, podSelector: string | undefined): string {
  const matchers = [
    namespace !== undefined ? `namespace=${promString(namespace)}` : undefined,
    podSelector !== undefined ? `pod=~${promString(podSelector)}` : undefined,
  ].filter((m) => m !== undefined);
  return `sum(DCGM_FI_DEV_GPU_UTIL{${matchers.join(',')}}) / 100`;
}

type GpuValues = ValuesOf<typeof sourceFields.gpu>;

const gpuRules: Rule<GpuValues>[] = [
  {
    says: 'Exactly one of `gpu.query`, or `gpu.namespace` and/or `gpu.podSelector` (the query is then built from them).',
    check: (v, issues) => {
      const selected = v.namespace !== undefined || v.podSelector !== undefined;
      if (v.query === undefined && !selected) {
        issues.add('gpu.query', 'is required unless gpu.namespace or gpu.podSelector is set; allowed: a PromQL expression');
      } else if (v.query !== undefined && selected) {
        issues.add('gpu.query', 'set either gpu.query or gpu.namespace/gpu.podSelector, not both; allowed: one of the two');
      }
    },
  },
  {
    says: '`gpu.bearerToken` or basic auth (`gpu.username` with `gpu.password`, which go together), not both.',
    check: (v, issues) => {
      if (v.bearerToken !== undefined && (v.username !== undefined || v.password !== undefined)) {
        issues.add(
          'gpu.bearerToken',
          'set either gpu.bearerToken or gpu.username/gpu.password (basic auth), not both; allowed: one of the two',
        );
      } else if ((v.username === undefined) !== (v.password === undefined)) {
        issues.add(
          v.username === undefined ? 'gpu.username' : 'gpu.password',
          'gpu.username and gpu.password go together; allowed: both or neither',
        );
      }
    },
  },
  {
    says: 'A password in `gpu.serverAddress` needs a user name there too.',
    check: (v, issues) => {
      const { username, password } = new URL(v.serverAddress);
      // Without a user no Authorization header is sent, and the password was dropped without a word.
      if (password !== '' && username === '') {
        issues.add('gpu.serverAddress', 'holds a password but no user name; allowed: https://user:password@host, or neither');
      }
    },
  },
  {
    says: '`gpu.ca` and `gpu.unsafeSsl` true need an https:// `gpu.serverAddress`.',
    check: (v, issues) => {
      const scheme = new URL(v.serverAddress).protocol.replace(/:$/, '');
      if (scheme !== 'https') refuseTlsKeys('gpu.serverAddress', scheme, 'an https://', v, issues);
    },
  },
];

/**
 * The GPU source. The default query's namespace is the ScaledObject's when only gpu.podSelector is
 * set: its pods are where the scale target is, and a selector alone summed the pods of that name in
 * every namespace (another team's `vllm-.*` counted as this workload's busy GPUs).
 */
function buildGpu(v: GpuValues, scaledObjectNamespace: string): GpuSourceConfig {
  const namespace = v.namespace ?? (scaledObjectNamespace === '' ? undefined : scaledObjectNamespace);
  return {
    kind: 'gpu',
    serverAddress: v.serverAddress,
    query: v.query ?? defaultGpuQuery(namespace, v.podSelector),
    ...(v.query === undefined && {
      queryFrom: [v.namespace !== undefined && 'gpu.namespace', v.podSelector !== undefined && 'gpu.podSelector']
        .filter(Boolean)
        .join(' and '),
    }),
    targetUtilization: v.targetUtilization,
    activationThreshold: v.activationThreshold,
    ignoreNullValues: v.ignoreNullValues,
    bearerToken: v.bearerToken,
    username: v.username,
    password: v.password,
    customHeaders: v.customHeaders,
    ca: v.ca,
    unsafeSsl: v.unsafeSsl,
  };
}

type ScalingValues = ValuesOf<typeof scalingFields>;

const scalingRules: Rule<ScalingValues>[] = [
  {
    says: '`minReplicas` is at most `maxReplicas`.',
    check: (v, issues) => {
      if (v.minReplicas > v.maxReplicas) {
        issues.add(
          'minReplicas',
          `got ${v.minReplicas}, above maxReplicas ${v.maxReplicas}; allowed: minReplicas <= maxReplicas`,
        );
      }
    },
  },
];

/** What each group's rules between keys say, for docs/metadata.md (reference.ts). */
export const rulesBetweenKeys: Readonly<Record<'scaling' | keyof typeof sourceFields, readonly string[]>> = {
  scaling: scalingRules.map((r) => r.says),
  rabbitmq: rabbitmqRules.map((r) => r.says),
  sqs: sqsRules.map((r) => r.says),
  kafka: kafkaRules.map((r) => r.says),
  gpu: gpuRules.map((r) => r.says),
};

/** Each kind's cross-field rules and builder, over values typed from its field table. */
const sourceKindsBuild: {
  readonly [K in SourceKind]: (
    raw: Record<string, string>,
    issues: Issues,
    env: ParseOptions['env'],
    namespace: string,
  ) => SourceConfig | undefined;
} = {
  rabbitmq: (raw, issues, env) => built(sourceFields.rabbitmq, raw, 'rabbitmq.', issues, env, rabbitmqRules, buildRabbitmq),
  sqs: (raw, issues, env) => built(sourceFields.sqs, raw, 'sqs.', issues, env, sqsRules, (v) => buildSqs(v, env)),
  kafka: (raw, issues, env) => built(sourceFields.kafka, raw, 'kafka.', issues, env, kafkaRules, buildKafka),
  gpu: (raw, issues, env, namespace) =>
    built(sourceFields.gpu, raw, 'gpu.', issues, env, gpuRules, (v) => buildGpu(v, namespace)),
};

/** Reads a group, checks its rules and builds it; undefined when anything in it was wrong. */
function built<T extends FieldTable, R>(
  table: T,
  raw: Record<string, string>,
  keyPrefix: string,
  issues: Issues,
  env: ParseOptions['env'],
  rules: readonly Rule<ValuesOf<T>>[],
  build: (values: ValuesOf<T>) => R,
): R | undefined {
  const values = readGroup(table, raw, keyPrefix, issues);
  if (values === undefined) return undefined;
  const before = issues.total;
  check(rules, values, issues, env);
  return issues.total === before ? build(values) : undefined;
}

/** A source key of a trigger that parsed, split: its kind's table and its name there; undefined for a top-level key. */
function sourceKey(rawKey: string): { readonly table: FieldTable; readonly name: string } | undefined {
  const dot = rawKey.indexOf('.');
  return dot < 0 ? undefined : { table: sourceFields[rawKey.slice(0, dot) as SourceKind], name: rawKey.slice(dot + 1) };
}

/** Whether a key of a trigger that parsed is in its lineage (Field.lineage: source keys unless marked, others if marked). */
function inLineage(rawKey: string): boolean {
  const key = sourceKey(rawKey);
  if (key === undefined) return (scalingFields as FieldTable)[rawKey]?.lineage === true;
  return key.table[fieldName(key.table, key.name)]?.lineage !== false;
}

/**
 * The trigger's id (every key of its metadata) and lineage (what its sources read and how the
 * readings are read, passwords in URLs masked: what the model learns is about these).
 */
function triggerKeys(name: string, namespace: string, metadata: Readonly<Record<string, string>>) {
  // Without its secrets: the id is a metric label, and an unsalted hash of a password beside
  // metadata anyone may read would let a dictionary find it. Two triggers that differ only in a
  // secret read the same thing alike.
  const canonical = Object.entries(metadata)
    .filter(([k]) => !kedaKeys.has(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => [k, wholeSecret(k) ? '***' : redact(v)]);
  const read = canonical.filter(([k]) => inLineage(k!));
  const hash = (entries: readonly (readonly string[])[]) =>
    createHash('sha256').update(JSON.stringify(entries)).digest('hex').slice(0, 12);
  return { id: `${namespace}/${name}/${hash(canonical)}`, lineage: `${namespace}/${name}/${hash(read)}` };
}

/**
 * Whether all of a key's value is a secret (`kafka.password`, and `kafka.passwordFromEnv`, whose
 * value KEDA resolves from the workload's environment and sends; not `rabbitmq.host`, a URL whose
 * password alone is: redact() masks it). Told by the field, not the value (found by review: a
 * password with '://' in it was taken for a URL, and its unsalted hash went into the trigger
 * label; later, the FromEnv form's value went in whole, read as a variable's name).
 */
function wholeSecret(rawKey: string): boolean {
  const key = sourceKey(rawKey);
  const field = key === undefined ? undefined : key.table[fieldName(key.table, key.name)];
  return field?.secret === true && field.secretInUrl !== true;
}

/** Parses and validates one trigger's metadata. Throws InvalidTrigger naming the first problems and counting all. */
export function parseTrigger(
  ref: { readonly name: string; readonly namespace: string; readonly metadata: Readonly<Record<string, string>> },
  options: ParseOptions = {},
): Trigger {
  const issues = new Issues();
  const tooLong = (field: string, value: string, most: number, what: string) => {
    if (value.length > most)
      issues.add(`(scaledObjectRef.${field})`, `${value.length} characters; allowed: at most ${most} (${what})`);
  };
  tooLong('namespace', ref.namespace, MAX_NAMESPACE_CHARS, 'a Kubernetes namespace');
  tooLong('name', ref.name, MAX_NAME_CHARS, 'a Kubernetes object name');
  if (issues.total > 0) throw new InvalidTrigger(issues.list, issues.total);
  const { top, groups } = splitMetadata(ref.metadata, issues);
  const scaling = built(scalingFields, top, '', issues, options.env, scalingRules, (v): ScalingConfig => v);
  const sources: SourceConfig[] = [];
  // In the kinds' order, not the keys': KEDA sends the metadata in a new order on every call, and
  // replicas that share a trigger's state match each source's published estimates by position.
  for (const kind of sourceKinds) {
    const rawGroup = groups.get(kind);
    if (rawGroup === undefined) continue;
    const source = sourceKindsBuild[kind](
      withProfile(kind, rawGroup, options.profiles, issues),
      issues,
      options.env,
      ref.namespace,
    );
    if (source !== undefined) sources.push(source);
  }
  if (groups.size === 0 && issues.total === 0) {
    issues.add(
      '(trigger)',
      `no source; allowed: keys prefixed ${sourceKinds.map((k) => `${k}.`).join(', ')} (at least one source)`,
    );
  }
  if (issues.total > 0 || scaling === undefined) throw new InvalidTrigger(issues.list, issues.total);
  return {
    ...triggerKeys(ref.name, ref.namespace, ref.metadata),
    name: ref.name,
    namespace: ref.namespace,
    metricName: METRIC_NAME,
    sources,
    scaling,
  };
}
