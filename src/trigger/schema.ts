// Trigger metadata -> typed Trigger. All validation lives here (driven by fields.ts); every
// problem becomes one line of an InvalidTrigger that names the key, the value and what is allowed.
import { createHash } from 'node:crypto';
import { InvalidTrigger, quote } from '../errors.ts';
import { type Field, MAX_VALUE_CHARS, type SourceKind, kedaKeys, scalingFields, sourceFields, sourceKinds } from './fields.ts';
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
type Values = Record<string, unknown>;

class Issues {
  readonly list: string[] = [];
  total = 0;
  add(key: string, problem: string): void {
    // Past what an InvalidTrigger keeps only the count matters: 100,000 unknown keys format 10 lines.
    if (this.total++ < InvalidTrigger.KEPT) this.list.push(`${key}: ${problem}`);
  }
}

/** An unknown key as its issue names it: as it is when it reads as a key, else quoted (and so bounded). */
function keyText(key: string): string {
  return /^[\w.-]{1,60}$/.test(key) ? key : quote(key);
}

function describeValue(raw: string, field: Field): string {
  return field.secret ? '(redacted)' : quote(raw);
}

/** Reads one group of raw values (already without prefix) against a field table. */
function readGroup(table: FieldTable, raw: Record<string, string>, keyPrefix: string, issues: Issues): Values {
  const values: Values = {};
  for (const [name, field] of Object.entries(table)) {
    const value = raw[name];
    if (value === undefined) {
      if (field.default !== undefined) values[name] = field.default;
      continue;
    }
    const parsed = field.schema.safeParse(value);
    if (parsed.success) values[name] = parsed.data;
    else issues.add(`${keyPrefix}${name}`, `got ${describeValue(value, field)}; allowed: ${field.allowed}`);
  }
  return values;
}

/** A trigger's value longer than its field takes is refused before it is parsed. */
function tooLong(key: string, value: string, field: Field, issues: Issues): boolean {
  const maxChars = field.maxChars ?? MAX_VALUE_CHARS;
  if (value.length <= maxChars) return false;
  issues.add(key, `got ${describeValue(value, field)}; allowed: ${field.allowed}, at most ${maxChars} characters`);
  return true;
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
      let name = rawKey.slice(dot + 1);
      if (name.endsWith('FromEnv') && table[name.slice(0, -'FromEnv'.length)]?.fromEnv) {
        name = name.slice(0, -'FromEnv'.length);
        if (metadata[`${prefix}.${name}`] !== undefined) {
          issues.add(rawKey, `set either ${prefix}.${name} or ${rawKey}, not both`);
          continue;
        }
      }
      if (!Object.hasOwn(table, name)) {
        issues.add(keyText(rawKey), unknownSourceKey[kind]);
        continue;
      }
      if (tooLong(rawKey, value, table[name]!, issues)) continue;
      const group = groups.get(kind) ?? {};
      group[name] = value;
      groups.set(kind, group);
    } else if (Object.hasOwn(scalingFields, rawKey)) {
      if (!tooLong(rawKey, value, (scalingFields as FieldTable)[rawKey]!, issues)) top[rawKey] = value;
    } else {
      issues.add(keyText(rawKey), unknownTopKey);
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
    return group;
  }
  return { ...profile, ...group };
}

function required(values: Values, key: string, name: string, issues: Issues, allowed: string): void {
  if (values[name] === undefined) issues.add(key, `is required; allowed: ${allowed}`);
}

