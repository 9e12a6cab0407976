// Property-based fuzzing of trigger metadata (issue 16): FUZZ_RUNS generated maps (10,000 by
// default) through each of the five RPCs, over a real gRPC loopback connection to an in-process
// scaler whose sources point at a closed port (or at a Prometheus stand-in that answers). Every
// answer must be OK or INVALID_ARGUMENT naming a key and what is allowed, or, for the reads, the
// error of a source that cannot be reached: never INTERNAL, a crash, a hang, a value from a source
// that did not answer, or memory that keeps growing. FUZZ_SEED replays a run; the seed is printed.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createConnection } from 'node:net';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { loadConfig } from '../../src/config.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidTrigger, MAX_DETAILS_CHARS, quote } from '../../src/errors.ts';
import {
  type GetMetricSpecResponse,
  type GetMetricsResponse,
  type IsActiveResponse,
  ExternalScalerClient,
  type ScaledObjectRef,
  externalScalerService,
} from '../../src/server/protocol.ts';
import { toServiceError } from '../../src/server/status.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { kedaKeys } from '../../src/trigger/fields.ts';
import { parseTrigger } from '../../src/trigger/schema.ts';
import type { ConnectionProfiles, Trigger } from '../../src/trigger/types.ts';
import { type TestScaler, startTestScaler } from '../support/scaler.ts';
import { type Metadata, type Targets, goodValues, knownKeys, metadataArbitrary, refNames } from './arbitraries.ts';

/** Generated maps per RPC. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
/** Independent property loops run side by side (seeds SEED, SEED+1, ...): slow reads overlap. */
const LOOPS = 16;
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const SOURCE_TIMEOUT_MS = 1000;
/**
 * How long a stream for a valid trigger whose source cannot be read is watched: a RabbitMQ refusal
 * at a closed port comes within it, a Kafka or SQS one often does not (37, 396 and 54 ms measured),
 * so the watch proves no hang or crash more than the silence; that a failing source never streams
 * false is streamFailure.test.ts's (found by an audit).
 */
const STREAM_WATCH_MS = 60;

/** Bounds, measured on a loaded 2-core machine and set with margin (docs/reliability.md says how). */
const MAX_CALL_MS = 5000;
const MAX_HEAP_GROWTH_MB = 64;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Outcome {
  code: grpc.status;
  details: string;
  ms: number;
  /** IsActive's or StreamIsActive's first answer, GetMetrics' value, or the spec. */
  value?: unknown;
}

const OK_SPEC = { metricSpecs: [{ metricName: 'inference-desired-replicas', targetSize: 1, targetSizeFloat: 1 }] };

let closedPort: number;
let prometheus: http.Server;
let t: TestScaler;
let logBytes = 0;
const targets = {} as { -readonly [K in keyof Targets]: Targets[K] };
const profiles: ConnectionProfiles = {};

/** What the stand-in answers for a query: a fixed value per query (so cached readings agree), or no series. */
const standInValues = ['0', '0.5', '3', '17.25', '1e6', '1e300', 'none'];
function standIn(query: string): string {
  let h = 0;
  for (let i = 0; i < query.length; i++) h = (h * 31 + query.charCodeAt(i)) >>> 0;
  return standInValues[h % standInValues.length]!;
}

