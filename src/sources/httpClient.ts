// GETs for the sources that read an HTTP API (Prometheus, RabbitMQ's management API): node's
// http(s) with one keep-alive agent per TLS setting, a bound on the answer's size, and one more try
// of a request that a kept-alive socket dropped as it was sent.
import http from 'node:http';
import https from 'node:https';
import { type SecureContext, createSecureContext, rootCertificates } from 'node:tls';
import { SourceBadAnswer, SourceUnavailable, errorMessage } from '../errors.ts';
import { REFUSED_CLIENT_CERT, secretHash } from './common.ts';

/** Answers larger than this are refused: the sources read one number or one object per request. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

export interface HttpRequest {
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
}

export interface HttpAnswer {
  readonly httpStatus: number;
  readonly body: string;
}

/** The TLS settings a client is made for: one client per distinct setting, shared by every read. */
export interface HttpTls {
  readonly https: boolean;
  readonly ca: string | undefined;
  readonly unsafeSsl: boolean;
}

/** The one call a source makes (its testing seam): a GET that gives back any HTTP answer. */
export interface HttpClient {
  /** Rejects with a typed error when no answer came, or with `signal`'s reason once it is aborted. */
  get(request: HttpRequest, signal: AbortSignal, where: string): Promise<HttpAnswer>;
  close(): void;
}

/** What a client's messages call the server, and which source's keys they point to. */
export interface HttpServerWords {
  /** "Prometheus": "Prometheus unreachable (...)". */
  readonly server: string;
  /** The prefix of the source's TLS keys: `gpu` for gpu.ca and gpu.unsafeSsl. */
  readonly keyPrefix: string;
  /** What an answer over the size bound may mean, said in parentheses after it. */
  readonly largeAnswerGuess: string;
}

const CLIENT_CERT_WANTED =
  'the server asks for a client certificate (mutual TLS), which this source does not send: let the scaler in without one (a proxy, or a listener without client authentication)';

/** Node's codes for a certificate that fails verification (no CA, another CA, another name, expired). */
const certificateFailure = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/;

/**
 * What a connection error's message adds for Node's error `code`: the keys that fix a certificate
 * that fails verification; for a handshake that fails otherwise (ERR_SSL_WRONG_VERSION_NUMBER: a
 * TLS URL on a plain port), that the address does not speak TLS; nothing for any other error.
 */
export function tlsFailureHint(code: string, keyPrefix: string): string {
  // The server asked for a client certificate, which these sources do not send: no CA setting
  // helps (found by review: told to set the CA). Over TLS 1.2 most servers say only
  // handshake_failure, which a cipher shared by neither side says too.
  if (REFUSED_CLIENT_CERT.test(code)) return `; ${CLIENT_CERT_WANTED}`;
  if (/ALERT_HANDSHAKE_FAILURE$/.test(code)) {
    return '; the server refused the handshake: it may ask for a client certificate (mutual TLS), which this source does not send, or share no cipher with the scaler';
  }
  if (certificateFailure.test(code)) {
    return `; set ${keyPrefix}.ca to the CA that signed its certificate (or ${keyPrefix}.unsafeSsl=true)`;
  }
  if (/^ERR_(SSL|TLS)_/.test(code)) return '; no TLS handshake there: check that the scheme and port are the TLS ones';
  return '';
}

/**
 * A redirect a source's server answered (an ingress that sends http to https, a login page): not
 * followed, since the address is the wrong one, which time does not mend. Undefined for any other
 * status.
 */
export function redirectRefusal(
  where: string,
  httpStatus: number,
  server: string,
  addressKey: string,
): SourceBadAnswer | undefined {
  if (httpStatus < 300 || httpStatus >= 400) return undefined;
  return new SourceBadAnswer(
    `${where}: ${server} redirected the request (HTTP ${httpStatus}); set ${addressKey} to the address it redirects to`,
  );
}

/**
 * Node's TLS options for a source's `ca` and `unsafeSsl`: a private CA is added to the public roots,
 * as Go's clients (and so KEDA) do, in one context made here: given as a list of CAs instead, Node
 * built a context for every new socket (about 7 ms of event loop each; found by review: 200 first
 * reads of a management API with a CA held the loop for up to 431 ms). Call once per client. A CA
 * that OpenSSL cannot read is left out of the context, and the connections fail verification.
 */
export function tlsOptions(tls: Pick<HttpTls, 'ca' | 'unsafeSsl'>): {
  secureContext?: SecureContext;
  rejectUnauthorized: boolean;
} {
  return {
    ...(tls.ca !== undefined ? { secureContext: createSecureContext({ ca: [...rootCertificates, tls.ca] }) } : {}),
    rejectUnauthorized: !tls.unsafeSsl,
  };
}

/**
 * GET with the agent's TLS settings; resolves with any HTTP status, rejects only when no answer came.
 * A request on a kept-alive socket that the server closed as it was sent (its idle timeout, a proxy's)
 * fails with ECONNRESET before any answer: it is sent once more, on a new socket, as Node's docs advise
 * for idempotent requests. Found by the metadata fuzzer as a spurious UNAVAILABLE from a healthy server.
 */
function httpGet(
  request: HttpRequest,
  agent: http.Agent,
  signal: AbortSignal,
  where: string,
  words: HttpServerWords,
  retried = false,
): Promise<HttpAnswer> {
  const client = request.url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let answered = false;
    const fail = (err: unknown) => {
      if (signal.aborted) return reject(signal.reason);
      const code = String((err as { code?: unknown }).code ?? '');
      if (code === 'ECONNRESET' && req.reusedSocket && !answered && !retried) {
        return resolve(httpGet(request, agent, signal, where, words, true));
      }
      const hint = tlsFailureHint(code, words.keyPrefix);
      reject(
        new SourceUnavailable(
          `${where}: ${words.server} unreachable (${errorMessage(err)}${code && !errorMessage(err).includes(code) ? `, ${code}` : ''})${hint}`,
        ),
      );
    };
    const req = client.get(request.url, { agent, headers: request.headers, signal }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) {
          res.destroy();
          reject(
            new SourceBadAnswer(`${where}: the answer is larger than ${MAX_ANSWER_BYTES} bytes (${words.largeAnswerGuess})`),
          );
        } else chunks.push(chunk);
      });
      res.on('end', () => resolve({ httpStatus: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', fail);
    });
    req.on('error', fail);
  });
}

/** The real client: node's http(s) with a keep-alive agent made for one TLS setting. */
export function nodeHttpClient(tls: HttpTls, words: HttpServerWords): HttpClient {
  const agent = tls.https ? new https.Agent({ keepAlive: true, ...tlsOptions(tls) }) : new http.Agent({ keepAlive: true });
  return { get: (request, signal, where) => httpGet(request, agent, signal, where, words), close: () => agent.destroy() };
}

/**
 * The TLS setting for a server address's protocol ('https:' or 'http:'), and the key of its client
 * in a source's ClientMap: the CA hashed, so that sources with different settings never share one.
 */
export function httpTlsFor(
  protocol: string,
  config: { readonly ca: string | undefined; readonly unsafeSsl: boolean },
): { tls: HttpTls; key: string } {
  if (protocol !== 'https:') return { tls: { https: false, ca: undefined, unsafeSsl: false }, key: 'http' };
  return {
    tls: { https: true, ca: config.ca, unsafeSsl: config.unsafeSsl },
    key: `https|${secretHash(config.ca)}|${String(config.unsafeSsl)}`,
  };
}
