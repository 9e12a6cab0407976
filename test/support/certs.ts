// Test certificates made by the openssl CLI in a scratch folder: self-signed ones (a CA, or a
// certificate no one trusts) and leaves a CA signs, all EC P-256, valid for 2 days unless told.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export class CertDir {
  readonly dir: string;

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  file(name: string): string {
    return join(this.dir, name);
  }

  read(name: string): string {
    return readFileSync(this.file(name), 'utf8');
  }

  /** NAME.key and a self-signed NAME.crt with CN=NAME, valid for `days` from now. */
  selfSigned(name: string, days = 2): void {
    this.openssl(
      'req',
      '-x509',
      ...EC_KEY,
      '-days',
      String(days),
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
    );
  }

  /** NAME.key and NAME.crt with CN=NAME, signed by CA (CA.key, CA.crt), with the given X.509 extensions. */
  signed(name: string, ca: string, extensions: string): void {
    writeFileSync(this.file(`${name}.ext`), extensions);
    this.openssl('req', '-new', ...EC_KEY, '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    this.openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    );
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'pipe' });
  }
}