beforeAll(async () => {
  // Port 1 (tcpmux) is privileged and unused: a port 0 picked and closed again was taken by other
  // processes of this machine during a run, and answered.
  closedPort = 1;
  const probe = createConnection(closedPort, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    probe.once('connect', () => reject(new Error(`something listens on 127.0.0.1:${closedPort}`)));
    probe.once('error', () => resolve());
  });
  probe.destroy();
  prometheus = http.createServer((req, res) => {
    const value = standIn(new URL(req.url ?? '/', 'http://x').searchParams.get('query') ?? '');
    const result = value === 'none' ? [] : [{ metric: {}, value: [1, value] }];
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }));
  });
  await new Promise<void>((resolve) => prometheus.listen(0, '127.0.0.1', resolve));
  Object.assign(targets, { closedPort, prometheusPort: (prometheus.address() as AddressInfo).port, profile: 'main' });
  const closed = `127.0.0.1:${closedPort}`;
  Object.assign(profiles, {
    rabbitmq: { main: { host: `amqp://scaler:profile-secret@${closed}/` } },
    sqs: { main: { queueURL: `http://${closed}/000000000000/jobs`, awsRegion: 'eu-west-1' } },
    kafka: { main: { bootstrapServers: closed, consumerGroup: 'workers' } },
    gpu: { main: { serverAddress: `http://${closed}`, query: 'sum(up)' } },
  });
  // The SDK's default chain would otherwise look for credentials on the network (IMDS).
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'fuzz', AWS_SECRET_ACCESS_KEY: 'fuzz', AWS_EC2_METADATA_DISABLED: 'true' });
  // Every log line at every level is written (and thrown away): logging is on the fuzzed path too.
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logBytes += chunk.length;
      done();
    },
  });
  t = await startTestScaler(
    {
      SOURCE_TIMEOUT_MS,
      CACHE_TTL_MS: 1000,
      STREAM_INTERVAL_MS: 250,
      GRPC_MAX_RECEIVE_MESSAGE_BYTES: MAX_MESSAGE_BYTES,
      profiles,
    },
    { logger: createLogger('trace', sink) },
  );
  console.log(`fuzz: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS} (replay: FUZZ_SEED=${SEED} npm run test:fuzz)`);
});

afterAll(async () => {
  for (const client of streamClients) client.close();
  await t?.[Symbol.asyncDispose]();
  await new Promise<void>((resolve) => prometheus?.close(() => resolve()));
});

/** The largest message the scaler takes as it ships (GRPC_MAX_RECEIVE_MESSAGE_BYTES): past it, RESOURCE_EXHAUSTED before any handler runs. */
const MAX_MESSAGE_BYTES = loadConfig({}).GRPC_MAX_RECEIVE_MESSAGE_BYTES;

/** The ref as the server receives it, encoded and decoded by the service definition the server registers. */
function encoded(ref: ScaledObjectRef): { received: ScaledObjectRef; bytes: number } {
  const method = externalScalerService.IsActive!;
  const bytes = method.requestSerialize(ref);
  return { received: method.requestDeserialize(bytes) as ScaledObjectRef, bytes: bytes.length };
}

const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * The ref as the server receives it, and at most how many bytes it takes. Encoding costs as much as
 * the call itself, so only a ref the wire may change is encoded: one with a lone surrogate (UTF-8
 * makes it U+FFFD) or a size near the limit. (A "__proto__" key comes through as an own key.)
 */
function onTheWire(ref: ScaledObjectRef): { received: ScaledObjectRef; bytes: number } {
  let bytes = 16 + 3 * (ref.name.length + ref.namespace.length);
  let plain = true;
  for (const key in ref.scalerMetadata) {
    const value = ref.scalerMetadata[key]!;
    bytes += 16 + 3 * (key.length + value.length);
    plain &&= !loneSurrogate.test(key) && !loneSurrogate.test(value);
  }
  plain &&= !loneSurrogate.test(ref.name) && !loneSurrogate.test(ref.namespace);
  return plain && bytes <= MAX_MESSAGE_BYTES - 1024 ? { received: ref, bytes } : encoded(ref);
}

/** What the schema says about the metadata (the same parse the server makes), or the error it throws. */
function oracle(ref: ScaledObjectRef): Trigger | InvalidTrigger {
  try {
    return parseTrigger(
      { name: ref.name, namespace: ref.namespace, metadata: ref.scalerMetadata },
      { profiles, env: process.env },
    );
  } catch (err) {
    // Anything but InvalidTrigger is a bug in the schema: the server would answer INTERNAL.
    if (!(err instanceof InvalidTrigger)) throw err;
    return err;
  }
}

/**
 * The errors a read of the trigger may fail with, each source's own: a closed port UNAVAILABLE or
 * DEADLINE_EXCEEDED; the stand-in NOT_FOUND for a query without series under gpu.ignoreNullValues
 * false (with true, a workload never active reads as no work). Empty: every source answers, OK.
 */
/**
 * Whether a GPU query of the trigger matches no series under gpu.ignoreNullValues true: then another
 * trigger of its ScaledObject (namespace and name: the fuzzed refs share some) that answered active
 * says the workload runs, and the answer is NOT_FOUND (gpuSeries.ts) where alone it reads as no work.
 */
