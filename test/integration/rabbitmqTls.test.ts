// The RabbitMQ source over TLS against the real broker's amqps and https listeners
// (scripts/services.sh), driven over gRPC as KEDA drives it: a known backlog read with rabbitmq.ca
// over both protocols, in the trigger and from a connection profile, and with rabbitmq.unsafeSsl and
// no CA; and what a trigger gets instead of a 0 without the CA or with another one. The queue is
// made over the plaintext listener.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertDir } from '../support/certs.ts';
import { RabbitFixture, type SecureRabbit, managementCounts, secureRabbit } from '../support/rabbitmq.ts';
import { type TestScaler, grpcError, ref, requireService, services, startTestScaler } from '../support/scaler.ts';

const BACKLOG = 7;

let rabbit: RabbitFixture;
let t: TestScaler;
let secure: SecureRabbit;
let queue: string;
/** A CA that did not sign the broker's certificate. */
let foreignCa: string;
/** Every error text the scaler sent: none may hold the CA. */
const said: string[] = [];

beforeAll(async () => {
  secure = secureRabbit(services());
  rabbit = await RabbitFixture.connect(requireService('RABBITMQ_URL'));
  queue = await rabbit.queue(BACKLOG, 'kis-tls');
  // The management API counts it at the broker's next statistics emission.
  await managementCounts(requireService('RABBITMQ_MANAGEMENT_URL'), queue, BACKLOG);
  t = await startTestScaler({
    profiles: { rabbitmq: { tls: { host: secure.managementUrl, protocol: 'http', ca: secure.ca } } },
  });
  const certs = new CertDir('kis-rabbitmq-foreign-');
  try {
    certs.selfSigned('foreign-ca');
    foreignCa = certs.read('foreign-ca.crt');
  } finally {
    certs.remove();
  }
});

afterAll(async () => {
  // The CA's body, not only its header, is looked for: a message quoting the PEM cut short.
  const body = secure?.ca.split('\n').find((line) => line.length > 40 && !line.startsWith('-----'));
  for (const text of said) {
    expect(text).not.toContain('BEGIN CERTIFICATE');
    if (body !== undefined) expect(text).not.toContain(body);
  }
  await t?.[Symbol.asyncDispose]();
  await rabbit?.[Symbol.asyncDispose]();
});

const protocols = ['amqp', 'http'] as const;

const trigger = (protocol: (typeof protocols)[number], extra: Record<string, string> = {}) => ({
  scalerAddress: 'keda-inference-scaler.keda:9090',
  'rabbitmq.host': protocol === 'amqp' ? secure.url : secure.managementUrl,
  'rabbitmq.queueName': queue,
  messagesPerReplica: '1',
  keepWarm: '0',
  ...extra,
});

/** The backlog behind the answer KEDA gets, and the desired replicas (1 message per replica). */
async function read(metadata: Record<string, string>, name: string) {
  const { metricValues } = await t.client.getMetrics(ref(metadata, name));
  const evaluation = t.scaler.engine.lastEvaluations().find((e) => e.trigger.name === name);
  return { desired: metricValues[0]?.metricValueFloat, backlog: evaluation?.decision.explanation.signals.backlog };
}

async function refusal(metadata: Record<string, string>, name: string) {
  const err = await grpcError(t.client.getMetrics(ref(metadata, name)));
  said.push(err.details);
  return err;
}

describe('RabbitMQ over TLS', () => {
  it.each(protocols)('reads the backlog over %s with rabbitmq.ca (PEM text) verifying the certificate', async (protocol) => {
    const metadata = trigger(protocol, { 'rabbitmq.ca': secure.ca });
    expect(await read(metadata, `tls-ca-${protocol}`)).toEqual({ desired: BACKLOG, backlog: BACKLOG });
  });

  it('reads the backlog through a connection profile that holds the CA, and refuses a trigger that sets its own', async () => {
    const metadata = { ...trigger('http', { 'rabbitmq.connection': 'tls' }) };
    delete (metadata as Record<string, string>)['rabbitmq.host'];
    expect(await read(metadata, 'tls-profile')).toEqual({ desired: BACKLOG, backlog: BACKLOG });
    // The profile holds credentials (the URL's password): where and how safely they go is its to say.
    const err = await refusal({ ...metadata, 'rabbitmq.unsafeSsl': 'true' }, 'tls-profile-unsafe');
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/rabbitmq\.unsafeSsl: set by the trigger, and connection profile "tls" holds credentials/);
  });

  it.each(protocols)('reads the backlog over %s with rabbitmq.unsafeSsl and no CA', async (protocol) => {
    const metadata = trigger(protocol, { 'rabbitmq.unsafeSsl': 'true' });
    expect(await read(metadata, `tls-unsafe-${protocol}`)).toEqual({ desired: BACKLOG, backlog: BACKLOG });
  });

  it.each(protocols)(
    'gives UNAVAILABLE over %s, never 0, naming rabbitmq.ca, without the CA and with a CA from another authority',
    async (protocol) => {
      for (const [name, extra] of [
        [`tls-no-ca-${protocol}`, {}],
        [`tls-foreign-ca-${protocol}`, { 'rabbitmq.ca': foreignCa }],
      ] as const) {
        const err = await refusal(trigger(protocol, extra), name);
        expect(err.code, err.details).toBe(status.UNAVAILABLE);
        expect(err.details).toContain(`rabbitmq queue "${queue}"`);
        expect(err.details).toMatch(
          /unreachable \(.*\); set rabbitmq\.ca to the CA that signed its certificate \(or rabbitmq\.unsafeSsl=true\)/,
        );
        expect(err.details).not.toContain('guest:guest');
        expect((await grpcError(t.client.isActive(ref(trigger(protocol, extra), name)))).code).toBe(status.UNAVAILABLE);
      }
    },
  );

  it.each([
    ['amqp', 'RABBITMQ_URL'],
    ['http', 'RABBITMQ_MANAGEMENT_URL'],
  ] as const)('refuses rabbitmq.ca with a plain %s:// host as INVALID_ARGUMENT, naming the key', async (protocol, key) => {
    const metadata = { ...trigger(protocol, { 'rabbitmq.ca': secure.ca }), 'rabbitmq.host': requireService(key) };
    const err = await refusal(metadata, `tls-plain-${protocol}`);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(
      new RegExp(
        `rabbitmq\\.ca: applies only with TLS, not to rabbitmq\\.host's ${protocol}:// URL; allowed: an amqps:// or https:// rabbitmq\\.host`,
      ),
    );
  });
});
