// RabbitMQ backlog. amqp: passive queue declare (checkQueue) on a shared connection per broker,
// ready messages and consumers, freshest for waking. http: the management API's queue object,
// ready (+ unacknowledged) messages, the broker's publish and served rates and counters (messages
// published into the queue, and served: acknowledged or delivered without ack), lagging by the
// broker's statistics interval. Both over TLS (amqps://, https://) with rabbitmq.ca and unsafeSsl.
import amqplib from 'amqplib';
import {
  ScalerError,
  SourceBadAnswer,
  SourceNotFound,
  SourceUnauthenticated,
  SourceUnavailable,
  clip,
  errorMessage,
  quote,
} from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { RabbitmqSourceConfig } from '../trigger/types.ts';
import { ClientMap, secretHash, sourceIdentity } from './common.ts';
import {
  type HttpClient,
  type HttpTls,
  httpTlsFor,
  nodeHttpClient,
  redirectRefusal,
  tlsFailureHint,
  tlsOptions,
} from './httpClient.ts';
import type { Source, SourceDriver, SourceReading } from './source.ts';
import { AmqpConnection } from './amqpConnection.ts';

const HEARTBEAT_SECONDS = 10;

/** The AMQP URL with the trigger's vhost applied (the URL path is the vhost). */
export function amqpUrl(config: Pick<RabbitmqSourceConfig, 'host' | 'vhostName'>): string {
  const url = new URL(config.host);
  if (config.vhostName !== undefined) url.pathname = `/${encodeURIComponent(config.vhostName)}`;
  if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(HEARTBEAT_SECONDS));
  return url.toString();
}

/**
 * Management API URL of one queue: {base}{prefix}/api/queues/{vhost}/{queue}. As KEDA reads it, the
 * URL path's last segment is the vhost (unless vhostName overrides it) and what comes before it a
 * path prefix (RabbitMQ's management.path_prefix, an ingress): http://host:15672/rabbitmq/ml.
 */
export function managementQueueUrl(config: Pick<RabbitmqSourceConfig, 'host' | 'vhostName' | 'queueName'>): {
  url: string;
  authorization: string | undefined;
} {
  const base = new URL(config.host);
  const { prefix, vhost: fromPath } = managementPath(base);
  const vhost = config.vhostName ?? fromPath;
  const authorization =
    base.username !== ''
      ? `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`
      : undefined;
  const url = `${base.protocol}//${base.host}${prefix}/api/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(config.queueName)}`;
  return { url, authorization };
}

/**
 * A management API URL's path as KEDA's RabbitMQ trigger reads it: the last segment is the vhost
 * (`/` when empty, so `.../prefix/` is the root vhost under `/prefix`), the segments before it a
 * path prefix (empty ones dropped).
 */
function managementPath(url: URL): { prefix: string; vhost: string } {
  const segments = url.pathname.split('/');
  const last = segments.pop() ?? '';
  const prefix = segments.filter((s) => s !== '').join('/');
  return { prefix: prefix === '' ? '' : `/${prefix}`, vhost: last === '' ? '/' : decodeURIComponent(last) };
}

/**
 * The vhost a read opens. Over amqp it is the URL's whole path after its first "/", as amqplib (and
 * KEDA) open it: `amqp://h/ml/` opens "ml/", not "ml" (found by review: the NOT_FOUND named "ml").
 */
function vhostOf(config: RabbitmqSourceConfig): string {
  if (config.vhostName !== undefined) return config.vhostName;
  const url = new URL(config.host);
  if (url.protocol.startsWith('http')) return managementPath(url).vhost;
  const path = url.pathname.slice(1);
  return path === '' ? '/' : decodeURIComponent(path);
}

function label(config: RabbitmqSourceConfig): string {
  const url = new URL(config.host);
  return `rabbitmq queue ${quote(config.queueName)} (vhost ${quote(vhostOf(config))}) at ${url.protocol}//${url.host}`;
}