function gpuUnseenBesideSiblings(trigger: Trigger): boolean {
  return trigger.sources.some(
    (s) =>
      s.kind === 'gpu' &&
      s.serverAddress === `http://127.0.0.1:${targets.prometheusPort}` &&
      s.ignoreNullValues &&
      standIn(s.query) === 'none',
  );
}
const SIBLING_RAN = /before its settings were edited, was active/;

function readErrors(trigger: Trigger): Set<grpc.status> {
  const errors = new Set<grpc.status>();
  for (const s of trigger.sources) {
    if (s.kind !== 'gpu' || s.serverAddress !== `http://127.0.0.1:${targets.prometheusPort}`) {
      errors.add(grpc.status.UNAVAILABLE).add(grpc.status.DEADLINE_EXCEEDED);
    } else if (!s.ignoreNullValues && standIn(s.query) === 'none') errors.add(grpc.status.NOT_FOUND);
  }
  return errors;
}

function unary<Res>(method: string, request: unknown): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const fn = t.client.raw[method] as (
      req: unknown,
      opts: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res: Res) => void,
    ) => void;
    fn.call(t.client.raw, request, { deadline: Date.now() + 2 * MAX_CALL_MS }, (err, res) =>
      resolve({
        code: err ? err.code : grpc.status.OK,
        details: err ? err.details : '',
        ms: performance.now() - started,
        value: res,
      }),
    );
  });
}

/**
 * Streams per connection. The server's HTTP/2 layer (nghttp2's rapid-reset guard, CVE-2023-44487)
 * closes a connection on which the client cancels about 1,000 streams faster than 33 a second,
 * failing every call on it: the fuzz cancels each stream it opens, so it moves to a new connection
 * (its own subchannel) well before that. KEDA cancels a stream when a ScaledObject changes.
 */
const STREAMS_PER_CONNECTION = 400;
const streamClients: grpc.Client[] = [];
let streamsOnLast = 0;

function streamClient(): grpc.Client & Record<string, unknown> {
  if (streamClients.length === 0 || streamsOnLast >= STREAMS_PER_CONNECTION) {
    streamClients.push(
      new ExternalScalerClient(t.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
    );
    streamsOnLast = 0;
  }
  streamsOnLast++;
  return streamClients.at(-1) as grpc.Client & Record<string, unknown>;
}

/** Opens a stream, takes its first message or error, watches `watchMs` for one, then cancels it. */
function stream(method: 'StreamIsActive' | 'StreamMetricSpec', ref: ScaledObjectRef, watchMs: number): Promise<Outcome> {
  const started = performance.now();
  const client = streamClient();
  const call = (client[method] as (r: unknown) => grpc.ClientReadableStream<unknown>).call(client, ref);
  return new Promise((resolve) => {
    let done = false;
    const finish = (outcome: Omit<Outcome, 'ms'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      call.cancel();
      resolve({ ...outcome, ms: performance.now() - started });
    };
    const timer = setTimeout(() => finish({ code: grpc.status.OK, details: '(no message)' }), watchMs);
    call.on('data', (value: unknown) => finish({ code: grpc.status.OK, details: '', value }));
    call.on('error', (err: grpc.ServiceError) => finish({ code: err.code, details: err.details }));
  });
}

const schemaKeys = new Set(knownKeys().flatMap(([k, f]) => (f.fromEnv ? [k, `${k}FromEnv`] : [k])));

/**
 * The key an INVALID_ARGUMENT issue names: bare (a key that reads as one) or quoted as quote()
 * writes it, and where its value came from a connection profile, that profile after it.
 */
const namedKey =
  /^("(?:[^"\\]|\\.)*"(?:\.\.\. \(\d+ chars\))?|\(trigger\)|\(scaledObjectRef\.(?:name|namespace)\)|[\w.-]+)(?: \(from connection profile [\w.-]+\))?: /;

/** Checks an INVALID_ARGUMENT's details: what parsing says, short, each shown issue naming a key and what is allowed. */
function checkInvalid(outcome: Outcome, expected: InvalidTrigger, metadata: Metadata): void {
  expect(outcome.details).toBe(toServiceError(expected).details);
  expect(outcome.details.length).toBeLessThanOrEqual(MAX_DETAILS_CHARS);
  expect(outcome.details).toMatch(/^invalid trigger metadata: /);
  for (const issue of expected.issues) {
    const key = namedKey.exec(issue)?.[1];
    expect(key, issue).toBeDefined();
    const named =
      key === '(trigger)' ||
      key!.startsWith('(scaledObjectRef.') ||
      schemaKeys.has(key!) ||
      Object.hasOwn(metadata, key!) ||
      (key!.startsWith('"') && Object.keys(metadata).some((k) => quote(k) === key));
    expect(named, `${issue} names no key of the metadata or the schema`).toBe(true);
    expect(issue, 'says what is allowed').toMatch(/allowed/);
  }
}

