// Every source against the one contract (test/support/sourceContract.ts), on the real servers of
// the test bed: RabbitMQ over amqp and over the management API, each also over TLS with rabbitmq.ca,
// the SQS-compatible server, Kafka over SASL, and Prometheus behind a bearer-token proxy.
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import type { ISocketFactory } from 'kafkajs';
import { GpuDriver } from '../../src/sources/gpu.ts';
import { KafkaDriver } from '../../src/sources/kafka.ts';
import { RabbitmqDriver } from '../../src/sources/rabbitmq.ts';
import { SqsDriver } from '../../src/sources/sqs.ts';
import type { GpuSourceConfig, KafkaSourceConfig, RabbitmqSourceConfig, SqsSourceConfig } from '../../src/trigger/types.ts';
import { BearerProxy } from '../support/bearerProxy.ts';
import { KafkaFixture, secureKafka } from '../support/kafka.ts';
import { RabbitFixture, RabbitUser, secureRabbit } from '../support/rabbitmq.ts';
import { requireService, services } from '../support/scaler.ts';
import { type SourceBed, describeSourceContract, sourceConfig } from '../support/sourceContract.ts';
import { SQS_TEST_REGION, SqsFixture } from '../support/sqs.ts';
import type { TcpProxy } from '../support/tcpProxy.ts';

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** RabbitMQ over `protocol`; with `tls`, on the broker's amqps or https listener, its CA as rabbitmq.ca. */
function rabbitBed(protocol: 'amqp' | 'http', tls = false): SourceBed<RabbitmqSourceConfig> {
  let rabbit: RabbitFixture;
  let user: RabbitUser;
  let server = '';
  let ca: string | undefined;
  const config = (host: string, queue: string) =>
    sourceConfig<RabbitmqSourceConfig>({
      'rabbitmq.host': host,
      'rabbitmq.queueName': queue,
      'rabbitmq.protocol': protocol,
      ...(ca !== undefined ? { 'rabbitmq.ca': ca } : {}),
    });
  const holding = async (host: string, n: number) => ({
    config: config(host, await rabbit.queue(n, 'kis-contract')),
    expected: { backlog: n, waiting: n },
  });
  return {
    async open() {
      const secure = tls ? secureRabbit(services()) : undefined;
      server = secure
        ? protocol === 'amqp'
          ? secure.url
          : secure.managementUrl
        : requireService(protocol === 'amqp' ? 'RABBITMQ_URL' : 'RABBITMQ_MANAGEMENT_URL');
      ca = secure?.ca;
      rabbit = await RabbitFixture.connect(requireService('RABBITMQ_URL'));
      user = await RabbitUser.create(requireService('RABBITMQ_MANAGEMENT_URL'));
    },
    async close() {
      await rabbit?.[Symbol.asyncDispose]();
      await user?.[Symbol.asyncDispose]();
    },
    driver: (options) => new RabbitmqDriver(options),
    secrets: () => [user.password],
    holding: (n) => holding(user.in(server), n),
    missing: async () => config(user.in(server), `kis-contract-missing-${randomUUID().slice(0, 8)}`),
    credentials: {
      checked: true,
      async wrong() {
        const secret = `wrong-${randomUUID()}`;
        return { config: config(user.in(server, secret), await rabbit.queue(1, 'kis-contract')), secret };
      },
    },
    proxyTarget: () => hostPort(server),
    throughProxy: (proxy, n) => holding(proxy.rewrite(user.in(server)), n),
    // The management API's counts lag by the broker's statistics interval.
    settleMs: protocol === 'http' ? 15_000 : 0,
  };
}

