// TLS and mutual TLS on the gRPC port, as the Helm chart configures them, with real certificates
// made by the openssl CLI; the plaintext health port for kubelet probes; certificate reload.
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startScaler } from '../../src/server/server.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { logLines } from '../support/logLines.ts';
import { CertDir } from '../support/certs.ts';
import { freePort } from '../support/process.ts';
import { listServices } from '../support/reflection.ts';
import { KedaClient, eventually, ref, testConfig } from '../support/scaler.ts';

// GetMetricSpec answers from the metadata alone (no broker I/O): a pure check of the channel.
const metadata = { 'rabbitmq.host': 'amqp://127.0.0.1:1', 'rabbitmq.queueName': 'tls-check' };

let certs: CertDir;
const file = (name: string) => certs.file(name);

const pem = (name: string) => readFileSync(file(name));

beforeAll(() => {
  certs = new CertDir('kis-tls-');
  certs.selfSigned('ca');
  certs.selfSigned('other-ca');
  const serverExt = 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n';
  certs.signed('server', 'ca', serverExt);
  certs.signed('server-other', 'other-ca', serverExt);
  certs.signed('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  certs.signed('client-other', 'other-ca', 'extendedKeyUsage=clientAuth\n');
});

afterAll(() => certs?.remove());

/** One GetMetricSpec on a fresh channel; resolves to the gRPC status code (0 = OK). */
async function callStatus(address: string, credentials: grpc.ChannelCredentials): Promise<number> {
  const client = new KedaClient(address, credentials);
  let response;
  try {
    response = await client.getMetricSpec(ref(metadata));
  } catch (err) {
    return (err as grpc.ServiceError).code;
  } finally {
    client.close();
  }
  expect(response.metricSpecs[0]?.metricName).toBe('inference-desired-replicas');
  return grpc.status.OK;
}

const tlsTo = (ca: string, client?: string) =>
  client === undefined
    ? grpc.credentials.createSsl(pem(`${ca}.crt`))
    : grpc.credentials.createSsl(pem(`${ca}.crt`), pem(`${client}.key`), pem(`${client}.crt`));

describe('TLS on the gRPC port', () => {
  it('serves a client that trusts the CA, by IP and by name, and refuses a plaintext client', async () => {
    const scaler = await startScaler(testConfig({ TLS_CERT_FILE: file('server.crt'), TLS_KEY_FILE: file('server.key') }));
    try {
      expect(await callStatus(`127.0.0.1:${scaler.grpcPort}`, tlsTo('ca'))).toBe(grpc.status.OK);
      expect(await callStatus(`localhost:${scaler.grpcPort}`, tlsTo('ca'))).toBe(grpc.status.OK);
      expect(await callStatus(`127.0.0.1:${scaler.grpcPort}`, grpc.credentials.createInsecure())).toBe(grpc.status.UNAVAILABLE);
      // A client that does not trust the server's CA (KEDA without caCert) cannot connect either.
      expect(await callStatus(`127.0.0.1:${scaler.grpcPort}`, tlsTo('other-ca'))).toBe(grpc.status.UNAVAILABLE);
    } finally {
      await scaler.stop();
    }
  });
});

describe('mutual TLS (TLS_CLIENT_CA_FILE), as KEDA with caCert, tlsClientCert and tlsClientKey', () => {
  it('serves only clients whose certificate chains to the client CA', async () => {
    const scaler = await startScaler(
      testConfig({ TLS_CERT_FILE: file('server.crt'), TLS_KEY_FILE: file('server.key'), TLS_CLIENT_CA_FILE: file('ca.crt') }),
    );
    const address = `127.0.0.1:${scaler.grpcPort}`;
    try {
      expect(await callStatus(address, tlsTo('ca', 'client'))).toBe(grpc.status.OK);
      expect(await callStatus(address, tlsTo('ca'))).toBe(grpc.status.UNAVAILABLE);
      expect(await callStatus(address, tlsTo('ca', 'client-other'))).toBe(grpc.status.UNAVAILABLE);
      expect(await callStatus(address, grpc.credentials.createInsecure())).toBe(grpc.status.UNAVAILABLE);
    } finally {
      await scaler.stop();
    }
  });

  // Found by review: Node takes an empty or garbage CA without a word and then trusts nobody, and
  // grpc-js logs no refused handshake at all.
  it('refuses to start on a client CA with no certificate, keeps the last one when a reload brings such a file, and logs refused handshakes', async () => {
    writeFileSync(file('empty-ca.crt'), '');
    await expect(
      startScaler(
        testConfig({
          TLS_CERT_FILE: file('server.crt'),
          TLS_KEY_FILE: file('server.key'),
          TLS_CLIENT_CA_FILE: file('empty-ca.crt'),
        }),
      ),
    ).rejects.toThrow(/^TLS_CLIENT_CA_FILE \(.*empty-ca\.crt\): the client CA file: it holds no PEM certificate$/);
    // Found by review: Node's own errors named no variable nor file (a key that does not match
    // the certificate, the two swapped, a file missing).
    await expect(
      startScaler(testConfig({ TLS_CERT_FILE: file('server.key'), TLS_KEY_FILE: file('server.crt') })),
    ).rejects.toThrow(/^TLS_CERT_FILE and TLS_KEY_FILE \(.*server\.key, .*server\.crt\): /);
    await expect(
      startScaler(testConfig({ TLS_CERT_FILE: file('missing.crt'), TLS_KEY_FILE: file('server.key') })),
    ).rejects.toThrow(/^TLS_CERT_FILE \(.*missing\.crt\): .*ENOENT/);

    copyFileSync(file('ca.crt'), file('live-client-ca.crt'));
    const { sink, lines } = logLines<{ level: string; msg: string; reason?: string }>();
    const scaler = await startScaler(
      testConfig({
        TLS_CERT_FILE: file('server.crt'),
        TLS_KEY_FILE: file('server.key'),
        TLS_CLIENT_CA_FILE: file('live-client-ca.crt'),
      }),
      { tlsReloadIntervalMs: 100, logger: createLogger('info', sink) },
    );
    const address = `127.0.0.1:${scaler.grpcPort}`;
    try {
      writeFileSync(file('live-client-ca.crt'), 'not a certificate\n');
      await eventually(async () => (lines.some((l) => l.msg.startsWith('TLS files unreadable')) ? true : undefined), 5000);
      expect(await callStatus(address, tlsTo('ca', 'client'))).toBe(grpc.status.OK);
      // A client without a certificate: refused, and said in the log.
      expect(await callStatus(address, tlsTo('ca'))).toBe(grpc.status.UNAVAILABLE);
      await eventually(async () => (lines.some((l) => l.msg === 'TLS handshake refused') ? true : undefined), 5000);
      expect(lines.find((l) => l.msg === 'TLS handshake refused')).toMatchObject({ level: 'warn' });
    } finally {
      await scaler.stop();
    }
  });

  it('answers grpc.health.v1 Check in plaintext on HEALTH_PORT (kubelet probes cannot speak TLS)', async () => {
    const healthPort = await freePort();
    const scaler = await startScaler(
      testConfig({
        TLS_CERT_FILE: file('server.crt'),
        TLS_KEY_FILE: file('server.key'),
        TLS_CLIENT_CA_FILE: file('ca.crt'),
        HEALTH_PORT: healthPort,
      }),
    );
    const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
    const health = new Health(`127.0.0.1:${healthPort}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      Check(
        req: { service: string },
        opts: grpc.CallOptions,
        cb: (err: grpc.ServiceError | null, res: { status: string }) => void,
      ): void;
    };
    const check = (service: string) =>
      new Promise<string>((resolve, reject) =>
        health.Check({ service }, { deadline: Date.now() + 3000 }, (err, res) => (err ? reject(err) : resolve(res.status))),
      );
    try {
      expect(scaler.healthPort).toBe(healthPort);
      expect(await check('')).toBe('SERVING');
      expect(await check('externalscaler.ExternalScaler')).toBe('SERVING');
      // A request no probe sends is refused from its length (found by review: 4 MiB were read).
      await expect(check('x'.repeat(100_000))).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
      expect(await check('')).toBe('SERVING');
      // Only health is served there: the scaler itself and server reflection stay behind mutual TLS.
      expect(await callStatus(`127.0.0.1:${healthPort}`, grpc.credentials.createInsecure())).toBe(grpc.status.UNIMPLEMENTED);
      expect((await listServices(`127.0.0.1:${healthPort}`)).code).toBe(grpc.status.UNIMPLEMENTED);
      const mtls = await listServices(`127.0.0.1:${scaler.grpcPort}`, tlsTo('ca', 'client'));
      expect(mtls.code).toBe(grpc.status.OK);
      expect(mtls.names).toContain('externalscaler.ExternalScaler');
    } finally {
      health.close();
      await scaler.stop();
    }
  });
});

describe('certificate reload', () => {
  it('serves a rotated certificate to new connections and ignores a half-written one', async () => {
    const live = (name: string) => certs.file(`live-${name}`);
    copyFileSync(file('server.crt'), live('tls.crt'));
    copyFileSync(file('server.key'), live('tls.key'));
    const { sink, lines } = logLines<{ msg: string }>();
    const scaler = await startScaler(testConfig({ TLS_CERT_FILE: live('tls.crt'), TLS_KEY_FILE: live('tls.key') }), {
      tlsReloadIntervalMs: 100,
      logger: createLogger('info', sink),
    });
    const address = `127.0.0.1:${scaler.grpcPort}`;
    try {
      expect(await callStatus(address, tlsTo('ca'))).toBe(grpc.status.OK);

      const metric = async (name: string) => {
        const text = await scaler.metrics.registry.getSingleMetricAsString(`keda_inference_scaler_${name}`);
        return Number(new RegExp(`^keda_inference_scaler_${name} (\\S+)$`, 'm').exec(text)![1]);
      };
      const notAfter = (name: string) => Date.parse(new X509Certificate(pem(name)).validTo) / 1000;
      expect(await metric('tls_certificate_expiry_timestamp_seconds')).toBe(notAfter('server.crt'));
      expect(await metric('tls_reload_failures_total')).toBe(0);

      // Certificate replaced, key not yet: the pair does not match, the old certificate stays.
      // Said once (a reload every 100 ms here), counted each time.
      copyFileSync(file('server-other.crt'), live('tls.crt'));
      await eventually(async () => ((await metric('tls_reload_failures_total')) >= 3 ? true : undefined), 5000);
      expect(lines.filter((l) => l.msg.includes('TLS files unreadable'))).toHaveLength(1);
      expect(await callStatus(address, tlsTo('ca'))).toBe(grpc.status.OK);

      copyFileSync(file('server-other.key'), live('tls.key'));
      await eventually(async () => ((await callStatus(address, tlsTo('other-ca'))) === grpc.status.OK ? true : undefined), 5000);
      expect(await callStatus(address, tlsTo('ca'))).toBe(grpc.status.UNAVAILABLE);
      expect(lines.map((l) => l.msg)).toContain('TLS files readable again');
      expect(await metric('tls_certificate_expiry_timestamp_seconds')).toBe(notAfter('server-other.crt'));

      // A chain caught half-written (its next block begun and cut): refused, not served without
      // it (found by review: Node takes it, and drops the cut block).
      const unreadable = () => lines.filter((l) => l.msg.startsWith('TLS files unreadable')).length;
      const before = unreadable();
      writeFileSync(live('tls.crt'), `${readFileSync(file('server-other.crt'), 'utf8')}-----BEGIN CERT`);
      await eventually(async () => (unreadable() > before ? true : undefined), 5000);
      expect(await callStatus(address, tlsTo('other-ca'))).toBe(grpc.status.OK);
    } finally {
      await scaler.stop();
    }
  });
});
