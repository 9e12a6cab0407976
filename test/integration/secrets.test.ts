// Credentials in every form a trigger or the scaler's configuration can carry them (URL passwords,
// ...FromEnv, connection profiles, Kafka SASL and client keys, Prometheus bearer and basic auth,
// AWS keys, the state store's URL), read against the real services, and wrong or unreachable too.
// The scaler runs as a process at LOG_LEVEL=trace; afterwards no secret, nor its URL-encoded or
// base64 form, may appear in its output, a gRPC error detail, /metrics, /explain or the explain CLI.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScaledObjectRef } from '../../src/server/protocol.ts';
import { secureKafka } from '../support/kafka.ts';
import { ScalerProcess } from '../support/process.ts';
import { RabbitFixture } from '../support/rabbitmq.ts';
import { requireService, services } from '../support/scaler.ts';
import { SqsFixture, useLocalAwsCredentials } from '../support/sqs.ts';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../bin/keda-inference-scaler.mjs', import.meta.url));

const tag = randomUUID().slice(0, 8);
/** Distinctive secrets, one per form; some with characters that URL-encoding changes. */
const secret = {
  amqp: `zqAmqpOk/${tag}+pw=`,
  amqpWrong: `zqAmqpWrong-${tag}`,
  amqpFromEnv: `zqAmqpFromEnv-${tag}`,
  /** Written raw in the URL, as people do: the URL parser takes the last @ as the end of the user info. */
  amqpRawAt: `zqRaw@AmqpTail-${tag}`,
  management: `zqMgmtWrong-${tag}`,
  profileHost: `zqProfileHost-${tag}`,
  saslWrong: `zqSaslWrong-${tag}`,
  saslUnreachable: `zqSaslUnreach-${tag}`,
  saslProfileEnv: `zqSaslProfEnv-${tag}`,
  bearer: `zqBearer.${tag}~tok`,
  bearerUnreachable: `zqBearerUnreach-${tag}`,
  basic: `zqBasic:${tag}!`,
  promUrl: `zqPromUrl-${tag}`,
  promProfileEnv: `zqPromProfEnv-${tag}`,
  invalidHost: `zqInvalidHost-${tag}`,
  invalidToken: `zqInvalid Token-${tag}`,
  invalidPromUrl: `zqInvalidPromUrl-${tag}`,
  /** Raw in URLs that do not parse: no parser can say where their passwords end. */
  invalidRawAt: `zqInvRaw@InvTail-${tag}`,
  invalidRawSlash: `zqInvSlash/SlashTail-${tag}`,
  emailUser: `zqEmailUser-${tag}`,
  aws: `zqAwsSecretKey-${tag}`,
  /** In an endpoint URL (a proxy's credentials): the client's debug line logged it whole until 2026-12-06. */
  sqsEndpoint: `zqSqsEndpoint-${tag}`,
  store: `zqStore-${tag}`,
  header: `zqHeaderKey-${tag}`,
  headerInvalid: `zqHeaderInvalid-${tag}`,
};
/** What leaks when a password written raw is masked only up to its first "@", or not at all at a "/". */
const rawTails = [`AmqpTail-${tag}`, `InvTail-${tag}`, `SlashTail-${tag}`];

const amqpUser = `kis-secrets-${tag}`;
const NS = 'secrets';

let scaler: ScalerProcess;
let rabbit: RabbitFixture;
let sqs: SqsFixture;
let configDir: string;
let kafkaSecrets: { password: string; keyLines: string[] };
/** The triggers driven, each with the code its reads must answer. */
let cases: { name: string; metadata: Record<string, string>; read: keyof typeof grpc.status }[];
/** Everything the scaler said to its clients, per sink. */
const said = { grpc: [] as string[], metrics: '', explain: '', cli: [] as string[] };

const management = () => {
  const url = new URL(requireService('RABBITMQ_MANAGEMENT_URL'));
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  return { base: `${url.protocol}//${url.host}`, auth, host: url.host };
};