function buildRabbitmq(v: Values, issues: Issues): RabbitmqSourceConfig {
  const f = sourceFields.rabbitmq;
  required(v, 'rabbitmq.host', 'host', issues, `${f.host.allowed} (or rabbitmq.hostFromEnv, or rabbitmq.connection)`);
  required(v, 'rabbitmq.queueName', 'queueName', issues, f.queueName.allowed);
  const host = (v.host as string | undefined) ?? '';
  const scheme = host.split(':')[0] ?? '';
  const schemeProtocol = scheme.startsWith('http') ? 'http' : 'amqp';
  let protocol = v.protocol as 'auto' | 'amqp' | 'http';
  if (protocol === 'auto') protocol = schemeProtocol;
  else if (host && protocol !== schemeProtocol) {
    issues.add('rabbitmq.protocol', `got "${protocol}" but rabbitmq.host is a ${scheme}:// URL; allowed: a host URL matching the protocol`);
  }
  if (v.excludeUnacknowledged === true && protocol === 'amqp') {
    issues.add('rabbitmq.excludeUnacknowledged', 'applies to protocol http only (amqp counts ready messages); allowed: false with amqp');
  }
  return {
    kind: 'rabbitmq',
    host,
    queueName: (v.queueName as string | undefined) ?? '',
    vhostName: v.vhostName as string | undefined,
    protocol,
    excludeUnacknowledged: v.excludeUnacknowledged as boolean,
  };
}

const awsRegionInUrl = /\bsqs[.-]([a-z]{2}(?:-gov)?-[a-z]+-\d)\.amazonaws\.com/;

function buildSqs(v: Values, issues: Issues, env: ParseOptions['env']): SqsSourceConfig {
  required(v, 'sqs.queueURL', 'queueURL', issues, `${sourceFields.sqs.queueURL.allowed} (or sqs.queueURLFromEnv)`);
  const queueURL = (v.queueURL as string | undefined) ?? '';
  const awsRegion =
    (v.awsRegion as string | undefined) ?? awsRegionInUrl.exec(queueURL)?.[1] ?? env?.AWS_REGION ?? env?.AWS_DEFAULT_REGION;
  if (queueURL && awsRegion === undefined) {
    issues.add('sqs.awsRegion', 'is required when the queue URL names no region; allowed: an AWS region such as eu-west-1');
  }
  return {
    kind: 'sqs',
    queueURL,
    awsRegion: awsRegion ?? '',
    awsEndpoint: v.awsEndpoint as string | undefined,
    scaleOnInFlight: v.scaleOnInFlight as boolean,
    scaleOnDelayed: v.scaleOnDelayed as boolean,
  };
}

