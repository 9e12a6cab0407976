// RabbitMQ source through its client seams (a fake amqp client, a fake management GET): what a
// read reports, how broker errors map to typed errors, and one client per broker URL.
import { describe, expect, it } from 'vitest';
import {
  SourceBadAnswer,
  SourceNotFound,
  SourceTimeout,
  SourceUnauthenticated,
  SourceUnavailable,
  errorCode,
} from '../../src/errors.ts';
import { type AmqpQueueClient, type ManagementGet, RabbitmqDriver } from '../../src/sources/rabbitmq.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import type { RabbitmqSourceConfig } from '../../src/trigger/types.ts';

function config(overrides: Partial<RabbitmqSourceConfig> = {}): RabbitmqSourceConfig {
  return {
    kind: 'rabbitmq',
    host: 'amqp://user:s3cret@rabbit:5672/',
    queueName: 'jobs',
    vhostName: undefined,
    protocol: 'amqp',
    excludeUnacknowledged: false,
    ...overrides,
  };
}

/** A broker that answers checkQueue from a table, or fails with what `fail` gives. */
class FakeAmqp implements AmqpQueueClient {
  readonly asked: string[] = [];
  closed = 0;
  queues: Record<string, { messageCount: number; consumerCount: number }> = {};
  fail: ((queue: string) => unknown) | undefined;

  checkQueue(queue: string) {
    this.asked.push(queue);
    const failure = this.fail?.(queue);
    if (failure !== undefined) return Promise.reject(failure as Error);
    const reply = this.queues[queue];
    return reply
      ? Promise.resolve(reply)
      : Promise.reject(Object.assign(new Error(`NOT_FOUND - no queue '${queue}'`), { code: 404 }));
  }

  close() {
    this.closed++;
    return Promise.resolve();
  }
}

function amqpDriver() {
  const made: { url: string; client: FakeAmqp }[] = [];
  const driver = new RabbitmqDriver({
    logger: silentLogger(),
    timeoutMs: 1000,
    amqpClientFactory: (url) => {
      const client = new FakeAmqp();
      client.queues = { jobs: { messageCount: 7, consumerCount: 2 }, other: { messageCount: 0, consumerCount: 0 } };
      made.push({ url, client });
      return client;
    },
  });
  return { driver, made };
}

const read = (driver: RabbitmqDriver, c: RabbitmqSourceConfig) => driver.create(c).read(AbortSignal.timeout(5000));
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.unreachable('read answered'),
    (e: unknown) => e as Error,
  );

describe('RabbitmqDriver over amqp', () => {
  it('reads ready messages as the backlog, all of it waiting, with the consumers', async () => {
    const { driver } = amqpDriver();
    expect(await read(driver, config())).toEqual({ backlog: 7, waiting: 7, consumers: 2 });
  });

  it('shares one client per broker URL (vhost and heartbeat applied) and closes each once', async () => {
    const { driver, made } = amqpDriver();
    await read(driver, config());
    await read(driver, config({ queueName: 'other' }));
    await read(driver, config({ vhostName: 'tenant a' }));
    expect(made.map((m) => m.url)).toEqual([
      'amqp://user:s3cret@rabbit:5672/?heartbeat=10',
      'amqp://user:s3cret@rabbit:5672/tenant%20a?heartbeat=10',
    ]);
    expect(made[0]!.client.asked).toEqual(['jobs', 'other']);
    await driver.close();
    expect(made.map((m) => m.client.closed)).toEqual([1, 1]);
    await read(driver, config());
    expect(made).toHaveLength(3);
  });

  it.each([
    ['a missing queue (404)', Object.assign(new Error("NOT_FOUND - no queue 'jobs'"), { code: 404 }), SourceNotFound],
    [
      'refused credentials (403)',
      Object.assign(new Error('ACCESS_REFUSED - Login was refused'), { code: 403 }),
      SourceUnauthenticated,
    ],
    [
      'a vhost it may not open (530)',
      new Error('Connection closed: 530 (NOT-ALLOWED) with message "NOT_ALLOWED - vhost x not found"'),
      SourceNotFound,
    ],
    [
      // What amqplib 0.10 gives when RabbitMQ refuses the vhost at the handshake (missing, or no permission).
      'a vhost refused at the handshake',
      new Error('Expected ConnectionOpenOk; got <ConnectionClose channel:0>'),
      SourceNotFound,
    ],
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5672'), { code: 'ECONNREFUSED' }),
      SourceUnavailable,
    ],
  ])('maps %s to %s, naming the queue', async (_name, err, type) => {
    const { driver, made } = amqpDriver();
    const source = driver.create(config());
    await source.read(AbortSignal.timeout(5000));
    made[0]!.client.fail = () => err;
    const got = await failure(source.read(AbortSignal.timeout(5000)));
    expect(got).toBeInstanceOf(type);
    expect(got.message).toMatch(/^rabbitmq queue "jobs" \(vhost "\/"\) at amqp:\/\/rabbit:5672: /);
  });

  // Found by review: amqplib (and KEDA) open vhost "ml/" for amqp://h/ml/, and the error said "ml".
  it.each([
    ['amqp://user:s3cret@rabbit:5672/ml/', 'ml/'],
    ['amqp://user:s3cret@rabbit:5672/ml', 'ml'],
    ['amqp://user:s3cret@rabbit:5672/a%2Fb', 'a/b'],
    ['amqp://user:s3cret@rabbit:5672/', '/'],
    ['amqp://user:s3cret@rabbit:5672', '/'],
  ])('names the vhost amqplib opens for %s: %s', async (host, vhost) => {
    const { driver, made } = amqpDriver();
    const source = driver.create(config({ host }));
    await source.read(AbortSignal.timeout(5000));
    made[0]!.client.fail = () => new Error('Expected ConnectionOpenOk; got <ConnectionClose channel:0>');
    const got = await failure(source.read(AbortSignal.timeout(5000)));
    expect(got).toBeInstanceOf(SourceNotFound);
    expect(got.message).toContain(`(vhost ${JSON.stringify(vhost)})`);
    expect(source.label).toContain(`(vhost ${JSON.stringify(vhost)})`);
  });

  it('keeps the password out of the error when the broker quotes the URL', async () => {
    const { driver, made } = amqpDriver();
    const source = driver.create(config());
    await source.read(AbortSignal.timeout(5000));
    made[0]!.client.fail = () => new Error('getaddrinfo ENOTFOUND for amqp://user:s3cret@rabbit:5672/');
    const got = await failure(source.read(AbortSignal.timeout(5000)));
    expect(errorCode(got)).toBe('UNAVAILABLE');
    expect(got.message).toContain('amqp://user:***@rabbit');
    expect(`${got.message} ${source.label} ${source.identity}`).not.toContain('s3cret');
  });
});

