// fast-check generators of trigger metadata, from the schema's own field tables: every known key
// with good values (pointing at nothing reachable, or at the test's own Prometheus stand-in) and
// with wrong ones, plus unknown, prototype and KEDA keys, unicode, 1,000-key maps and 100 KB values.
import fc from 'fast-check';
import { type Field, kedaKeys, scalingFields, sourceFields, sourceKinds } from '../../src/trigger/fields.ts';

export type Metadata = Record<string, string>;

export interface Targets {
  /** A loopback port where nothing listens: connections are refused at once. */
  readonly closedPort: number;
  /** A Prometheus stand-in on loopback that answers every query (gpu triggers that read OK). */
  readonly prometheusPort: number;
  /** Connection profiles the scaler under test knows, one per source kind. */
  readonly profile: string;
}

const KB_100 = 100 * 1024;
/** Precomputed 100 KB values: generating them char by char would cost more than the calls. */
const hugeValues = [
  'a'.repeat(KB_100),
  '9'.repeat(KB_100),
  `${'1'.repeat(KB_100)}.5`,
  '😀'.repeat(KB_100 / 4),
  `amqp://u:${'p'.repeat(KB_100)}@127.0.0.1:1/`,
  `http://127.0.0.1:1/${'%41'.repeat(KB_100 / 3)}`,
  ` ${'\t'.repeat(KB_100)} `,
  '%'.repeat(KB_100),
  `127.0.0.1:1,${'x:1,'.repeat(KB_100 / 4)}`,
];

/** Values that are wrong for nearly every typed key, and awkward for the others. */
const awkward = fc.constantFrom(
  '',
  ' ',
  '\t\n',
  'NaN',
  'nan',
  'Infinity',
  '-Infinity',
  '+Infinity',
  'inf',
  '-1',
  '-0',
  '0',
  '1e309',
  '-1e309',
  '1e-400',
  '0x10',
  '0b1',
  '0o7',
  '1_000',
  '1,5',
  '1.2.3',
  '.',
  'e5',
  '１２',
  '٣',
  '5 5',
  '9007199254740993',
  '1e308',
  'true',
  'false',
  'TRUE',
  'yes',
  'null',
  'undefined',
  '[]',
  '{}',
  '{"a":1}',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  '\u0000',
  '\u0000abc',
  '\uffff',
  '\ud800',
  '😀',
  'a'.repeat(8193),
  'amqp://',
  'http://',
  'http://[::1',
  'http://127.0.0.1:99999',
  '%',
  '%zz',
  '-----BEGIN CERTIFICATE-----',
  '${ENV}',
  'a\r\nb: c',
);

const unicodeText = fc.string({ unit: 'binary', maxLength: 40 });
const anyText = fc.oneof(
  { weight: 4, arbitrary: unicodeText },
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 2, arbitrary: awkward },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 100, maxLength: 2000 }) },
);

const num = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true }).map(String);
const int = (min: number, max: number) => fc.integer({ min, max }).map(String);
const positiveNumber = fc.oneof(int(1, 1000), num(1e-6, 1e6), fc.constantFrom('5.', '.5', '+3', ' 7 ', '1e3'));
const nonNegativeNumber = fc.oneof(positiveNumber, fc.constantFrom('0', '-0', '0.0'));
// Cold starts and objectives: at most 30 days.
const positiveSeconds = fc.oneof(int(1, 1000), num(1e-6, 86_400), fc.constantFrom('5.', '.5', '+3', ' 7 ', '1e3', '86400'));
const nonNegativeSeconds = fc.oneof(positiveSeconds, fc.constantFrom('0', '-0', '0.0'));
const positiveInt = fc.oneof(int(1, 1000), fc.constantFrom('1', '2.0', '1e3', '+4'));
const bool = fc.constantFrom('true', 'false', '1', '0', 'yes', 'no');
const name = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
  unicodeText.filter((s) => s.trim() !== ''),
);

