import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { tlsFailureHint, tlsOptions } from '../../src/sources/httpClient.ts';
import { PEM_CERTIFICATE_STUB } from '../fixtures/pem.ts';
import { CertDir } from '../support/certs.ts';

describe('tlsFailureHint: what a connection error adds, by Node error code', () => {
  it.each([
    ['SELF_SIGNED_CERT_IN_CHAIN', '; set rabbitmq.ca to the CA that signed its certificate (or rabbitmq.unsafeSsl=true)'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', '; set rabbitmq.ca to the CA that signed its certificate (or rabbitmq.unsafeSsl=true)'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', '; set rabbitmq.ca to the CA that signed its certificate (or rabbitmq.unsafeSsl=true)'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', '; set rabbitmq.ca to the CA that signed its certificate (or rabbitmq.unsafeSsl=true)'],
    ['CERT_HAS_EXPIRED', '; set rabbitmq.ca to the CA that signed its certificate (or rabbitmq.unsafeSsl=true)'],
    // Found by review: an amqps:// URL on the plain port was told to set a CA.
    ['ERR_SSL_WRONG_VERSION_NUMBER', '; no TLS handshake there: check that the scheme and port are the TLS ones'],
    ['ERR_SSL_PACKET_LENGTH_TOO_LONG', '; no TLS handshake there: check that the scheme and port are the TLS ones'],
    // Found by review: a server that asks for a client certificate was told to set a CA.
    [
      'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
      '; the server asks for a client certificate (mutual TLS), which this source does not send: let the scaler in without one (a proxy, or a listener without client authentication)',
    ],
    [
      'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
      '; the server asks for a client certificate (mutual TLS), which this source does not send: let the scaler in without one (a proxy, or a listener without client authentication)',
    ],
    [
      'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
      '; the server refused the handshake: it may ask for a client certificate (mutual TLS), which this source does not send, or share no cipher with the scaler',
    ],
    ['ECONNREFUSED', ''],
    ['ECONNRESET', ''],
    ['', ''],
  ])('%s', (code, hint) => {
    expect(tlsFailureHint(code, 'rabbitmq')).toBe(hint);
  });
});

describe('tlsOptions', () => {
  const certs = new CertDir('kis-tls-options-');
  afterAll(() => certs.remove());

  it('makes one TLS context for a private CA (as a list of CAs, Node made one per socket), none without', () => {
    certs.selfSigned('ca');
    const options = tlsOptions({ ca: certs.read('ca.crt'), unsafeSsl: false });
    expect(options.secureContext).toBeDefined();
    expect(options).not.toHaveProperty('ca');
    expect(options.rejectUnauthorized).toBe(true);
    expect(tlsOptions({ ca: undefined, unsafeSsl: false })).toEqual({ rejectUnauthorized: true });
    expect(tlsOptions({ ca: undefined, unsafeSsl: true })).toEqual({ rejectUnauthorized: false });
  });

  it('makes a context for a CA OpenSSL cannot read too: a connection then fails verification, the client is made', async () => {
    certs.selfSigned('server');
    const server = createServer({ key: certs.read('server.key'), cert: certs.read('server.crt') }, (socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const options = tlsOptions({ ca: PEM_CERTIFICATE_STUB, unsafeSsl: false });
      expect(options.secureContext).toBeDefined();
      const code = await new Promise<string>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...options }, () =>
          resolve('connected'),
        );
        socket.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
      });
      expect(code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
    } finally {
      server.close();
    }
  });
});