/** A RabbitMQ user of the test's own with a distinctive password, so that a read with it succeeds. */
async function rabbitUser(method: 'PUT' | 'DELETE'): Promise<void> {
  const { base, auth } = management();
  const send = async (path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok && method === 'PUT') throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  };
  if (method === 'PUT') {
    await send(`/api/users/${amqpUser}`, { password: secret.amqp, tags: 'management' });
    await send(`/api/permissions/%2F/${amqpUser}`, { configure: '.*', write: '.*', read: '.*' });
  } else {
    await send(`/api/users/${amqpUser}`);
  }
}

beforeAll(async () => {
  const env = services();
  const secure = secureKafka(env);
  kafkaSecrets = {
    password: secure.password,
    // Lines from the body of the client's private key: any one of them in the output is a leak.
    keyLines: secure.clientKey.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----')),
  };
  rabbit = await RabbitFixture.connect(requireService('RABBITMQ_URL'));
  await rabbitUser('PUT');
  useLocalAwsCredentials();
  sqs = new SqsFixture(requireService('SQS_ENDPOINT'));

  const amqp = new URL(requireService('RABBITMQ_URL'));
  const mgmt = management();
  const prometheus = requireService('PROMETHEUS_URL');
  const promHost = new URL(prometheus).host;
  const queue = await rabbit.queue(3, 'kis-secrets');
  const sqsQueue = await sqs.queue('kis-secrets');
  const enc = encodeURIComponent;
  const closed = '127.0.0.1:1';

  configDir = mkdtempSync(join(tmpdir(), 'kis-secrets-'));
  const configFile = join(configDir, 'config.yaml');
  writeFileSync(
    configFile,
    [
      'connections:',
      '  rabbitmq:',
      `    prof: { host: "amqp://scaler:${enc(secret.profileHost)}@${closed}/" }`,
      '  kafka:',
      `    prof: { bootstrapServers: "${secure.saslBrokers}", sasl: plain, username: "${secure.username}", passwordFromEnv: KIS_SASL_PASSWORD }`,
      '  gpu:',
      `    prof: { serverAddress: "${prometheus}", username: promuser, passwordFromEnv: KIS_PROM_PASSWORD }`,
    ].join('\n'),
  );

  const rabbitCase = (name: string, host: string, read: keyof typeof grpc.status, extra: Record<string, string> = {}) => ({
    name,
    metadata: { 'rabbitmq.host': host, 'rabbitmq.queueName': queue, keepWarm: '0', ...extra },
    read,
  });
  const group = `kis-secrets-none-${tag}`;
  const kafkaCase = (name: string, read: keyof typeof grpc.status, extra: Record<string, string>) => ({
    name,
    metadata: { 'kafka.consumerGroup': group, 'kafka.topic': 'kis-secrets-none', ...extra },
    read,
  });
  const gpuCase = (name: string, read: keyof typeof grpc.status, extra: Record<string, string>) => ({
    name,
    metadata: { 'gpu.serverAddress': prometheus, 'gpu.query': 'vector(0.25)', ...extra },
    read,
  });
  cases = [
    rabbitCase('amqp-ok', `amqp://${amqpUser}:${enc(secret.amqp)}@${amqp.host}/`, 'OK'),
    rabbitCase('amqp-wrong-password', `amqp://guest:${enc(secret.amqpWrong)}@${amqp.host}/`, 'UNAUTHENTICATED'),
    {
      name: 'amqp-from-env',
      metadata: { 'rabbitmq.hostFromEnv': `amqp://scaler:${enc(secret.amqpFromEnv)}@${closed}/`, 'rabbitmq.queueName': queue },
      read: 'UNAVAILABLE',
    },
    rabbitCase('amqp-raw-at', `amqp://scaler:${secret.amqpRawAt}@${closed}/`, 'UNAVAILABLE'),
    rabbitCase('amqp-email-user', `amqp://alice@corp.example:${secret.emailUser}@${closed}/`, 'UNAVAILABLE'),
    rabbitCase('management-ok', `http://${amqpUser}:${enc(secret.amqp)}@${mgmt.host}/`, 'OK', { 'rabbitmq.protocol': 'http' }),
    rabbitCase('management-wrong-password', `http://guest:${enc(secret.management)}@${mgmt.host}/`, 'UNAUTHENTICATED'),
    { name: 'rabbitmq-profile', metadata: { 'rabbitmq.connection': 'prof', 'rabbitmq.queueName': queue }, read: 'UNAVAILABLE' },
    kafkaCase('sasl-ok', 'NOT_FOUND', {
      'kafka.bootstrapServers': secure.saslBrokers,
      'kafka.sasl': 'scram_sha512',
      'kafka.username': secure.username,
      'kafka.password': secure.password,
    }),
    kafkaCase('sasl-wrong-password', 'UNAUTHENTICATED', {
      'kafka.bootstrapServers': secure.saslBrokers,
      'kafka.sasl': 'plain',
      'kafka.username': secure.username,
      'kafka.password': secret.saslWrong,
    }),
    kafkaCase('sasl-unreachable', 'UNAVAILABLE', {
      'kafka.bootstrapServers': closed,
      'kafka.sasl': 'scram_sha256',
      'kafka.username': 'scaler',
      'kafka.passwordFromEnv': secret.saslUnreachable,
    }),
    kafkaCase('sasl-profile', 'UNAUTHENTICATED', { 'kafka.connection': 'prof' }),
    kafkaCase('mtls-key', 'NOT_FOUND', {
      'kafka.bootstrapServers': secure.tlsBrokers,
      'kafka.tls': 'enable',
      'kafka.ca': secure.ca,
      'kafka.cert': secure.clientCert,
      'kafka.key': secure.clientKey,
    }),
    gpuCase('bearer', 'OK', { 'gpu.bearerToken': secret.bearer }),
    gpuCase('basic', 'OK', { 'gpu.username': 'promuser', 'gpu.password': secret.basic }),
    gpuCase('url-password', 'OK', { 'gpu.serverAddress': `http://promuser:${enc(secret.promUrl)}@${promHost}` }),
    { name: 'gpu-profile', metadata: { 'gpu.connection': 'prof', 'gpu.query': 'vector(0.25)' }, read: 'OK' },
    // The profile's password goes only to the profile's server: another address is refused.
    gpuCase('gpu-profile-elsewhere', 'INVALID_ARGUMENT', { 'gpu.connection': 'prof', 'gpu.serverAddress': `http://${closed}` }),
    gpuCase('bearer-unreachable', 'UNAVAILABLE', {
      'gpu.serverAddress': `http://${closed}`,
      'gpu.bearerTokenFromEnv': secret.bearerUnreachable,
    }),
    gpuCase('bearer-bad-query', 'INVALID_ARGUMENT', { 'gpu.bearerToken': secret.bearer, 'gpu.query': 'sum(' }),
    // A gateway's key in a custom header (Prometheus itself ignores it), and one refused by the schema.
    gpuCase('custom-headers', 'OK', { 'gpu.customHeaders': `X-Scope-OrgID=ml,X-Api-Key=${secret.header}` }),
    gpuCase('custom-headers-refused', 'INVALID_ARGUMENT', {
      'gpu.customHeaders': `Authorization=Bearer ${secret.headerInvalid}`,
    }),
    {
      name: 'sqs-ok',
      metadata: { 'sqs.queueURL': sqsQueue, 'sqs.awsRegion': 'us-east-1', 'sqs.awsEndpoint': requireService('SQS_ENDPOINT') },
      read: 'OK',
    },
    {
      name: 'sqs-unreachable',
      metadata: { 'sqs.queueURL': `http://${closed}/000000000000/jobs`, 'sqs.awsRegion': 'eu-west-1' },
      read: 'UNAVAILABLE',
    },
    {
      name: 'sqs-endpoint-password',
      metadata: {
        'sqs.queueURL': 'https://sqs.eu-west-1.amazonaws.com/000000000000/jobs',
        'sqs.awsRegion': 'eu-west-1',
        'sqs.awsEndpoint': `http://proxyuser:${enc(secret.sqsEndpoint)}@${closed}`,
      },
      read: 'UNAVAILABLE',
    },
    // Refused by the schema: the issue quotes the value of a key that is not a secret, masked.
    rabbitCase('invalid-host', `ftp://scaler:${enc(secret.invalidHost)}@${closed}/`, 'INVALID_ARGUMENT'),
    gpuCase('invalid-token', 'INVALID_ARGUMENT', { 'gpu.bearerToken': secret.invalidToken }),
    gpuCase('invalid-prom-url', 'INVALID_ARGUMENT', {
      'gpu.serverAddress': `http://promuser:${enc(secret.invalidPromUrl)}@prom:notaport`,
    }),
    gpuCase('invalid-prom-url-raw-at', 'INVALID_ARGUMENT', {
      'gpu.serverAddress': `http://promuser:${secret.invalidRawAt}@prom:notaport`,
    }),
    gpuCase('invalid-prom-url-raw-slash', 'INVALID_ARGUMENT', {
      'gpu.serverAddress': `http://promuser:${secret.invalidRawSlash}@prom:9090`,
    }),
    {
      name: 'invalid-sqs-email-user',
      metadata: {
        'sqs.queueURL': `ftp://alice@corp.example:${secret.emailUser}@${closed}/000000000000/jobs`,
        'sqs.awsRegion': 'eu-west-1',
      },
      read: 'INVALID_ARGUMENT',
    },
  ];

  scaler = await ScalerProcess.start({
    LOG_LEVEL: 'trace',
    CONFIG_FILE: configFile,
    KIS_SASL_PASSWORD: secret.saslProfileEnv,
    KIS_PROM_PASSWORD: secret.promProfileEnv,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: secret.aws,
    AWS_EC2_METADATA_DISABLED: 'true',
    STATE_STORE_URL: `redis://:${enc(secret.store)}@${new URL(requireService('STATE_STORE_URL')).host}`,
    SOURCE_TIMEOUT_MS: '5000',
    STREAM_INTERVAL_MS: '250',
  });
}, 120_000);