/** URL user info and paths whose percent-escapes may be broken: what drivers decode. */
const userInfo = fc.oneof(
  fc.constantFrom('', 'u', 'user:pass', 'us%65r:p%40ss', 'u%zz:p', 'u:%', ':secret', 'a@b:c', 'u:%E0%A4%A'),
  fc.stringMatching(/^[a-zA-Z0-9%@:._~!$&'()*+,;=-]{0,12}$/),
);
const path = fc.oneof(
  fc.constantFrom('', '/', '/%2F', '/%', '/%zz', '/vhost', '//', '/a/b', '/%E0%A4%A', '/😀'),
  fc.stringMatching(/^(\/[a-zA-Z0-9%._~-]{0,8}){0,3}$/),
);
const query = fc.constantFrom('', '?heartbeat=5', '?a=%', '?x=1&y=2', '#frag');

function urlTo(schemes: readonly string[], host: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(fc.constantFrom(...schemes), userInfo, host, path, query)
    .map(([scheme, user, h, p, q]) => `${scheme}://${user === '' ? '' : `${user}@`}${h}${p}${q}`);
}

const pem = (label: string) =>
  fc.oneof(
    fc.constant(`-----BEGIN ${label}-----\nMIIBnotbase64!!\n-----END ${label}-----\n`),
    fc.base64String({ maxLength: 200 }).map((b) => `-----BEGIN ${label}-----\n${b}\n-----END ${label}-----\n`),
  );

/** Good values per key ("kind.name", or the name of a scaling key), pointing at nothing reachable. */
export function goodValues(t: Targets): Record<string, fc.Arbitrary<string>> {
  const closed = fc.constantFrom(`127.0.0.1:${t.closedPort}`, `[::1]:${t.closedPort}`, `localhost:${t.closedPort}`);
  const closedIp = fc.constantFrom(`127.0.0.1:${t.closedPort}`, `[::1]:${t.closedPort}`);
  const profile = fc.constant(t.profile);
  return {
    messagesPerReplica: positiveNumber,
    throughputPerReplica: positiveNumber,
    concurrencyPerReplica: positiveInt,
    consumersPerReplica: positiveInt,
    acknowledgement: fc.constantFrom('after-work', 'before-work'),
    coldStartSeconds: fc.oneof(fc.constant('auto'), nonNegativeSeconds),
    coldStartPriorSeconds: positiveSeconds,
    drainSeconds: positiveSeconds,
    lateRequestCost: nonNegativeNumber,
    activationBacklog: nonNegativeNumber,
    minReplicas: fc.constant('1'),
    maxReplicas: positiveInt,
    keepWarm: fc.oneof(fc.constant('auto'), nonNegativeNumber),

    'rabbitmq.connection': profile,
    'rabbitmq.host': urlTo(['amqp', 'amqps', 'http', 'https'], closedIp),
    'rabbitmq.queueName': name,
    'rabbitmq.vhostName': fc.oneof(fc.constantFrom('/', '', '%', 'a/b'), unicodeText),
    'rabbitmq.protocol': fc.constant('auto'),
    'rabbitmq.excludeUnacknowledged': fc.constant('false'),
    'rabbitmq.ca': pem('CERTIFICATE'),
    'rabbitmq.unsafeSsl': bool,

    'sqs.connection': profile,
    'sqs.queueURL': fc
      .tuple(closedIp, fc.oneof(name, fc.constantFrom('%', '%zz', 'q%20x')))
      .map(([h, q]) => `http://${h}/000000000000/${encodeURIComponent(q).replace(/%25/g, '%')}`),
    'sqs.awsRegion': fc.oneof(fc.constantFrom('eu-west-1', 'us-east-1'), name),
    'sqs.awsEndpoint': closedIp.map((h) => `http://${h}`),
    'sqs.scaleOnInFlight': bool,
    'sqs.scaleOnDelayed': bool,

    'kafka.connection': profile,
    'kafka.bootstrapServers': fc
      .array(fc.oneof(closed, fc.constantFrom('127.0.0.1:0', '127.0.0.1:65535', '127.0.0.1:99999')), {
        minLength: 1,
        maxLength: 3,
      })
      .map((l) => l.join(',')),
    'kafka.topic': fc.array(fc.stringMatching(/^[a-zA-Z0-9._-]{1,30}$/), { minLength: 1, maxLength: 3 }).map((l) => l.join(',')),
    'kafka.consumerGroup': name,
    'kafka.offsetResetPolicy': fc.constantFrom('latest', 'earliest'),
    'kafka.commitIntervalSeconds': fc.oneof(int(0, 30), num(0, 30), fc.constantFrom('5.', '.5', '+3', ' 7 ', '0', '-0')),
    'kafka.allowIdleConsumers': bool,
    'kafka.scaleToZeroOnInvalidOffset': bool,
    'kafka.sasl': fc.constant('none'),
    'kafka.username': name,
    'kafka.password': name,
    'kafka.tls': fc.constant('disable'),
    'kafka.ca': pem('CERTIFICATE'),
    'kafka.cert': pem('CERTIFICATE'),
    'kafka.key': pem('PRIVATE KEY'),
    'kafka.unsafeSsl': bool,

    'gpu.connection': profile,
    'gpu.serverAddress': urlTo(['http', 'https'], closedIp),
    'gpu.query': fc.oneof(
      fc.constantFrom('sum(up)', 'vector(1)', 'x{a="b"}'),
      unicodeText.filter((s) => s.trim() !== ''),
    ),
    'gpu.namespace': name,
    'gpu.podSelector': name,
    'gpu.targetUtilization': fc.oneof(num(1e-6, 1), fc.constant('1')),
    'gpu.activationThreshold': nonNegativeNumber,
    'gpu.ignoreNullValues': bool,
    'gpu.bearerToken': fc.stringMatching(/^[A-Za-z0-9._~+/-]{1,40}=*$/),
    'gpu.username': name,
    'gpu.password': name,
    // Names apart in any case: a name twice is refused.
    'gpu.customHeaders': fc
      .uniqueArray(fc.tuple(fc.stringMatching(/^X-[A-Za-z0-9-]{1,20}$/), fc.stringMatching(/^[A-Za-z0-9 |._-]{0,30}$/)), {
        minLength: 1,
        maxLength: 4,
        selector: ([header]) => header.toLowerCase(),
      })
      .map((pairs) => pairs.map(([header, value]) => `${header}=${value}`).join(',')),
    'gpu.ca': pem('CERTIFICATE'),
    'gpu.unsafeSsl': bool,
  };
}

/** Every key the schema knows, as "kind.name" or a scaling key's name, with its field. */
export function knownKeys(): [string, Field][] {
  return [
    ...Object.entries(scalingFields as Record<string, Field>),
    ...sourceKinds.flatMap((kind) =>
      Object.entries(sourceFields[kind] as Record<string, Field>).map(([n, f]): [string, Field] => [`${kind}.${n}`, f]),
    ),
  ];
}

/** A known key's value: mostly good, else wrong in some way. */
function valueFor(key: string, good: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<string> {
  return fc.oneof({ weight: 3, arbitrary: good[key]! }, { weight: 1, arbitrary: anyText });
}

/** The key as sent: `<key>FromEnv` for some keys that allow it (KEDA resolved the value, the key keeps its name). */
function keyVariant(key: string, field: Field): fc.Arbitrary<string> {
  return field.fromEnv ? fc.constantFrom(key, key, `${key}FromEnv`) : fc.constant(key);
}

/** Known keys, each present or not, each value good or wrong: the bulk of the corpus. */
function shaped(good: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<Metadata> {
  const entries = knownKeys().map(([key, field]) =>
    fc.option(fc.tuple(keyVariant(key, field), valueFor(key, good)), { nil: undefined, freq: 3 }),
  );
  return fc.tuple(...entries).map((pairs) => Object.fromEntries(pairs.filter((p) => p !== undefined)));
}

/** Required keys for each source, and some optional ones, all good: a trigger the schema takes. */
function valid(t: Targets, good: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<Metadata> {
  const table = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, good[k]!]));
  const pick = (...keys: string[]) => fc.record(table(keys)) as fc.Arbitrary<Metadata>;
  const optional = (...keys: string[]) => fc.record(table(keys), { requiredKeys: [] }) as fc.Arbitrary<Metadata>;
  const groups: Record<string, fc.Arbitrary<Metadata>> = {
    rabbitmq: fc
      .tuple(pick('rabbitmq.host', 'rabbitmq.queueName'), optional('rabbitmq.vhostName', 'rabbitmq.protocol'))
      .map(([a, b]) => ({ ...a, ...b })),
    rabbitmqProfile: pick('rabbitmq.connection', 'rabbitmq.queueName'),
    sqs: fc
      .tuple(pick('sqs.queueURL', 'sqs.awsRegion'), optional('sqs.awsEndpoint', 'sqs.scaleOnInFlight', 'sqs.scaleOnDelayed'))
      .map(([a, b]) => ({ ...a, ...b })),
    kafka: fc
      .tuple(
        pick('kafka.bootstrapServers', 'kafka.consumerGroup'),
        optional('kafka.topic', 'kafka.offsetResetPolicy', 'kafka.allowIdleConsumers', 'kafka.scaleToZeroOnInvalidOffset'),
        fc.option(
          fc
            .tuple(good['kafka.ca']!, good['kafka.cert']!, good['kafka.key']!, good['kafka.unsafeSsl']!)
            .map(([ca, cert, key, unsafe]) => ({
              'kafka.tls': 'enable',
              'kafka.ca': ca,
              'kafka.cert': cert,
              'kafka.key': key,
              'kafka.unsafeSsl': unsafe,
            })),
          { nil: {} },
        ),
        fc.option(
          fc
            .tuple(fc.constantFrom('plain', 'scram_sha256', 'scram_sha512'), good['kafka.username']!, good['kafka.password']!)
            .map(([sasl, username, password]) => ({
              'kafka.sasl': sasl,
              'kafka.username': username,
              'kafka.password': password,
            })),
          { nil: {} },
        ),
      )
      .map((parts) => Object.assign({}, ...parts) as Metadata),
    gpu: fc
      .tuple(
        pick('gpu.serverAddress', 'gpu.query'),
        optional(
          'gpu.targetUtilization',
          'gpu.activationThreshold',
          'gpu.ignoreNullValues',
          'gpu.unsafeSsl',
          'gpu.ca',
          'gpu.customHeaders',
        ),
        fc.option(fc.oneof(pick('gpu.bearerToken'), pick('gpu.username', 'gpu.password')), { nil: {} }),
      )
      .map((parts) => Object.assign({}, ...parts) as Metadata),
    // Reads OK: the stand-in Prometheus answers, so GetMetrics and IsActive give a value.
    gpuReachable: fc
      .tuple(
        good['gpu.query']!,
        optional('gpu.targetUtilization', 'gpu.activationThreshold', 'gpu.ignoreNullValues'),
        optional(
          'messagesPerReplica',
          'coldStartSeconds',
          'coldStartPriorSeconds',
          'drainSeconds',
          'lateRequestCost',
          'maxReplicas',
          'keepWarm',
          'acknowledgement',
        ),
      )
      .map(([q, a, b]) => ({ 'gpu.serverAddress': `http://127.0.0.1:${t.prometheusPort}`, 'gpu.query': q, ...a, ...b })),
  };
  return fc
    .tuple(
      fc
        .subarray(Object.keys(groups), { minLength: 1, maxLength: 2 })
        .chain((kinds) => fc.tuple(...kinds.map((k) => groups[k]!))),
      optional(...Object.keys(scalingFields).filter((k) => k !== 'minReplicas')),
      fc.option(
        fc.constantFrom(...kedaKeys).map((k) => ({ [k]: 'x' })),
        { nil: {} },
      ),
    )
    .map(([sources, scaling, keda]) => {
      const out = Object.assign({}, ...sources, scaling, keda) as Metadata;
      // Two RabbitMQ groups chosen together merge into one source: a profile then stands for the host.
      if (out['rabbitmq.connection'] !== undefined) delete out['rabbitmq.host'];
      // Two GPU groups likewise: the reachable one's address wins, so no query mixes with it.
      return out;
    });
}

const prototypeKeyNames = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'];

/** Keys that name Object.prototype's members, bare, under each prefix, and as FromEnv. */
function prototypeKeys(good: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<Metadata> {
  const keys = [
    ...prototypeKeyNames,
    ...sourceKinds.flatMap((k) => prototypeKeyNames.flatMap((p) => [`${k}.${p}`, `${k}.${p}FromEnv`])),
  ];
  return fc
    .tuple(fc.subarray(keys, { minLength: 1, maxLength: 6 }), fc.option(shaped(good), { nil: {} }), anyText)
    .map(([names, base, value]) => ({ ...base, ...Object.fromEntries(names.map((k) => [k, value])) }));
}

/** Random keys and values: unicode, empty, dotted like ours. */
const wild = fc.dictionary(
  fc.oneof(
    unicodeText,
    fc.constantFrom('', '.', 'rabbitmq.', '.rabbitmq', 'gpu..query', 'RABBITMQ.host', 'rabbitmq.Host', 'kafka.topicFromEnv'),
    fc.tuple(fc.constantFrom(...sourceKinds), unicodeText).map(([k, n]) => `${k}.${n}`),
  ),
  anyText,
  { maxKeys: 12 },
);

/** Up to 1,000 keys: unknown ones, or known ones with wrong values after a good trigger. */
function manyKeys(t: Targets, good: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<Metadata> {
  return fc
    .tuple(fc.integer({ min: 200, max: 1000 }), fc.constantFrom('k', 'rabbitmq.k', 'gpu.', '😀'), valid(t, good), anyText)
    .map(([n, prefix, base, value]) => {
      const out: Metadata = { ...base };
      for (let i = 0; i < n; i++) out[`${prefix}${i}`] = value;
      return out;
    });
}

/** A known key (or any key) with a 100 KB value. */
function hugeValue(good: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<Metadata> {
  const keys = [...knownKeys().map(([k]) => k), 'unknownKey', 'rabbitmq.hostFromEnv', 'gpu.caFromEnv'];
  return fc
    .tuple(fc.option(shaped(good), { nil: {} }), fc.constantFrom(...keys), fc.constantFrom(...hugeValues), fc.boolean())
    .map(([base, key, value, hugeKey]) => ({ ...base, [hugeKey ? value.slice(0, 2000) + key : key]: value }));
}

/** The whole corpus, weighted so that large maps are a small share of the calls (they cost the most). */
export function metadataArbitrary(t: Targets): fc.Arbitrary<Metadata> {
  const good = goodValues(t);
  return fc.oneof(
    { weight: 40, arbitrary: shaped(good) },
    { weight: 30, arbitrary: valid(t, good) },
    { weight: 12, arbitrary: wild },
    { weight: 10, arbitrary: prototypeKeys(good) },
    { weight: 4, arbitrary: manyKeys(t, good) },
    { weight: 4, arbitrary: hugeValue(good) },
  );
}

/** A name past what Kubernetes allows, up to 200 KB (found by review: kept whole, they filled the heap). */
const longName = (from: number) => fc.integer({ min: from, max: 200_000 }).map((n) => 'x'.repeat(n));

/** What KEDA sends beside the metadata: the ScaledObject's name and namespace, sometimes odd. */
export const refNames = fc.record({
  name: fc.oneof(
    { weight: 16, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/) },
    { weight: 2, arbitrary: anyText },
    { weight: 1, arbitrary: longName(254) },
  ),
  namespace: fc.oneof(
    { weight: 16, arbitrary: fc.constantFrom('default', 'ml') },
    { weight: 2, arbitrary: anyText },
    { weight: 1, arbitrary: longName(64) },
  ),
});