/** A management API answering from `answers` by URL, recording what was asked. */
function httpDriver(answer: (url: string) => { status: number; body?: unknown } | Error) {
  const asked: { url: string; headers: Readonly<Record<string, string>> }[] = [];
  const managementGet: ManagementGet = (url, headers, signal) => {
    asked.push({ url, headers });
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    const a = answer(url);
    if (a instanceof Error) return Promise.reject(a);
    return Promise.resolve({ status: a.status, json: () => Promise.resolve(a.body) });
  };
  return { driver: new RabbitmqDriver({ logger: silentLogger(), timeoutMs: 1000, managementGet }), asked };
}

const http = (overrides: Partial<RabbitmqSourceConfig> = {}) =>
  config({ host: 'https://user:s3cret@rabbit:15671/tenant', protocol: 'http', ...overrides });

const queueObject = {
  messages_ready: 12,
  messages_unacknowledged: 4,
  consumers: 3,
  message_stats: {
    publish: 1000,
    ack: 900,
    deliver_no_ack: 20,
    publish_details: { rate: 2.5 },
    ack_details: { rate: 1.5 },
    deliver_get_details: { rate: 9 },
  },
};

describe('RabbitmqDriver over the management API', () => {
  it('GETs the queue object with basic auth and reads ready + unacknowledged, the consumers, the rates and the counters', async () => {
    const { driver, asked } = httpDriver(() => ({ status: 200, body: queueObject }));
    expect(await read(driver, http())).toEqual({
      backlog: 16,
      waiting: 12,
      inFlight: 4,
      consumers: 3,
      arrivalRatePerSecond: 2.5,
      serviceRatePerSecond: 1.5,
      // published; acknowledged + delivered without ack
      arrivedTotal: 1000,
      orderedQueues: 1,
      servedTotal: 920,
    });
    expect(asked[0]!.url).toBe('https://rabbit:15671/api/queues/tenant/jobs');
    expect(asked[0]!.headers).toEqual({
      accept: 'application/json',
      authorization: `Basic ${Buffer.from('user:s3cret').toString('base64')}`,
    });
  });

  it('leaves unacknowledged messages out with excludeUnacknowledged, and falls back to the deliver rate', async () => {
    const { message_stats: _stats, ...counts } = queueObject;
    const body = { ...counts, message_stats: { deliver_get_details: { rate: 9 } } };
    const { driver, asked } = httpDriver(() => ({ status: 200, body }));
    expect(await read(driver, http({ excludeUnacknowledged: true, vhostName: '/' }))).toEqual({
      backlog: 12,
      waiting: 12,
      inFlight: 4,
      consumers: 3,
      serviceRatePerSecond: 9,
    });
    expect(asked[0]!.url).toBe('https://rabbit:15671/api/queues/%2F/jobs');
  });

  it('keeps a path prefix before the vhost, as KEDA does (management.path_prefix, an ingress)', async () => {
    const { driver, asked } = httpDriver(() => ({ status: 200, body: queueObject }));
    await read(driver, http({ host: 'https://user:s3cret@rabbit:15671/rabbitmq/tenant' }));
    await read(driver, http({ host: 'https://user:s3cret@rabbit:15671/rabbitmq/tenant/', vhostName: 'ml', queueName: 'other' }));
    await read(driver, http({ host: 'https://user:s3cret@rabbit:15671/a/b/%2F', queueName: 'third' }));
    // A trailing slash ends the path with an empty vhost segment: the root vhost under the prefix.
    await read(driver, http({ host: 'https://user:s3cret@rabbit:15671/rabbitmq/', queueName: 'fourth' }));
    await read(driver, http({ host: 'https://user:s3cret@rabbit:15671/', queueName: 'fifth' }));
    await read(driver, http({ host: 'https://user:s3cret@rabbit:15671/a//b/vh', queueName: 'sixth' }));
    expect(asked.map((a) => a.url)).toEqual([
      'https://rabbit:15671/rabbitmq/api/queues/tenant/jobs',
      'https://rabbit:15671/rabbitmq/tenant/api/queues/ml/other',
      'https://rabbit:15671/a/b/api/queues/%2F/third',
      'https://rabbit:15671/rabbitmq/api/queues/%2F/fourth',
      'https://rabbit:15671/api/queues/%2F/fifth',
      'https://rabbit:15671/a/b/api/queues/vh/sixth',
    ]);
  });

  it.each([
    ['an HTML login page (an OAuth proxy)', () => Promise.reject(new SyntaxError("Unexpected token '<'"))],
    ['null', () => Promise.resolve(null)],
  ])('gives a bad answer (FAILED_PRECONDITION), not an outage, for a 200 that is %s', async (_what, json) => {
    const driver = new RabbitmqDriver({
      logger: silentLogger(),
      timeoutMs: 1000,
      managementGet: () => Promise.resolve({ status: 200, json }),
    });
    const got = await failure(read(driver, http()));
    expect(got).toBeInstanceOf(SourceBadAnswer);
    expect(got.message).toMatch(/answered HTTP 200 with no queue object/);
  });

  it('gives a bad answer, not 0, for a queue without statistics yet', async () => {
    const { driver } = httpDriver(() => ({ status: 200, body: { consumers: 0 } }));
    await expect(read(driver, http())).rejects.toThrow(SourceBadAnswer);
  });

  // Found by review: a missing unacknowledged count was taken for 0, the messages in service dropped.
  it('gives a bad answer, not 0, for a missing unacknowledged count it would count; none needed when excluded', async () => {
    const { messages_unacknowledged: _unacked, ...noUnacked } = queueObject;
    const { driver } = httpDriver(() => ({ status: 200, body: noUnacked }));
    const got = await failure(read(driver, http()));
    expect(got).toBeInstanceOf(SourceBadAnswer);
    expect(got.message).toMatch(/no messages_unacknowledged/);
    expect(await read(driver, http({ excludeUnacknowledged: true }))).toMatchObject({ backlog: 12, waiting: 12 });
  });

  it.each([
    [404, SourceNotFound, /queue or vhost not found \(HTTP 404\)/],
    [401, SourceUnauthenticated, /refused the credentials \(HTTP 401\)/],
    [403, SourceUnauthenticated, /refused the credentials \(HTTP 403\)/],
    [500, SourceUnavailable, /answered HTTP 500/],
    [302, SourceUnavailable, /answered HTTP 302/],
    // Found by review: a 400 (a path prefix that is none) read as an outage.
    [400, SourceBadAnswer, /management API refused the request \(HTTP 400\); check rabbitmq.host/],
    [405, SourceBadAnswer, /refused the request \(HTTP 405\)/],
    [408, SourceUnavailable, /answered HTTP 408/],
    [429, SourceUnavailable, /answered HTTP 429/],
  ])('maps HTTP %i to %s', async (status, type, pattern) => {
    const { driver } = httpDriver(() => ({ status }));
    const got = await failure(read(driver, http()));
    expect(got).toBeInstanceOf(type);
    if (type === SourceBadAnswer) expect(errorCode(got)).toBe('FAILED_PRECONDITION');
    expect(got.message).toMatch(pattern);
    expect(got.message).not.toContain('s3cret');
  });

  it('reports an unreachable API as UNAVAILABLE with the cause, and an aborted read with the abort reason', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: new Error('connect ECONNREFUSED 10.0.0.1:15671') });
    const { driver } = httpDriver(() => refused);
    const got = await failure(read(driver, http()));
    expect(got).toBeInstanceOf(SourceUnavailable);
    expect(got.message).toMatch(/management API unreachable \(connect ECONNREFUSED/);
    const controller = new AbortController();
    const reason = new SourceTimeout('deadline');
    controller.abort(reason);
    await expect(driver.create(http()).read(controller.signal)).rejects.toBe(reason);
  });
});