function sqsBed(): SourceBed<SqsSourceConfig> {
  let sqs: SqsFixture;
  let endpoint = '';
  const saved: Record<string, string | undefined> = {};
  // The server accepts any key pair: this secret key is made up, so every read of the bed is the check.
  const secretKey = `kis-contract-${randomUUID()}`;
  const config = (queueURL: string, awsEndpoint = endpoint) =>
    sourceConfig<SqsSourceConfig>({ 'sqs.queueURL': queueURL, 'sqs.awsRegion': SQS_TEST_REGION, 'sqs.awsEndpoint': awsEndpoint });
  const holding = async (n: number, awsEndpoint = endpoint) => {
    const queue = await sqs.queue('kis-contract');
    await sqs.send(queue, n);
    return { config: config(queue, awsEndpoint), expected: { backlog: n, waiting: n, inFlight: 0 } };
  };
  return {
    async open() {
      endpoint = requireService('SQS_ENDPOINT');
      for (const key of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_EC2_METADATA_DISABLED'])
        saved[key] = process.env[key];
      // Credentials reach the source through the SDK's default chain only, as in the scaler.
      process.env.AWS_ACCESS_KEY_ID = 'test';
      process.env.AWS_SECRET_ACCESS_KEY = secretKey;
      process.env.AWS_EC2_METADATA_DISABLED = 'true';
      sqs = new SqsFixture(endpoint);
    },
    async close() {
      await sqs?.[Symbol.asyncDispose]();
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    },
    driver: (options) => new SqsDriver(options),
    secrets: () => [secretKey],
    holding: (n) => holding(n),
    async missing() {
      const queue = await sqs.queue('kis-contract');
      return config(queue.replace(/[^/]+$/, `kis-contract-missing-${randomUUID().slice(0, 8)}`));
    },
    credentials: {
      checked: false,
      reason: 'the SQS-compatible server (moto) accepts any AWS credentials',
      madeUp: async () => ({ ...(await holding(2)), secret: secretKey }),
    },
    proxyTarget: () => hostPort(endpoint),
    throughProxy: (proxy, n) => holding(n, proxy.rewrite(endpoint)),
  };
}

function kafkaBed(): SourceBed<KafkaSourceConfig> {
  let kafka: KafkaFixture;
  let brokers = '';
  let username = '';
  let password = '';
  const config = (topic: string, pass = password) =>
    sourceConfig<KafkaSourceConfig>({
      'kafka.bootstrapServers': brokers,
      'kafka.sasl': 'scram_sha512',
      'kafka.username': username,
      'kafka.password': pass,
      'kafka.topic': topic,
      'kafka.consumerGroup': KafkaFixture.uniqueName('kis-contract-group'),
      // A group that never committed lags by the whole log under earliest: lag n without a commit.
      'kafka.offsetResetPolicy': 'earliest',
      'kafka.allowIdleConsumers': 'true',
    });
  const holding = async (n: number) => ({ config: config(await kafka.topic([n], 'kis-contract')), expected: { backlog: n } });
  return {
    async open() {
      ({ saslBrokers: brokers, username, password } = secureKafka(services()));
      kafka = await KafkaFixture.connect(requireService('KAFKA_BROKERS'));
    },
    async close() {
      await kafka?.[Symbol.asyncDispose]();
    },
    // Brokers advertise their own address after bootstrap: the proxy sits in the socket factory.
    driver(options, proxy?: TcpProxy) {
      if (proxy === undefined) return new KafkaDriver(options);
      const socketFactory: ISocketFactory = ({ onConnect }) => connect({ host: '127.0.0.1', port: proxy.port }, onConnect);
      return new KafkaDriver({ ...options, socketFactory });
    },
    secrets: () => [password],
    holding,
    missing: async () => config(KafkaFixture.uniqueName('kis-contract-missing')),
    credentials: {
      checked: true,
      async wrong() {
        const secret = `wrong-${randomUUID()}`;
        return { config: config(await kafka.topic([1], 'kis-contract'), secret), secret };
      },
    },
    proxyTarget: () => hostPort(`kafka://${brokers.split(',')[0]!}`),
    throughProxy: (_proxy, n) => holding(n),
  };
}

function gpuBed(): SourceBed<GpuSourceConfig> {
  let auth: BearerProxy;
  const token = `tok-${randomUUID()}`;
  const config = (serverAddress: string, query: string, extra: Record<string, string> = {}, bearerToken = token) =>
    sourceConfig<GpuSourceConfig>({
      'gpu.serverAddress': serverAddress,
      'gpu.query': query,
      'gpu.bearerToken': bearerToken,
      ...extra,
    });
  // A value of n on a series Prometheus really scrapes (its exporter target's `up`), whatever the exporter reports.
  const valued = (n: number) => `count(up{job="dcgm-exporter"}) * 0 + ${n}`;
  const holding = (serverAddress: string, n: number) =>
    Promise.resolve({ config: config(serverAddress, valued(n)), expected: { backlog: 0, busyGpus: n } });
  return {
    async open() {
      // The test bed's Prometheus checks no credentials: a proxy in front of it checks a bearer token.
      auth = await BearerProxy.start(requireService('PROMETHEUS_URL'), token);
    },
    async close() {
      await auth?.[Symbol.asyncDispose]();
    },
    driver: (options) => new GpuDriver(options),
    secrets: () => [token],
    holding: (n) => holding(auth.url, n),
    missing: () =>
      Promise.resolve(
        config(auth.url, `DCGM_FI_DEV_GPU_UTIL{namespace="kis-contract-missing-${randomUUID().slice(0, 8)}"}`, {
          'gpu.ignoreNullValues': 'false',
        }),
      ),
    credentials: {
      checked: true,
      wrong() {
        const secret = `wrong-${randomUUID()}`;
        return Promise.resolve({ config: config(auth.url, valued(1), {}, secret), secret });
      },
    },
    proxyTarget: () => ({ host: '127.0.0.1', port: auth.port }),
    throughProxy: (proxy, n) => holding(proxy.rewrite(auth.url), n),
  };
}

describeSourceContract('rabbitmq (amqp)', rabbitBed('amqp'));
describeSourceContract('rabbitmq (http, management API)', rabbitBed('http'));
describeSourceContract('rabbitmq (amqps, rabbitmq.ca)', rabbitBed('amqp', true));
describeSourceContract('rabbitmq (https, management API, rabbitmq.ca)', rabbitBed('http', true));
describeSourceContract('sqs', sqsBed());
describeSourceContract('kafka (SASL)', kafkaBed());
describeSourceContract('gpu (Prometheus)', gpuBed());