afterAll(async () => {
  await scaler?.[Symbol.asyncDispose]();
  await rabbitUser('DELETE').catch(() => undefined);
  await rabbit?.[Symbol.asyncDispose]();
  await sqs?.[Symbol.asyncDispose]();
  if (configDir !== undefined) rmSync(configDir, { recursive: true, force: true });
});

const ref = (c: (typeof cases)[number]): ScaledObjectRef => ({
  name: c.name.split('-')[0]!,
  namespace: NS,
  scalerMetadata: c.metadata,
});

/** A unary call's outcome: its code, and what it sent (details, or the answer). */
async function call(method: 'GetMetricSpec' | 'GetMetrics' | 'IsActive', request: unknown): Promise<keyof typeof grpc.status> {
  const fn = scaler.client.raw[method] as (
    req: unknown,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res: unknown) => void,
  ) => void;
  return new Promise((resolve) => {
    fn.call(scaler.client.raw, request, { deadline: Date.now() + 20_000 }, (err, res) => {
      said.grpc.push(
        err ? `${method} ${err.details} ${JSON.stringify(err.metadata.toJSON())}` : `${method} ${JSON.stringify(res)}`,
      );
      resolve(grpc.status[err ? err.code : grpc.status.OK] as keyof typeof grpc.status);
    });
  });
}