type Rpc = 'GetMetricSpec' | 'GetMetrics' | 'IsActive' | 'StreamIsActive' | 'StreamMetricSpec';

/** One call and its checks. */
async function check(rpc: Rpc, names: { name: string; namespace: string }, metadata: Metadata, stats: Stats): Promise<void> {
  const ref: ScaledObjectRef = { ...names, scalerMetadata: metadata };
  const { received, bytes } = onTheWire(ref);
  metadata = received.scalerMetadata;
  const expected = oracle(received);
  const valid = !(expected instanceof InvalidTrigger);
  let outcome: Outcome;
  switch (rpc) {
    case 'GetMetricSpec':
      outcome = await unary<GetMetricSpecResponse>('GetMetricSpec', ref);
      break;
    case 'GetMetrics':
      outcome = await unary<GetMetricsResponse>('GetMetrics', { scaledObjectRef: ref, metricName: 'inference-desired-replicas' });
      break;
    case 'IsActive':
      outcome = await unary<IsActiveResponse>('IsActive', ref);
      break;
    default:
      // An answer is awaited (an error, a spec, a reading); silence only from a source that cannot be read.
      outcome = await stream(
        rpc,
        ref,
        valid && rpc === 'StreamIsActive' && (readErrors(expected).size > 0 || gpuUnseenBesideSiblings(expected))
          ? STREAM_WATCH_MS
          : MAX_CALL_MS,
      );
  }
  stats.add(outcome);
  const context = `${rpc} ${JSON.stringify(ref).slice(0, 400)} -> ${grpc.status[outcome.code]} ${outcome.details.slice(0, 300)}`;
  expect(outcome.ms, context).toBeLessThan(MAX_CALL_MS);
  // (GetMetrics wraps the ref: a few bytes more, never enough to cross the limit alone.)
  if (bytes > MAX_MESSAGE_BYTES - 1024) {
    if (grpc.status[outcome.code] === 'RESOURCE_EXHAUSTED') return;
    expect(bytes, context).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  }
  if (!valid) {
    expect(grpc.status[outcome.code], context).toBe('INVALID_ARGUMENT');
    checkInvalid(outcome, expected, metadata);
    return;
  }
  const errors = readErrors(expected);
  switch (rpc) {
    case 'GetMetricSpec':
    case 'StreamMetricSpec':
      expect(grpc.status[outcome.code], context).toBe('OK');
      expect(outcome.value, context).toEqual(OK_SPEC);
      return;
    case 'StreamIsActive':
      // A source that cannot be read sends nothing (never a false); sources that answer, the activity.
      expect(grpc.status[outcome.code], context).toBe('OK');
      if (errors.size === 0 && !(gpuUnseenBesideSiblings(expected) && outcome.details === '(no message)'))
        expect(outcome.value, context).toEqual({ result: expect.any(Boolean) });
      else expect(outcome.details, context).toBe('(no message)');
      return;
    default:
      if (errors.size > 0) {
        expect(errors.has(outcome.code), context).toBe(true);
        return;
      }
      // The stand-in answers at once, but on a loaded runner its answer may come after the source
      // timeout: DEADLINE_EXCEEDED then, and only after that long.
      if (outcome.code === grpc.status.DEADLINE_EXCEEDED && outcome.ms >= SOURCE_TIMEOUT_MS) return;
      if (outcome.code === grpc.status.NOT_FOUND && gpuUnseenBesideSiblings(expected)) {
        expect(outcome.details, context).toMatch(SIBLING_RAN);
        return;
      }
      expect(grpc.status[outcome.code], context).toBe('OK');
      if (rpc === 'IsActive') expect(outcome.value, context).toEqual({ result: expect.any(Boolean) });
      else checkMetric(outcome.value as GetMetricsResponse, expected, context);
  }
}

