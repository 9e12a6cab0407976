// The Kafka source's SASL and TLS paths against the real broker's SASL_PLAINTEXT and SSL listeners
// (scripts/services.sh), driven over gRPC as KEDA drives it: lag read with PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512 credentials, TLS with a private CA, mutual TLS, and the errors a misconfigured
// trigger must get instead of a 0. Topics and commits are made over the plaintext listener.
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertDir } from '../support/certs.ts';
import { KafkaFixture, type SecureKafka, secureKafka } from '../support/kafka.ts';
import { type TestScaler, grpcError, ref, requireService, services, startTestScaler } from '../support/scaler.ts';

let kafka: KafkaFixture;
let t: TestScaler;
/** A group 5 behind on a 2-partition topic ([5, 3] messages, committed [1, none]): 4 + 1 under latest, 4 + 3 under earliest. */
let topic: string;
let group: string;
let secure: SecureKafka;
/** A client certificate and key from a CA the broker does not trust. */
let foreign: { cert: string; key: string };

beforeAll(async () => {
  secure = secureKafka(services());
  kafka = await KafkaFixture.connect(requireService('KAFKA_BROKERS'));
  // One topic for every test (reads change nothing): a commit through kafkajs takes ~5 s.
  topic = await kafka.topic([5, 3], 'kis-secure');
  group = KafkaFixture.uniqueName('kis-secure-group');
  await kafka.commit(group, topic, [1, undefined]);
  t = await startTestScaler({
    profiles: {
      kafka: {
        secure: {
          bootstrapServers: secure.saslBrokers,
          sasl: 'scram_sha512',
          username: secure.username,
          password: secure.password,
        },
        mtls: {
          bootstrapServers: secure.tlsBrokers,
          tls: 'enable',
          ca: secure.ca,
          cert: secure.clientCert,
          key: secure.clientKey,
        },
      },
    },
  });
  const certs = new CertDir('kis-kafka-foreign-');
  try {
    certs.selfSigned('foreign-client');
    foreign = { cert: certs.read('foreign-client.crt'), key: certs.read('foreign-client.key') };
  } finally {
    certs.remove();
  }
});

afterAll(async () => {
  await t?.[Symbol.asyncDispose]();
  await kafka?.[Symbol.asyncDispose]();
});

const trigger = (extra: Record<string, string>) => ({
  scalerAddress: 'keda-inference-scaler.keda:9090',
  'kafka.topic': topic,
  'kafka.consumerGroup': group,
  messagesPerReplica: '1',
  'kafka.allowIdleConsumers': 'true',
  keepWarm: '0',
  ...extra,
});

const sasl = (mechanism: string, password = secure.password) => ({
  'kafka.bootstrapServers': secure.saslBrokers,
  'kafka.sasl': mechanism,
  'kafka.username': secure.username,
  'kafka.password': password,
});

const tls = (extra: Record<string, string> = {}) => ({
  'kafka.bootstrapServers': secure.tlsBrokers,
  'kafka.tls': 'enable',
  ...extra,
});

/** The backlog behind the answer KEDA gets, and the desired replicas (1 message per replica). */
async function read(metadata: Record<string, string>, name: string) {
  const { metricValues } = await t.client.getMetrics(ref(metadata, name));
  const evaluation = t.scaler.engine.lastEvaluations().find((e) => e.trigger.name === name);
  return { desired: metricValues[0]?.metricValueFloat, backlog: evaluation?.decision.explanation.signals.backlog };
}

