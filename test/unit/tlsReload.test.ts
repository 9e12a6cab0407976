// ReloadingServerCredentials on a clock of the test's: a certificate that is expired, or not valid
// for minutes yet, does not replace a valid one (an old Secret restored was taken with an info line;
// found by review); the failure is said and counted, and the next reload reads the files again.
import { copyFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ReloadingServerCredentials } from '../../src/server/tls.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { CertDir } from '../support/certs.ts';
import { logLines } from '../support/logLines.ts';

const DAY_MS = 86_400_000;
const certs = new CertDir('kis-tls-reload-');
afterAll(() => certs.remove());

describe('a certificate reload', () => {
  it('keeps a valid certificate over an expired one, says so and counts it, and takes a valid one after', () => {
    certs.selfSigned('long', 30);
    certs.selfSigned('short', 1);
    certs.selfSigned('next', 30);
    const files = { certFile: certs.file('served.crt'), keyFile: certs.file('served.key') };
    const serve = (name: string) => {
      copyFileSync(certs.file(`${name}.crt`), files.certFile);
      copyFileSync(certs.file(`${name}.key`), files.keyFile);
    };
    serve('long');
    const clock = { ms: Date.now() };
    const { sink, lines } = logLines<{ level: string; msg: string; err?: string }>();
    const credentials = new ReloadingServerCredentials(files, createLogger('info', sink), () => clock.ms);
    // Two days on: 'short' has expired, 'long' has 28 days left.
    clock.ms += 2 * DAY_MS;
    serve('short');
    expect(credentials.reload()).toBe(false);
    expect(credentials.reloadFailures).toBe(1);
    expect(lines.at(-1)).toMatchObject({
      level: 'warn',
      msg: 'TLS files unreadable or inconsistent; keeping the current certificate',
    });
    expect(lines.at(-1)!.err).toMatch(/the certificate is expired \(valid .* to .*\)$/);
    serve('next');
    expect(credentials.reload()).toBe(true);
    expect(lines.map((l) => l.msg)).toContain('TLS certificate reloaded');
  });

  it('takes a certificate valid within minutes of the clock (issuer and node a little apart)', () => {
    certs.selfSigned('now', 30);
    certs.selfSigned('soon', 30);
    const files = { certFile: certs.file('s.crt'), keyFile: certs.file('s.key') };
    copyFileSync(certs.file('now.crt'), files.certFile);
    copyFileSync(certs.file('now.key'), files.keyFile);
    const clock = { ms: Date.now() };
    const { sink } = logLines<{ level: string; msg: string }>();
    const credentials = new ReloadingServerCredentials(files, createLogger('info', sink), () => clock.ms);
    copyFileSync(certs.file('soon.crt'), files.certFile);
    copyFileSync(certs.file('soon.key'), files.keyFile);
    // The node's clock a minute behind the issuer's: 'soon' is not valid yet by a minute.
    clock.ms -= 60_000;
    expect(credentials.reload()).toBe(true);
    expect(credentials.reloadFailures).toBe(0);
  });
});