/** Maps amqplib's connection and channel errors to typed errors. */
function amqpError(where: string, err: unknown): Error {
  const message = errorMessage(err);
  const code = (err as { code?: unknown }).code;
  // The socket's own error, as amqplib passes it on: an amqps:// broker whose certificate fails
  // verification, or a plain port.
  const hint = typeof code === 'string' ? tlsFailureHint(code, 'rabbitmq') : '';
  if (hint !== '') {
    return new SourceUnavailable(
      `${where}: broker unreachable (${message}${message.includes(code as string) ? '' : `, ${code as string}`})${hint}`,
    );
  }
  if (code === 404 || /NOT_FOUND/.test(message)) return new SourceNotFound(`${where}: not found (${message})`);
  if (code === 403 || /ACCESS.REFUSED/.test(message)) return new SourceUnauthenticated(`${where}: access refused (${message})`);
  // RabbitMQ closes the handshake with 530 NOT_ALLOWED both for a vhost that does not exist and
  // for one the user has no permission on; amqplib keeps neither the code nor the text of that
  // close ("Expected ConnectionOpenOk; got <ConnectionClose channel:0>"), so the two cannot be told
  // apart over amqp (the management API can: 404 and 401).
  // A socket's error (ECONNREFUSED to port 5300, a host named rabbitmq-530) is none of that.
  const refusedOpen =
    typeof code !== 'string' && /\b530\b|NOT.ALLOWED|Expected ConnectionOpenOk; got <ConnectionClose/i.test(message);
  // The same close for a vhost's or user's connection limit: capacity, which passes with time.
  if (refusedOpen && /connection limit/i.test(message)) {
    return new SourceUnavailable(`${where}: the broker refused the connection: a connection limit is reached (${message})`);
  }
  if (refusedOpen) {
    return new SourceNotFound(
      `${where}: the broker refused to open the virtual host: it does not exist, the user has no permission on it, or a connection limit of the vhost or the user is reached (${message})`,
    );
  }
  return new SourceUnavailable(`${where}: ${message}`);
}

/** What the amqp read needs of a broker (the testing seam): a passive declare, and closing. */
export interface AmqpQueueClient {
  /**
   * Ready messages and consumers of `queue`; rejects with amqplib's error (code 404, 403, ...) as it
   * comes, or with the signal's reason if the read's deadline passes while it waits for a channel.
   */
  checkQueue(queue: string, signal?: AbortSignal): Promise<{ messageCount: number; consumerCount: number }>;
  close(): Promise<void>;
}

/** An amqps:// broker's TLS settings (undefined for amqp://). */
export interface AmqpTls {
  readonly ca: string | undefined;
  readonly unsafeSsl: boolean;
}

/** Makes the client of one broker URL (vhost and heartbeat applied); the driver shares it per URL and TLS setting. */
export type AmqpClientFactory = (url: string, tls: AmqpTls | undefined) => AmqpQueueClient;

/** The management API's answer to a GET (the testing seam for protocol http). */
export interface ManagementAnswer {
  readonly status: number;
  json(): Promise<unknown>;
}

export type ManagementGet = (
  url: string,
  headers: Readonly<Record<string, string>>,
  signal: AbortSignal,
) => Promise<ManagementAnswer>;

export interface RabbitmqDriverOptions {
  readonly logger: Logger;
  readonly timeoutMs: number;
  /** Test seam: replaces the amqplib connection (one per broker URL and TLS setting). */
  readonly amqpClientFactory?: AmqpClientFactory;
  /** Test seam: replaces the management API's HTTP client (one per TLS setting). */
  readonly managementClientFactory?: (tls: HttpTls) => HttpClient;
  /** Test seam: replaces every GET of the management API, whatever its TLS setting. */
  readonly managementGet?: ManagementGet;
}

/** What the shared HTTP client's messages say of the management API. */
const managementWords = { server: 'management API', keyPrefix: 'rabbitmq', largeAnswerGuess: 'not a queue object?' };

/** The amqplib connection of one broker URL, with an amqps:// broker's TLS settings. */
function amqpConnection(url: string, tls: AmqpTls | undefined, logger: Logger, timeoutMs: number): AmqpConnection {
  if (tls === undefined) return new AmqpConnection(url, logger, timeoutMs);
  const socket = tlsOptions(tls);
  return new AmqpConnection(url, logger, timeoutMs, (u, options) => amqplib.connect(u, { ...options, ...socket }));
}

interface ManagementQueue {
  type?: unknown;
  messages_ready?: unknown;
  messages_unacknowledged?: unknown;
  consumers?: unknown;
  message_stats?: {
    publish?: unknown;
    ack?: unknown;
    deliver_no_ack?: unknown;
    get_no_ack?: unknown;
    publish_details?: { rate?: unknown };
    ack_details?: { rate?: unknown };
    deliver_no_ack_details?: { rate?: unknown };
    get_no_ack_details?: { rate?: unknown };
    deliver_get_details?: { rate?: unknown };
  };
}

/**
 * Messages served from the queue since its statistics began: acknowledged, or delivered without an
 * acknowledgement (autoAck consumers, basic.get with no-ack); undefined when the broker counts none.
 */
function servedCount(stats: ManagementQueue['message_stats']): number | undefined {
  return summed([stats?.ack, stats?.deliver_no_ack, stats?.get_no_ack]);
}

