// A CA bundle read from a file, checked before it is used: Node takes an empty, garbage or cut
// bundle without a word (a cut last block is dropped) and then trusts fewer or none.
import { X509Certificate } from 'node:crypto';

const BEGIN = '-----BEGIN CERTIFICATE-----';
const BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Throws, saying what is wrong, unless `text` holds one or more PEM certificates that parse, each
 * whole: none, or one begun and not ended (a file caught half-written). Text around them (curl's
 * and RHEL's comments, openssl's "Bag Attributes") and other blocks are left, as Node leaves them.
 */
export function checkCaBundle(text: string): void {
  const blocks = text.match(BLOCK) ?? [];
  if (blocks.length === 0) throw new Error('it holds no PEM certificate');
  const begun = text.split(BEGIN).length - 1;
  if (begun !== blocks.length) throw new Error(`${begun - blocks.length} of its ${begun} certificates is cut short`);
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new Error(`its certificate ${i + 1} does not parse (${(err as Error).message})`, { cause: err });
    }
  });
}