/** D is a whole number within minReplicas..maxReplicas, the int field its rounding (int64 saturates). */
function checkMetric(response: GetMetricsResponse, trigger: Trigger, context: string): void {
  expect(response.metricValues, context).toHaveLength(1);
  const { metricValue, metricValueFloat } = response.metricValues[0]!;
  expect(Number.isInteger(metricValueFloat), context).toBe(true);
  expect(metricValueFloat, context).toBeGreaterThanOrEqual(trigger.scaling.minReplicas);
  expect(metricValueFloat, context).toBeLessThanOrEqual(trigger.scaling.maxReplicas);
  expect(metricValue, context).toBe(Math.min(metricValueFloat, 2 ** 63));
}

class Stats {
  readonly codes = new Map<string, number>();
  readonly ms: number[] = [];
  add(o: Outcome): void {
    const name = grpc.status[o.code] ?? String(o.code);
    this.codes.set(name, (this.codes.get(name) ?? 0) + 1);
    this.ms.push(o.ms);
  }
  summary(): string {
    const sorted = [...this.ms].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1);
    const codes = [...this.codes]
      .sort(([, a], [, b]) => b - a)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');
    return `${sorted.length} calls; ms p50 ${at(0.5)} p99 ${at(0.99)} max ${sorted.at(-1)!.toFixed(1)}; ${codes}`;
  }
}

function memory() {
  gc();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapMb: heapUsed / 2 ** 20, rssMb: rss / 2 ** 20 };
}

const RPCS = ['GetMetricSpec', 'StreamMetricSpec', 'GetMetrics', 'IsActive', 'StreamIsActive'] as const;

async function fuzz(rpc: Rpc): Promise<void> {
  const stats = new Stats();
  const before = memory();
  const started = performance.now();
  const property = fc.asyncProperty(refNames, metadataArbitrary(targets), (names, metadata) =>
    check(rpc, names, metadata, stats),
  );
  const perLoop = Math.ceil(RUNS / LOOPS);
  // Each RPC its own corpus: SEED + LOOPS * (its index) + loop.
  const first = SEED + LOOPS * RPCS.indexOf(rpc);
  await Promise.all(Array.from({ length: LOOPS }, (_, i) => fc.assert(property, { numRuns: perLoop, seed: first + i })));
  const seconds = (performance.now() - started) / 1000;
  const after = memory();
  console.log(
    `fuzz ${rpc} (seeds ${first}..${first + LOOPS - 1}): ${stats.summary()}; ${seconds.toFixed(1)} s; ` +
      `heap ${before.heapMb.toFixed(0)} -> ${after.heapMb.toFixed(0)} MB, rss ${before.rssMb.toFixed(0)} -> ${after.rssMb.toFixed(0)} MB; ` +
      `cached sources ${t.scaler.engine.cache.size}; logs ${(logBytes / 2 ** 20).toFixed(1)} MB`,
  );
  expect(after.heapMb - before.heapMb).toBeLessThan(MAX_HEAP_GROWTH_MB);
}

describe('every known key has a generator of good values', () => {
  it('covers the schema', () => {
    const good = goodValues({ closedPort: 1, prometheusPort: 1, profile: 'main' });
    expect(
      knownKeys()
        .map(([k]) => k)
        .filter((k) => good[k] === undefined),
    ).toEqual([]);
    expect([...kedaKeys].length).toBeGreaterThan(0);
  });

  it('skips encoding only refs that the wire passes unchanged', () => {
    const corpus = fc.sample(fc.tuple(refNames, metadataArbitrary({ closedPort: 1, prometheusPort: 1, profile: 'main' })), {
      numRuns: 2000,
      seed: SEED,
    });
    for (const [names, metadata] of corpus) {
      const ref = { ...names, scalerMetadata: metadata };
      const real = encoded(ref);
      const shortcut = onTheWire(ref);
      expect({ ...shortcut.received, scalerMetadata: { ...shortcut.received.scalerMetadata } }).toEqual({
        ...real.received,
        scalerMetadata: { ...real.received.scalerMetadata },
      });
      expect(shortcut.bytes).toBeGreaterThanOrEqual(real.bytes);
    }
  });
});

describe(`fuzzed trigger metadata (${RUNS} maps per RPC)`, () => {
  it.each(RPCS)(
    '%s answers only OK, INVALID_ARGUMENT or an unreachable source, promptly and in bounded memory',
    (rpc) => fuzz(rpc),
    600_000,
  );
});