/**
 * Messages served a second, as servedCount counts them: acknowledged, and delivered or got
 * without an acknowledgement. The broker reports `ack` (0) beside the others once a queue has
 * delivered anything, so the acknowledgements alone read an autoAck fleet as serving nothing
 * (found by review: 0 a second for 5 served).
 */
function servedRate(stats: ManagementQueue['message_stats']): number | undefined {
  return summed([stats?.ack_details?.rate, stats?.deliver_no_ack_details?.rate, stats?.get_no_ack_details?.rate]);
}

function summed(values: readonly unknown[]): number | undefined {
  const counts = values.map(finite);
  return counts.every((c) => c === undefined) ? undefined : counts.reduce<number>((sum, c) => sum + (c ?? 0), 0);
}

/**
 * A finite number, at least 0: a count or a rate the broker gives below 0 is one of its known
 * faults (a negative messages_ready, rabbitmq-management#296; negative rates), not work undone
 * (found by review: a backlog of -4 reached the model).
 */
function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? Math.max(0, value) : undefined;
}

export class RabbitmqDriver implements SourceDriver<RabbitmqSourceConfig> {
  readonly kind = 'rabbitmq' as const;
  /** AMQP connections, one per broker URL and TLS setting. */
  private readonly connections = new ClientMap<AmqpQueueClient>();
  /** Management API clients, one per TLS setting (CA, verification), shared by every queue. */
  private readonly managementClients = new ClientMap<HttpClient>();
  private readonly amqpClientFactory: AmqpClientFactory;
  private readonly managementClientFactory: (tls: HttpTls) => HttpClient;
  private readonly managementGet: ManagementGet | undefined;

  constructor(options: RabbitmqDriverOptions) {
    const { logger, timeoutMs } = options;
    this.amqpClientFactory = options.amqpClientFactory ?? ((url, tls) => amqpConnection(url, tls, logger, timeoutMs));
    this.managementClientFactory = options.managementClientFactory ?? ((tls) => nodeHttpClient(tls, managementWords));
    this.managementGet = options.managementGet;
  }

  identity(config: RabbitmqSourceConfig): string {
    // The TLS settings are in it: triggers that differ there never share a connection or a cache entry.
    return sourceIdentity(
      'rabbitmq',
      config.protocol,
      secretHash(config.host, config.ca, String(config.unsafeSsl)),
      vhostOf(config),
      config.queueName,
      config.excludeUnacknowledged ? 'ready' : 'all',
    );
  }

  create(config: RabbitmqSourceConfig): Source {
    const where = label(config);
    const read = config.protocol === 'amqp' ? this.amqpReader(config, where) : this.httpReader(config, where);
    return { identity: this.identity(config), label: where, kind: 'rabbitmq', read };
  }

  private amqpReader(config: RabbitmqSourceConfig, where: string): (signal: AbortSignal) => Promise<SourceReading> {
    const url = amqpUrl(config);
    const tls = url.startsWith('amqps:') ? { ca: config.ca, unsafeSsl: config.unsafeSsl } : undefined;
    // The CA hashed once, not at every read.
    const key = tls === undefined ? url : `${url}|${secretHash(tls.ca)}|${String(tls.unsafeSsl)}`;
    return async (signal) => {
      const connection = this.connections.get(key, () => this.amqpClientFactory(url, tls));
      try {
        const { messageCount, consumerCount } = await connection.checkQueue(config.queueName, signal);
        // checkQueue counts ready messages only: they are the backlog and all of it waits.
        return { backlog: messageCount, waiting: messageCount, consumers: consumerCount };
      } catch (err) {
        throw amqpError(where, err);
      }
    };
  }

  private httpReader(config: RabbitmqSourceConfig, where: string): (signal: AbortSignal) => Promise<SourceReading> {
    const get = this.managementGet ?? this.sharedGet(config, where);
    // The queue's URL and credentials built once, not at every read.
    const { url, authorization } = managementQueueUrl(config);
    const headers = { accept: 'application/json', ...(authorization ? { authorization } : {}) };
    return (signal) => this.readHttp(config, { url, headers }, where, get, signal);
  }

  /** A GET through the management client of the source's TLS setting, got at each read (closeIdle sees its use). */
  private sharedGet(config: RabbitmqSourceConfig, where: string): ManagementGet {
    const { tls, key } = httpTlsFor(new URL(config.host).protocol, config);
    return async (url, headers, signal) => {
      const client = this.managementClients.get(key, () => this.managementClientFactory(tls));
      const answer = await client.get({ url: new URL(url), headers }, signal, where);
      return { status: answer.httpStatus, json: async () => JSON.parse(answer.body) as unknown };
    };
  }

