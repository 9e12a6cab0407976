// A CA bundle read from a file, checked before it is used: Node takes an empty, garbage or cut
// bundle without a word (a cut last block is dropped) and then trusts fewer or none.
import { X509Certificate } from 'node:crypto';

const BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
/** A whole PEM block of any kind (a key beside the certificates, which Node leaves). */
const ANY_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * Throws, saying what is wrong, unless `text` holds one or more PEM certificates that parse, each
 * whole: none, or a block begun and not ended (a file caught half-written). Text around them
 * (curl's and RHEL's comments, openssl's "Bag Attributes") and other whole blocks are left, as
 * Node leaves them.
 */
export function checkCaBundle(text: string): void {
  const blocks = text.match(BLOCK) ?? [];
  if (blocks.length === 0) throw new Error('it holds no PEM certificate');
  // What is left past the whole blocks is comments (curl's, RHEL's, openssl's Bag Attributes), none
  // of which holds a run of five dashes: one there is a block begun and not ended, its marker cut
  // too where the file stops inside it (found by review).
  if (text.replace(ANY_BLOCK, '').includes('-----')) throw new Error('a PEM block in it is cut short');
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new Error(`its certificate ${i + 1} does not parse (${(err as Error).message})`, { cause: err });
    }
  });
}