function buildKafka(v: Values, issues: Issues): KafkaSourceConfig {
  const f = sourceFields.kafka;
  required(v, 'kafka.bootstrapServers', 'bootstrapServers', issues, f.bootstrapServers.allowed);
  required(v, 'kafka.consumerGroup', 'consumerGroup', issues, f.consumerGroup.allowed);
  if (v.sasl !== 'none') {
    required(v, 'kafka.username', 'username', issues, `${f.username.allowed} when kafka.sasl is ${String(v.sasl)}`);
    required(v, 'kafka.password', 'password', issues, `${f.password.allowed} when kafka.sasl is ${String(v.sasl)}`);
  }
  if ((v.cert === undefined) !== (v.key === undefined)) {
    issues.add(v.cert === undefined ? 'kafka.cert' : 'kafka.key', 'kafka.cert and kafka.key go together; allowed: both or neither');
  }
  if (v.tls !== 'enable') {
    // Certificates given without TLS would be silently ignored.
    for (const key of ['ca', 'cert', 'key'] as const) {
      if (v[key] !== undefined) issues.add(`kafka.${key}`, 'applies only with kafka.tls: enable; allowed: set kafka.tls to enable, or drop it');
    }
  }
  return {
    kind: 'kafka',
    bootstrapServers: (v.bootstrapServers as string[] | undefined) ?? [],
    topics: (v.topic as string[] | undefined) ?? [],
    consumerGroup: (v.consumerGroup as string | undefined) ?? '',
    offsetResetPolicy: v.offsetResetPolicy as 'latest' | 'earliest',
    allowIdleConsumers: v.allowIdleConsumers as boolean,
    scaleToZeroOnInvalidOffset: v.scaleToZeroOnInvalidOffset as boolean,
    sasl: v.sasl as KafkaSourceConfig['sasl'],
    username: v.username as string | undefined,
    password: v.password as string | undefined,
    tls: v.tls === 'enable',
    ca: v.ca as string | undefined,
    cert: v.cert as string | undefined,
    key: v.key as string | undefined,
    unsafeSsl: v.unsafeSsl as boolean,
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

function buildGpu(v: Values, issues: Issues): GpuSourceConfig {
  required(v, 'gpu.serverAddress', 'serverAddress', issues, sourceFields.gpu.serverAddress.allowed);
  let query = v.query as string | undefined;
  if (query === undefined) {
    if (v.namespace === undefined && v.podSelector === undefined) {
      issues.add('gpu.query', 'is required unless gpu.namespace or gpu.podSelector is set; allowed: a PromQL expression');
    }
    query = defaultGpuQuery(v.namespace as string | undefined, v.podSelector as string | undefined);
  } else if (v.namespace !== undefined || v.podSelector !== undefined) {
    issues.add('gpu.query', 'set either gpu.query or gpu.namespace/gpu.podSelector, not both');
  }
  if (v.bearerToken !== undefined && (v.username !== undefined || v.password !== undefined)) {
    issues.add('gpu.bearerToken', 'set either gpu.bearerToken or gpu.username/gpu.password (basic auth), not both');
  } else if ((v.username === undefined) !== (v.password === undefined)) {
    issues.add(v.username === undefined ? 'gpu.username' : 'gpu.password', 'gpu.username and gpu.password go together; allowed: both or neither');
  }
  return {
    kind: 'gpu',
    serverAddress: (v.serverAddress as string | undefined) ?? '',
    query,
    targetUtilization: v.targetUtilization as number,
    activationThreshold: v.activationThreshold as number,
    ignoreNullValues: v.ignoreNullValues as boolean,
    bearerToken: v.bearerToken as string | undefined,
    username: v.username as string | undefined,
    password: v.password as string | undefined,
    ca: v.ca as string | undefined,
    unsafeSsl: v.unsafeSsl as boolean,
  };
}

function buildScaling(v: Values, issues: Issues): ScalingConfig {
  const scaling = v as unknown as ScalingConfig;
  if (scaling.minReplicas !== undefined && scaling.maxReplicas !== undefined && scaling.minReplicas > scaling.maxReplicas) {
    issues.add('minReplicas', `got ${scaling.minReplicas}, above maxReplicas ${scaling.maxReplicas}; allowed: minReplicas <= maxReplicas`);
  }
  return { ...scaling, throughputPerReplica: v.throughputPerReplica as number | undefined };
}

function triggerId(name: string, namespace: string, metadata: Readonly<Record<string, string>>): string {
  const canonical = Object.entries(metadata)
    .filter(([k]) => !kedaKeys.has(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const hash = createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 12);
  return `${namespace}/${name}/${hash}`;
}

/** Parses and validates one trigger's metadata. Throws InvalidTrigger naming the first problems and counting all. */
export function parseTrigger(
  ref: { readonly name: string; readonly namespace: string; readonly metadata: Readonly<Record<string, string>> },
  options: ParseOptions = {},
): Trigger {
  const issues = new Issues();
  const { top, groups } = splitMetadata(ref.metadata, issues);
  const scaling = buildScaling(readGroup(scalingFields, top, '', issues), issues);
  const sources: SourceConfig[] = [];
  for (const [kind, rawGroup] of groups) {
    const group = withProfile(kind, rawGroup, options.profiles, issues);
    const values = readGroup(sourceFields[kind], group, `${kind}.`, issues);
    switch (kind) {
      case 'rabbitmq':
        sources.push(buildRabbitmq(values, issues));
        break;
      case 'sqs':
        sources.push(buildSqs(values, issues, options.env));
        break;
      case 'kafka':
        sources.push(buildKafka(values, issues));
        break;
      case 'gpu':
        sources.push(buildGpu(values, issues));
        break;
    }
  }
  if (groups.size === 0 && issues.total === 0) {
    issues.add('(trigger)', `no source; allowed: keys prefixed ${sourceKinds.map((k) => `${k}.`).join(', ')} (at least one source)`);
  }
  if (issues.total > 0) throw new InvalidTrigger(issues.list, issues.total);
  return {
    id: triggerId(ref.name, ref.namespace, ref.metadata),
    name: ref.name,
    namespace: ref.namespace,
    metricName: METRIC_NAME,
    sources,
    scaling,
  };
}
