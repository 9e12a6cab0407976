// Server TLS for the gRPC port, with certificate reload: cert-manager (or any Secret update)
// rewrites the mounted files, and new connections get the new certificate without a restart.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../telemetry/logger.ts';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA that client certificates must chain to; set = mutual TLS. */
  readonly clientCaFile?: string | undefined;
}

interface Loaded {
  readonly options: SecureContextOptions;
  readonly fingerprint: string;
}

function load(files: TlsFiles): Loaded {
  const cert = readFileSync(files.certFile);
  const key = readFileSync(files.keyFile);
  // Mutual TLS: the private CA is given explicitly; without it Node would trust the public roots.
  const ca = files.clientCaFile === undefined ? undefined : readFileSync(files.clientCaFile);
  const options: SecureContextOptions = { cert, key, ...(ca === undefined ? {} : { ca }) };
  // Throws on a key that does not match the certificate, or on unreadable PEM: better here than
  // at the first handshake.
  createSecureContext(options);
  const fingerprint = createHash('sha256')
    .update(cert)
    .update(key)
    .update(ca ?? '')
    .digest('hex');
  return { options, fingerprint };
}

/**
 * Server credentials whose certificate, key and client CA are re-read from their files every
 * `intervalMs`. grpc-js applies an update to its listening sockets with setSecureContext, so
 * connections opened after the change use it and open ones keep theirs. A half-written or
 * mismatched update is ignored (the previous certificate stays) and retried at the next tick.
 */
export class ReloadingServerCredentials extends grpc.ServerCredentials {
  readonly #files: TlsFiles;
  readonly #logger: Logger;
  #fingerprint: string;
  #timer: NodeJS.Timeout | undefined;

  constructor(files: TlsFiles, logger: Logger) {
    const initial = load(files);
    const mutual = files.clientCaFile !== undefined;
    // requestCert with Node's default rejectUnauthorized: a client without a certificate from the CA is refused.
    super({ requestCert: mutual, rejectUnauthorized: mutual }, initial.options);
    this.#files = files;
    this.#logger = logger;
    this.#fingerprint = initial.fingerprint;
  }

  /** Re-reads the files; true when a new certificate was taken into use. */
  reload(): boolean {
    let next: Loaded;
    try {
      next = load(this.#files);
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message }, 'TLS files unreadable or inconsistent; keeping the current certificate');
      return false;
    }
    if (next.fingerprint === this.#fingerprint) return false;
    this.#fingerprint = next.fingerprint;
    this.updateSecureContextOptions(next.options);
    this.#logger.info({ certFile: this.#files.certFile }, 'TLS certificate reloaded');
    return true;
  }

  startWatching(intervalMs: number): void {
    this.stopWatching();
    this.#timer = setInterval(() => this.reload(), intervalMs);
    this.#timer.unref();
  }

  stopWatching(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}