  private async readHttp(
    config: RabbitmqSourceConfig,
    { url, headers }: { readonly url: string; readonly headers: Readonly<Record<string, string>> },
    where: string,
    get: ManagementGet,
    signal: AbortSignal,
  ): Promise<SourceReading> {
    let response: ManagementAnswer;
    try {
      response = await get(url, headers, signal);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      // The shared client's errors are typed already, and name the server and the TLS keys.
      if (err instanceof ScalerError) throw err;
      throw new SourceUnavailable(
        `${where}: management API unreachable (${errorMessage((err as { cause?: unknown }).cause ?? err)})`,
      );
    }
    if (response.status === 404) throw new SourceNotFound(`${where}: queue or vhost not found (HTTP 404)`);
    if (response.status === 401 || response.status === 403) {
      throw new SourceUnauthenticated(`${where}: management API refused the credentials (HTTP ${response.status})`);
    }
    // Another 4xx (400 for a path prefix that is none) is a request the API will never take, not an
    // outage; 408 and 429 pass with time.
    if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
      throw new SourceBadAnswer(
        `${where}: management API refused the request (HTTP ${response.status}); check rabbitmq.host and its path prefix`,
      );
    }
    const redirected = redirectRefusal(where, response.status, 'management API', 'rabbitmq.host');
    if (redirected !== undefined) throw redirected;
    if (response.status < 200 || response.status > 299)
      throw new SourceUnavailable(`${where}: management API answered HTTP ${response.status}`);
    // A 200 that is no queue object (an OAuth proxy's login page, null) is an unusable answer.
    const body = (await response.json().catch(() => undefined)) as ManagementQueue | null | undefined;
    // A list (the queues of a vhost: a path that named none) or an error object is no queue object
    // either, and says so (found by review: "statistics not collected yet?").
    if (typeof body !== 'object' || body === null || Array.isArray(body) || 'error' in body) {
      // An object here, not a list, is one that holds `error`.
      const said = Array.isArray(body)
        ? ' (a list: does the URL name the queue?)'
        : typeof body === 'object' && body !== null
          ? `: ${clip(JSON.stringify(body), 120)}`
          : '';
      throw new SourceBadAnswer(`${where}: management API answered HTTP ${response.status} with no queue object${said}`);
    }
    // A stream keeps what its consumers read: its length is its log, never drained (found by review).
    if (body.type === 'stream') {
      throw new SourceBadAnswer(
        `${where}: a stream queue keeps the messages its consumers read, so its length is no backlog; measure its consumers' offsets instead`,
      );
    }
    const ready = finite(body.messages_ready);
    const unackedCount = finite(body.messages_unacknowledged);
    if (ready === undefined) {
      // A queue just declared may not have statistics yet; a missing count is not a 0.
      throw new SourceBadAnswer(`${where}: management API gave no messages_ready (statistics not collected yet?)`);
    }
    let backlog = ready;
    if (!config.excludeUnacknowledged) {
      // Nor is a missing unacknowledged count, where the backlog counts it: the messages in service.
      if (unackedCount === undefined) {
        throw new SourceBadAnswer(`${where}: management API gave no messages_unacknowledged (statistics not collected yet?)`);
      }
      backlog += unackedCount;
    }
    const stats = body.message_stats;
    const publish = finite(stats?.publish_details?.rate);
    const served = servedRate(stats) ?? finite(stats?.deliver_get_details?.rate);
    // Counters: the model's arrival marks (bursts, the head of a busy period) and Little's law.
    const arrivedTotal = finite(stats?.publish);
    const servedTotal = servedCount(stats);
    return {
      backlog,
      waiting: ready,
      ...(unackedCount !== undefined ? { inFlight: unackedCount } : {}),
      ...(config.excludeUnacknowledged && { inFlightInBacklog: false as const }),
      consumers: finite(body.consumers),
      ...(publish !== undefined ? { arrivalRatePerSecond: publish } : {}),
      ...(served !== undefined ? { serviceRatePerSecond: served } : {}),
      ...(arrivedTotal !== undefined ? { arrivedTotal, orderedQueues: 1 } : {}),
      ...(servedTotal !== undefined ? { servedTotal } : {}),
    };
  }

  async closeIdle(idleMs: number): Promise<void> {
    await Promise.all([
      this.connections.closeIdle(idleMs, (c) => c.close()),
      this.managementClients.closeIdle(idleMs, (c) => c.close()),
    ]);
  }

  async close(): Promise<void> {
    await Promise.all([this.connections.close((c) => c.close()), this.managementClients.close((c) => c.close())]);
  }
}
