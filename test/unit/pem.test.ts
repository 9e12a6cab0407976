// CA bundles read from files (TLS_CLIENT_CA_FILE, STATE_STORE_TLS_CA_FILE): Node takes an empty,
// garbage or cut bundle without a word, so the scaler checks one before it uses it.
import { afterAll, describe, expect, it } from 'vitest';
import { checkCaBundle } from '../../src/pem.ts';
import { CertDir } from '../support/certs.ts';

const certs = new CertDir('kis-pem-');
certs.selfSigned('ca1');
certs.selfSigned('ca2');
afterAll(() => certs.remove());

const [ca1, ca2] = [certs.read('ca1.crt'), certs.read('ca2.crt')];

describe('checkCaBundle', () => {
  it.each([
    ['one CA', ca1],
    ['a bundle of two', ca1 + ca2],
    ['a bundle with blank lines and CRLFs', `\r\n${ca1.replace(/\n/g, '\r\n')}\n\n${ca2}\n`],
    // Found by review: bundles as they are shipped hold text around their certificates, which Node
    // takes, and a check that refused it stopped the start.
    [
      "curl's cacert.pem, a header and a name above each",
      `##\n## Bundle of CA Root Certificates\n##\n\nGlobalSign Root CA\n==================\n${ca1}\nOther CA\n========\n${ca2}`,
    ],
    [
      'openssl pkcs12 output, Bag Attributes above',
      `Bag Attributes\n    friendlyName: ca1\nsubject=CN = ca1\nissuer=CN = ca1\n${ca1}`,
    ],
    ['a key beside the CA', `${ca1}${certs.read('ca1.key')}`],
  ])('takes %s', (_, text) => {
    expect(() => checkCaBundle(text)).not.toThrow();
  });

  it.each([
    ['an empty file', '', /holds no PEM certificate/],
    ['garbage', 'not a certificate\n', /holds no PEM certificate/],
    // Found by review: Node drops a cut last block, and the second CA's clients were refused.
    ['a bundle caught half-written', ca1 + ca2.slice(0, ca2.length / 2), /a PEM block in it is cut short/],
    // Found by review: cut inside the next block's marker, it was taken, one CA short.
    ['a bundle cut inside a marker', `${ca1}-----BEGIN CERT`, /a PEM block in it is cut short/],
    ['a bundle cut at the start of a marker', `${ca1}-----`, /a PEM block in it is cut short/],
    ['a certificate that does not parse', ca1.replace(/\n[A-Za-z0-9+/]{8}/, '\n********'), /certificate 1 does not parse/],
  ])('refuses %s, saying what is wrong', (_, text, said) => {
    expect(() => checkCaBundle(text)).toThrow(said);
  });
});