/** A stream's messages and error over `ms`, then cancelled. */
function stream(method: 'StreamIsActive' | 'StreamMetricSpec', request: ScaledObjectRef, ms: number): Promise<void> {
  const call = (scaler.client.raw[method] as (r: unknown) => grpc.ClientReadableStream<unknown>).call(scaler.client.raw, request);
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      call.cancel();
      resolve();
    };
    const timer = setTimeout(done, ms);
    call.on('data', (value: unknown) => said.grpc.push(`${method} ${JSON.stringify(value)}`));
    call.on('error', (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) said.grpc.push(`${method} ${err.details} ${JSON.stringify(err.metadata.toJSON())}`);
      done();
    });
  });
}

/**
 * Each secret as it may be written: as is, URL-encoded, base64, and in a basic-auth header; and the
 * test's secrets by their heads ("zqEmailUser-"), which a quote cut at 60 characters keeps.
 */
function needles(): { name: string; text: string }[] {
  const out: { name: string; text: string }[] = [];
  const add = (name: string, text: string, user?: string) => {
    out.push({ name, text }, { name: `${name} (URL-encoded)`, text: encodeURIComponent(text) });
    const head = text.split(tag)[0]!;
    if (head.startsWith('zq'))
      out.push(
        { name: `${name} (its head)`, text: head },
        { name: `${name} (its head, URL-encoded)`, text: encodeURIComponent(head) },
      );
    out.push({ name: `${name} (base64)`, text: Buffer.from(text).toString('base64') });
    if (user !== undefined) out.push({ name: `${name} (basic auth)`, text: Buffer.from(`${user}:${text}`).toString('base64') });
  };
  for (const [name, text] of Object.entries(secret)) add(name, text, name === 'amqp' ? amqpUser : 'promuser');
  for (const tail of rawTails) out.push({ name: `the part of a raw password after its @ or /: ${tail}`, text: tail });
  add('kafka SASL password', kafkaSecrets.password, secureKafka(services()).username);
  kafkaSecrets.keyLines.forEach((line, i) => out.push({ name: `kafka client key, line ${i + 1}`, text: line }));
  return out;
}

