// Server TLS for the gRPC port, with certificate reload: cert-manager (or any Secret update)
// rewrites the mounted files, and new connections get the new certificate without a restart.
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../errors.ts';
import { checkCaBundle } from '../pem.ts';
import { Episode } from '../telemetry/episode.ts';
import type { Logger } from '../telemetry/logger.ts';
import { Throttle } from '../telemetry/throttle.ts';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA that client certificates must chain to; set = mutual TLS. */
  readonly clientCaFile?: string | undefined;
}

interface Loaded {
  readonly options: SecureContextOptions;
  readonly fingerprint: string;
  /** When the served certificate (the chain's first) expires, and when it became valid. */
  readonly notAfterMs: number;
  readonly notBeforeMs: number;
}

/** `what` done, or an error naming the variables and files it was about (Node's names neither). */
function naming<T>(what: string, files: string, work: () => T): T {
  try {
    return work();
  } catch (err) {
    throw new Error(`${what} (${files}): ${errorMessage(err)}`, { cause: err });
  }
}

function load(files: TlsFiles): Loaded {
  const cert = naming('TLS_CERT_FILE', files.certFile, () => readFileSync(files.certFile));
  const key = naming('TLS_KEY_FILE', files.keyFile, () => readFileSync(files.keyFile));
  // Mutual TLS: the private CA is given explicitly; without it Node would trust the public roots.
  const caFile = files.clientCaFile;
  const ca = caFile === undefined ? undefined : naming('TLS_CLIENT_CA_FILE', caFile, () => readFileSync(caFile));
  const options: SecureContextOptions = { cert, key, ...(ca === undefined ? {} : { ca }) };
  // Throws on a key that does not match the certificate, or on unreadable PEM: better here than
  // at the first handshake.
  naming('TLS_CERT_FILE and TLS_KEY_FILE', `${files.certFile}, ${files.keyFile}`, () => createSecureContext(options));
  // A chain caught half-written, its intermediate begun and cut, is taken by Node without it: the
  // server then sent no intermediate until the next reload (found by review).
  naming('TLS_CERT_FILE', files.certFile, () => checkCaBundle(cert.toString('utf8')));
  if (ca !== undefined && caFile !== undefined) naming('TLS_CLIENT_CA_FILE', caFile, () => checkClientCa(ca));
  const fingerprint = createHash('sha256')
    .update(cert)
    .update(key)
    .update(ca ?? '')
    .digest('hex');
  const x509 = new X509Certificate(cert);
  return { options, fingerprint, notAfterMs: Date.parse(x509.validTo), notBeforeMs: Date.parse(x509.validFrom) };
}

/**
 * A client CA that holds no certificate, one that does not parse, or one cut short is refused: Node
 * takes an empty or garbage CA without a word and then trusts nobody, so mutual TLS refused every
 * client, KEDA included (found by review: an empty ca.crt, which some issuers write, was reloaded;
 * later, a bundle caught half-written dropped its last CA's clients until the next reload).
 */
function checkClientCa(ca: Buffer): void {
  try {
    checkCaBundle(ca.toString('utf8'));
  } catch (err) {
    throw new Error(`the client CA file: ${(err as Error).message}`, { cause: err });
  }
}

/** How often one kind of refused handshake is logged. */
const REFUSED_LOG_MS = 60_000;

/**
 * Logs handshakes the TLS port refuses (no client certificate under mutual TLS, a TLS version or
 * cipher it does not take), once a minute per reason: grpc-js reports none of them. A client
 * certificate from another CA is refused by Node after the handshake without any event, so it shows
 * only on the client's side (grpc-go: "tls: certificate required").
 */
export function logRefusedHandshakes(
  servers: Iterable<Http2Server | Http2SecureServer>,
  logger: Logger,
  nowMs: () => number = () => performance.now(),
): void {
  const throttle = new Throttle(REFUSED_LOG_MS, nowMs);
  for (const server of servers) {
    server.on('tlsClientError', (err: Error & { code?: string }, socket: Socket) => {
      const reason = err.code ?? err.message;
      if (!throttle.allows(reason)) return;
      logger.warn({ reason, err: err.message, peer: socket.remoteAddress }, 'TLS handshake refused');
    });
  }
}

