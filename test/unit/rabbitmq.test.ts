// RabbitMQ source through its client seams (a fake amqp client, a fake management GET): what a
// read reports, how broker errors map to typed errors, and one client per broker URL and TLS
// setting; and the management API over https with a private CA, on a local server.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SourceBadAnswer,
  SourceNotFound,
  SourceTimeout,
  SourceUnauthenticated,
  SourceUnavailable,
  errorCode,
} from '../../src/errors.ts';
import type { HttpClient, HttpTls } from '../../src/sources/httpClient.ts';
import { type AmqpQueueClient, type AmqpTls, type ManagementGet, RabbitmqDriver } from '../../src/sources/rabbitmq.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import type { RabbitmqSourceConfig } from '../../src/trigger/types.ts';
import { PEM_CERTIFICATE_STUB } from '../fixtures/pem.ts';
import { CertDir } from '../support/certs.ts';

function config(overrides: Partial<RabbitmqSourceConfig> = {}): RabbitmqSourceConfig {
  return {
    kind: 'rabbitmq',
    host: 'amqp://user:s3cret@rabbit:5672/',
    queueName: 'jobs',
    vhostName: undefined,
    protocol: 'amqp',
    excludeUnacknowledged: false,
    ca: undefined,
    unsafeSsl: false,
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
  const made: { url: string; tls: AmqpTls | undefined; client: FakeAmqp }[] = [];
  const driver = new RabbitmqDriver({
    logger: silentLogger(),
    timeoutMs: 1000,
    amqpClientFactory: (url, tls) => {
      const client = new FakeAmqp();
      client.queues = { jobs: { messageCount: 7, consumerCount: 2 }, other: { messageCount: 0, consumerCount: 0 } };
      made.push({ url, tls, client });
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
    // Found by review: "530" anywhere in the text read as a vhost refused.
    [
      'a refused connection to port 5300',
      Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:5300'), { code: 'ECONNREFUSED' }),
      SourceUnavailable,
    ],
    [
      'a host whose name holds 530 not found',
      Object.assign(new Error('getaddrinfo ENOTFOUND rabbitmq-530.prod.svc'), { code: 'ENOTFOUND' }),
      SourceUnavailable,
    ],
    [
      // As RabbitMQ words it where an error carries its text; amqplib 2.3's handshake error does not.
      "a vhost's connection limit reached (530, a capacity that passes)",
      new Error(
        "Connection closed: 530 (NOT-ALLOWED) with message \"NOT_ALLOWED - access to vhost '/' refused for user 'scaler': connection limit (10) is reached\"",
      ),
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
    // amqplib drops RabbitMQ's text: the message names each close that reads so.
    expect(got.message).toContain(
      'it does not exist, the user has no permission on it, or a connection limit of the vhost or the user is reached',
    );
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
  // Found by review: a stream's length was read as a backlog that never drains.
  it('refuses a stream queue as FAILED_PRECONDITION: its length is no backlog', async () => {
    const { driver } = httpDriver(() => ({ status: 200, body: { ...queueObject, type: 'stream' } }));
    await expect(read(driver, http())).rejects.toThrow(SourceBadAnswer);
    await expect(read(driver, http())).rejects.toThrow(/a stream queue keeps the messages its consumers read/);
    const quorum = httpDriver(() => ({ status: 200, body: { ...queueObject, type: 'quorum' } }));
    expect(await read(quorum.driver, http())).toMatchObject({ backlog: 16 });
  });

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

  // Found by review: the broker reports ack (0) beside the rest once a queue has delivered
  // anything, and the served rate read acknowledgements alone; and a negative count (a known
  // broker fault) reached the model as a negative backlog.
  it('reads the served rate as the counter counts: acknowledged, and delivered or got without an acknowledgement', async () => {
    const message_stats = {
      publish: 600,
      ack: 0,
      deliver_no_ack: 500,
      get_no_ack: 0,
      publish_details: { rate: 5 },
      ack_details: { rate: 0 },
      deliver_no_ack_details: { rate: 5 },
      get_no_ack_details: { rate: 0 },
      deliver_get_details: { rate: 5 },
    };
    const { driver } = httpDriver(() => ({ status: 200, body: { ...queueObject, message_stats } }));
    expect(await read(driver, http())).toMatchObject({ serviceRatePerSecond: 5, servedTotal: 500 });
    const mixed = httpDriver(() => ({
      status: 200,
      body: {
        ...queueObject,
        message_stats: { ...message_stats, ack_details: { rate: 2 }, deliver_no_ack_details: { rate: 3 } },
      },
    }));
    expect(await read(mixed.driver, http())).toMatchObject({ serviceRatePerSecond: 5 });
  });

  it('says what a 200 that is no queue object holds: a list, or an error object (found by review: "statistics not collected yet?")', async () => {
    const list = httpDriver(() => ({ status: 200, body: [queueObject] }));
    await expect(read(list.driver, http())).rejects.toThrow(/with no queue object \(a list: does the URL name the queue\?\)/);
    const error = httpDriver(() => ({ status: 200, body: { error: 'Object Not Found', reason: 'Not Found' } }));
    await expect(read(error.driver, http())).rejects.toThrow(/with no queue object: \{"error":"Object Not Found"/);
  });

  it('reads a negative count or rate, a broker fault, as 0', async () => {
    const body = {
      ...queueObject,
      messages_ready: -4,
      message_stats: { ...queueObject.message_stats, publish_details: { rate: -1.5 } },
    };
    const { driver } = httpDriver(() => ({ status: 200, body }));
    expect(await read(driver, http())).toMatchObject({ backlog: 4, waiting: 0, arrivalRatePerSecond: 0 });
  });

  it('leaves unacknowledged messages out with excludeUnacknowledged, and falls back to the deliver rate', async () => {
    const { message_stats: _stats, ...counts } = queueObject;
    const body = { ...counts, message_stats: { deliver_get_details: { rate: 9 } } };
    const { driver, asked } = httpDriver(() => ({ status: 200, body }));
    expect(await read(driver, http({ excludeUnacknowledged: true, vhostName: '/' }))).toEqual({
      backlog: 12,
      waiting: 12,
      inFlight: 4,
      inFlightInBacklog: false,
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
    // Found by review: a redirect (not followed since the client is node's http) read as an outage.
    [302, SourceBadAnswer, /redirected the request \(HTTP 302\); set rabbitmq.host to the address it redirects to/],
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

describe('RabbitmqDriver over TLS (amqps://, https://)', () => {
  const amqps = (overrides: Partial<RabbitmqSourceConfig> = {}) =>
    config({ host: 'amqps://user:s3cret@rabbit:5671/', ...overrides });
  const otherCa = `${PEM_CERTIFICATE_STUB}y`;

  // Found by review: the parts were joined by '|', which a vhost or a queue name may hold.
  it('gives (vhost a, queue b|c) and (vhost a|b, queue c) identities of their own: one must not read the other', () => {
    const { driver } = amqpDriver();
    for (const base of [config(), http()]) {
      const one = driver.identity({ ...base, vhostName: 'a', queueName: 'b|c' });
      expect(one).not.toBe(driver.identity({ ...base, vhostName: 'a|b', queueName: 'c' }));
      expect(one).toBe(driver.identity({ ...base, vhostName: 'a', queueName: 'b|c' }));
    }
  });

  it('gives sources that differ only in rabbitmq.ca or rabbitmq.unsafeSsl identities of their own, without the CA', () => {
    const { driver } = amqpDriver();
    for (const base of [amqps(), http()]) {
      const ids = [
        base,
        { ...base, ca: PEM_CERTIFICATE_STUB },
        { ...base, ca: otherCa },
        { ...base, unsafeSsl: true },
        { ...base, ca: PEM_CERTIFICATE_STUB, unsafeSsl: true },
      ].map((c) => driver.identity(c));
      expect(new Set(ids).size).toBe(ids.length);
      for (const id of ids) expect(id).not.toMatch(/BEGIN|s3cret/);
    }
  });

  it('opens one amqps connection per broker URL and TLS setting, the TLS setting given to it; none for amqp://', async () => {
    const { driver, made } = amqpDriver();
    for (const c of [
      config(),
      amqps(),
      amqps({ queueName: 'other' }),
      amqps({ ca: PEM_CERTIFICATE_STUB }),
      amqps({ ca: PEM_CERTIFICATE_STUB, queueName: 'other' }),
      amqps({ ca: otherCa }),
      amqps({ unsafeSsl: true }),
    ])
      await read(driver, c);
    expect(made.map((m) => [m.url, m.tls])).toEqual([
      ['amqp://user:s3cret@rabbit:5672/?heartbeat=10', undefined],
      ['amqps://user:s3cret@rabbit:5671/?heartbeat=10', { ca: undefined, unsafeSsl: false }],
      ['amqps://user:s3cret@rabbit:5671/?heartbeat=10', { ca: PEM_CERTIFICATE_STUB, unsafeSsl: false }],
      ['amqps://user:s3cret@rabbit:5671/?heartbeat=10', { ca: otherCa, unsafeSsl: false }],
      ['amqps://user:s3cret@rabbit:5671/?heartbeat=10', { ca: undefined, unsafeSsl: true }],
    ]);
    expect(made.map((m) => m.client.asked.length)).toEqual([1, 2, 2, 1, 1]);
    await driver.close();
    expect(made.map((m) => m.client.closed)).toEqual([1, 1, 1, 1, 1]);
  });

  it('maps a broker certificate that fails verification to UNAVAILABLE naming rabbitmq.ca and rabbitmq.unsafeSsl', async () => {
    const { driver, made } = amqpDriver();
    const source = driver.create(amqps());
    await source.read(AbortSignal.timeout(5000));
    made[0]!.client.fail = () =>
      Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    const got = await failure(source.read(AbortSignal.timeout(5000)));
    expect(got).toBeInstanceOf(SourceUnavailable);
    expect(got.message).toBe(
      'rabbitmq queue "jobs" (vhost "/") at amqps://rabbit:5671: broker unreachable (unable to verify the first certificate, ' +
        'UNABLE_TO_VERIFY_LEAF_SIGNATURE); set rabbitmq.ca to the CA that signed its certificate (or rabbitmq.unsafeSsl=true)',
    );
  });

  it('makes one management client per TLS setting, shared by every queue, and closes each once', async () => {
    const made: { tls: HttpTls; asked: string[]; closed: number }[] = [];
    const driver = new RabbitmqDriver({
      logger: silentLogger(),
      timeoutMs: 1000,
      managementClientFactory: (tls) => {
        const entry = { tls, asked: [] as string[], closed: 0 };
        made.push(entry);
        const client: HttpClient = {
          get: (request) => {
            entry.asked.push(request.url.toString());
            return Promise.resolve({ httpStatus: 200, body: JSON.stringify(queueObject) });
          },
          close: () => void entry.closed++,
        };
        return client;
      },
    });
    for (const c of [
      http({ host: 'http://user:s3cret@rabbit:15672/' }),
      http({ host: 'http://user:s3cret@other:15672/', queueName: 'other' }),
      http(),
      http({ queueName: 'other' }),
      http({ ca: PEM_CERTIFICATE_STUB }),
      http({ unsafeSsl: true }),
    ])
      expect(await read(driver, c)).toMatchObject({ backlog: 16 });
    expect(made.map((m) => m.tls)).toEqual([
      { https: false, ca: undefined, unsafeSsl: false },
      { https: true, ca: undefined, unsafeSsl: false },
      { https: true, ca: PEM_CERTIFICATE_STUB, unsafeSsl: false },
      { https: true, ca: undefined, unsafeSsl: true },
    ]);
    expect(made.map((m) => m.asked.length)).toEqual([2, 2, 1, 1]);
    await driver.closeIdle(-1);
    await driver.close();
    expect(made.map((m) => m.closed)).toEqual([1, 1, 1, 1]);
  });

  describe('the management API on a local https server with a private CA', () => {
    const certs = new CertDir('kis-rabbitmq-tls-');
    let server: https.Server;
    let host = '';
    let ca = '';
    let foreignCa = '';

    beforeAll(async () => {
      certs.selfSigned('ca');
      certs.signed('server', 'ca', 'subjectAltName=IP:127.0.0.1\n');
      certs.selfSigned('foreign');
      ca = certs.read('ca.crt');
      foreignCa = certs.read('foreign.crt');
      server = https.createServer({ key: certs.read('server.key'), cert: certs.read('server.crt') }, (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(queueObject));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      host = `https://user:s3cret@127.0.0.1:${(server.address() as AddressInfo).port}/`;
    });
    afterAll(async () => {
      server?.closeAllConnections();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      certs.remove();
    });

    it('reads the queue with rabbitmq.ca, and with rabbitmq.unsafeSsl and no CA', async () => {
      const driver = new RabbitmqDriver({ logger: silentLogger(), timeoutMs: 2000 });
      expect(await read(driver, http({ host, ca }))).toMatchObject({ backlog: 16, waiting: 12 });
      expect(await read(driver, http({ host, unsafeSsl: true }))).toMatchObject({ backlog: 16 });
      await driver.close();
    });

    it('gives UNAVAILABLE with the hint naming rabbitmq.ca without the CA or with another, never quoting the CA', async () => {
      const driver = new RabbitmqDriver({ logger: silentLogger(), timeoutMs: 2000 });
      for (const c of [http({ host }), http({ host, ca: foreignCa })]) {
        const got = await failure(read(driver, c));
        expect(errorCode(got)).toBe('UNAVAILABLE');
        expect(got.message).toMatch(
          /^rabbitmq queue "jobs" \(vhost "\/"\) at https:\/\/127\.0\.0\.1:\d+: management API unreachable \(.*\); set rabbitmq\.ca to the CA that signed its certificate \(or rabbitmq\.unsafeSsl=true\)$/,
        );
        expect(got.message).not.toMatch(/BEGIN|s3cret/);
      }
      await driver.close();
    });
  });
});