function leaks(text: string): string[] {
  return needles()
    .filter((n) => text.includes(n.text))
    .map((n) => n.name);
}

describe('credentials never leave the scaler', () => {
  it('drives every RPC for every trigger, reads answering as the services do', { timeout: 240_000 }, async () => {
    const reads: Record<string, string[]> = {};
    // In turn: 20-odd triggers at once would each wait out the others' timeouts on a 2-core runner.
    for (const c of cases) {
      const r = ref(c);
      const spec = await call('GetMetricSpec', r);
      const metrics = await call('GetMetrics', { scaledObjectRef: r, metricName: 'inference-desired-replicas' });
      const active = await call('IsActive', r);
      await stream('StreamMetricSpec', r, 300);
      await stream('StreamIsActive', r, 600);
      reads[c.name] = [metrics, active];
      expect(spec, c.name).toBe(c.read === 'INVALID_ARGUMENT' && c.name !== 'bearer-bad-query' ? 'INVALID_ARGUMENT' : 'OK');
    }
    expect(reads).toEqual(Object.fromEntries(cases.map((c) => [c.name, [c.read, c.read]])));
    said.metrics = await scaler.metrics();
    const explain = await fetch(`http://127.0.0.1:${scaler.metricsPort}/explain`);
    said.explain = await explain.text();
    for (const name of new Set(cases.map((c) => ref(c).name))) {
      for (const json of [[], ['--json']]) {
        const args = [
          cli,
          'explain',
          '--url',
          `http://127.0.0.1:${scaler.metricsPort}`,
          '--namespace',
          NS,
          '--name',
          name,
          ...json,
        ];
        const out = await run(process.execPath, args, { timeout: 15_000 }).catch((e: { stdout: string; stderr: string }) => e);
        said.cli.push(out.stdout + out.stderr);
      }
    }
  });

  it('has something to search: trace lines, masked URLs, decisions for the triggers that read', () => {
    const levels = new Set(scaler.lines().map((l) => l.level));
    expect([...levels]).toEqual(expect.arrayContaining(['trace', 'debug', 'info', 'warn']));
    // The brokers are named where a secret would stand beside them: the URL, masked or without its user.
    for (const at of [
      'at amqp://127.0.0.1:1',
      `at ${new URL(requireService('RABBITMQ_MANAGEMENT_URL')).origin}`,
      'brokers refused the credentials',
    ]) {
      expect(scaler.logs).toContain(at);
    }
    expect(said.grpc.join('\n')).toContain('got "http://***@prom:notaport"');
    expect(said.metrics).toContain('keda_inference');
    for (const name of ['amqp', 'management', 'bearer', 'basic', 'url', 'gpu', 'sqs'])
      expect(said.explain).toContain(`"name": "${name}"`);
    expect(said.cli.join('\n')).toContain('desired replicas');
    // The search finds what is there: the metadata sent holds every trigger secret.
    expect(leaks(JSON.stringify(cases))).toEqual(
      expect.arrayContaining(['amqp (URL-encoded)', 'bearer', 'kafka client key, line 1']),
    );
  });

  it.each([
    ['the logs (stdout and stderr, trace level)', () => scaler.logs],
    ['gRPC error details and answers', () => said.grpc.join('\n')],
    ['/metrics', () => said.metrics],
    ['/explain', () => said.explain],
    ['the explain CLI', () => said.cli.join('\n')],
  ])('no secret in %s', (_where, text) => {
    expect(leaks(text())).toEqual([]);
  });
});