describe('Kafka over SASL', () => {
  it.each(['plain', 'scram_sha256', 'scram_sha512'])('reads the lag with %s credentials in the trigger', async (mechanism) => {
    expect(await read(trigger(sasl(mechanism)), `ks-${mechanism}`)).toEqual({ desired: 5, backlog: 5 });
  });

  it('reads the lag through a connection profile, with no credentials in the trigger', async () => {
    // earliest: a reading of its own, not the cached one of the same credentials given in metadata
    const metadata = trigger({ 'kafka.connection': 'secure', 'kafka.offsetResetPolicy': 'earliest' });
    expect(await read(metadata, 'ks-profile')).toEqual({ desired: 7, backlog: 7 });
  });

  it.each(['plain', 'scram_sha256', 'scram_sha512'])(
    'gives UNAUTHENTICATED for a wrong %s password, never the password, and keeps the right one working',
    async (mechanism) => {
      const wrong = `wrong-${randomUUID()}`;
      const metadata = trigger(sasl(mechanism, wrong));
      const started = Date.now();
      const err = await grpcError(t.client.getMetrics(ref(metadata, `ks-wrong-${mechanism}`)));
      expect(err.code).toBe(status.UNAUTHENTICATED);
      expect(err.details).toMatch(/brokers refused the credentials \(SASL .*authentication failed/);
      expect(err.details).toContain(secure.saslBrokers);
      expect(err.details).not.toContain(wrong);
      expect(err.details).not.toContain(secure.password);
      expect(Date.now() - started).toBeLessThan(3000);
      expect((await grpcError(t.client.isActive(ref(metadata, `ks-wrong-${mechanism}`)))).code).toBe(status.UNAUTHENTICATED);
      // Same brokers, right password: its own client, not the refused one.
      expect(await read(trigger(sasl(mechanism)), `ks-right-${mechanism}`)).toEqual({ desired: 5, backlog: 5 });
    },
  );

  it('gives UNAUTHENTICATED for a user the brokers do not know', async () => {
    const metadata = trigger({ ...sasl('scram_sha256'), 'kafka.username': 'kis-nobody' });
    expect((await grpcError(t.client.getMetrics(ref(metadata, 'ks-nobody')))).code).toBe(status.UNAUTHENTICATED);
  });

  it('gives UNAVAILABLE, not 0, when a trigger without SASL meets the SASL listener', async () => {
    const metadata = trigger({ 'kafka.bootstrapServers': secure.saslBrokers });
    const err = await grpcError(t.client.getMetrics(ref(metadata, 'ks-no-sasl')));
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toContain(secure.saslBrokers);
  });
});

describe('Kafka over TLS', () => {
  it("reads the lag with kafka.ca (PEM text) verifying the brokers' certificate", async () => {
    expect(await read(trigger(tls({ 'kafka.ca': secure.ca })), 'kt-ca')).toEqual({ desired: 5, backlog: 5 });
  });

  it('reads the lag with a client certificate (mutual TLS) from a profile, and is refused one the brokers do not trust', async () => {
    expect(await read(trigger({ 'kafka.connection': 'mtls' }), 'kt-mtls')).toEqual({ desired: 5, backlog: 5 });
    // The client certificate is really sent: one from a foreign CA makes the broker end the handshake.
    const metadata = trigger(tls({ 'kafka.ca': secure.ca, 'kafka.cert': foreign.cert, 'kafka.key': foreign.key }));
    const err = await grpcError(t.client.getMetrics(ref(metadata, 'kt-foreign-cert')));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.details).toMatch(/TLS: the brokers refused the client certificate .*kafka\.cert and kafka\.key/);
    expect(err.details).not.toContain('PRIVATE KEY');
  });

  it("fails with a clear error, never 0, when the brokers' CA is not given or is the wrong one", async () => {
    for (const [name, extra] of [
      ['kt-no-ca', {}],
      ['kt-wrong-ca', { 'kafka.ca': foreign.cert }],
    ] as const) {
      const err = await grpcError(t.client.getMetrics(ref(trigger(tls(extra)), name)));
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.details).toContain(secure.tlsBrokers);
      expect(err.details).toMatch(/TLS: the brokers' certificate failed verification \([A-Z_]+\); set kafka\.ca/);
    }
  });

  it('reads the lag with kafka.unsafeSsl and no CA', async () => {
    const metadata = trigger(tls({ 'kafka.unsafeSsl': 'true' }));
    expect(await read(metadata, 'kt-unsafe')).toEqual({ desired: 5, backlog: 5 });
  });
});