/** While TLS files stay unreadable, a reminder this often. */
const RELOAD_FAILING_REMIND_MS = 10 * 60_000;
/** A certificate valid this soon counts as valid: the clocks of its issuer and of this node differ by seconds. */
const NOT_YET_VALID_SKEW_MS = 5 * 60_000;

/**
 * Server credentials whose certificate, key and client CA are re-read from their files every
 * `intervalMs`. grpc-js applies an update to its listening sockets with setSecureContext, so
 * connections opened after the change use it and open ones keep theirs. A half-written or
 * mismatched update is ignored (the previous certificate stays) and retried at the next tick:
 * said at once, every RELOAD_FAILING_REMIND_MS while it lasts, and when the files read again, and
 * counted (reloadFailures) beside the served certificate's expiry, so that a renewal the scaler
 * cannot take shows before the certificate expires and KEDA can no longer connect.
 */
export class ReloadingServerCredentials extends grpc.ServerCredentials {
  readonly #files: TlsFiles;
  readonly #logger: Logger;
  readonly #now: () => number;
  #fingerprint: string;
  #notAfterMs: number;
  #failing: Episode | undefined;
  #reloadFailures = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(files: TlsFiles, logger: Logger, now: () => number = Date.now) {
    const initial = load(files);
    const mutual = files.clientCaFile !== undefined;
    // requestCert with Node's default rejectUnauthorized: a client without a certificate from the CA is refused.
    super({ requestCert: mutual, rejectUnauthorized: mutual }, initial.options);
    this.#files = files;
    this.#logger = logger;
    this.#now = now;
    this.#fingerprint = initial.fingerprint;
    this.#notAfterMs = initial.notAfterMs;
  }

  /** When the certificate in use expires (epoch ms). */
  get expiresAtMs(): number {
    return this.#notAfterMs;
  }

  /** Reloads that found the files unreadable or inconsistent, since start. */
  get reloadFailures(): number {
    return this.#reloadFailures;
  }

  /** Re-reads the files; true when a new certificate was taken into use. */
  reload(): boolean {
    let next: Loaded;
    try {
      next = load(this.#files);
    } catch (err) {
      this.#failed((err as Error).message);
      return false;
    }
    // An expired certificate, or one not valid for minutes yet, does not replace one that is valid
    // (an old Secret restored: found by review, it was taken with an info line); the next reload
    // reads the files again.
    const nowMs = this.#now();
    const outside =
      next.notAfterMs <= nowMs ? 'expired' : next.notBeforeMs > nowMs + NOT_YET_VALID_SKEW_MS ? 'not valid yet' : undefined;
    if (outside !== undefined && this.#notAfterMs > nowMs && next.fingerprint !== this.#fingerprint) {
      const validity = `${new Date(next.notBeforeMs).toISOString()} to ${new Date(next.notAfterMs).toISOString()}`;
      this.#failed(`TLS_CERT_FILE (${this.#files.certFile}): the certificate is ${outside} (valid ${validity})`);
      return false;
    }
    if (this.#failing !== undefined) {
      const failing = this.#failing;
      this.#failing = undefined;
      this.#logger.info({ failures: failing.count, failedForSeconds: failing.seconds(this.#now()) }, 'TLS files readable again');
    }
    if (next.fingerprint === this.#fingerprint) return false;
    this.#fingerprint = next.fingerprint;
    this.#notAfterMs = next.notAfterMs;
    this.updateSecureContextOptions(next.options);
    this.#logger.info(
      { certFile: this.#files.certFile, expiresAt: new Date(next.notAfterMs).toISOString() },
      'TLS certificate reloaded',
    );
    return true;
  }

  #failed(message: string): void {
    this.#reloadFailures++;
    const nowMs = this.#now();
    const failing = (this.#failing ??= new Episode(nowMs, 0, RELOAD_FAILING_REMIND_MS));
    const line = failing.note(nowMs);
    if (line === undefined) return;
    const first = line === 'first';
    this.#logger.warn(
      {
        err: message,
        ...(!first && { failures: failing.count, failingForSeconds: failing.seconds(nowMs) }),
        certificateExpiresAt: new Date(this.#notAfterMs).toISOString(),
      },
      first
        ? 'TLS files unreadable or inconsistent; keeping the current certificate'
        : 'TLS files still unreadable or inconsistent; keeping the current certificate',
    );
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
