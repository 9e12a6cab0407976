// kafkajs behind a narrow client interface (the testing seam), a pool of admin clients under the
// driver's key (brokers, credentials and topics: kafka.ts), kafkajs's logs routed to ours, and
// kafkajs errors mapped to typed errors.
//
// kafkajs traps handled here: fetchOffsets returns string offsets ("-1" = none committed) and is
// never called with resolveOffsets (that would commit offsets for the group). And a kafkajs client
// can keep a topic that does not exist (any more) among its metadata targets: a topic deleted after
// the client read it, or a missing topic read concurrently with others. From then on every
// metadata refresh of that client fails with UNKNOWN_TOPIC_OR_PARTITION, for every topic. The pool
// detects that (the topics the read named all exist) and replaces the client.
import { rootCertificates } from 'node:tls';
import { Kafka, type ISocketFactory, type LogEntry, type SASLOptions, logLevel } from 'kafkajs';
import { ScalerError, SourceNotFound, SourceUnauthenticated, SourceUnavailable, errorMessage } from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { KafkaSourceConfig } from '../trigger/types.ts';
import { ClientMap, REFUSED_CLIENT_CERT } from './common.ts';
import { patchListOffsetsIsolation } from './kafkajsListOffsets.ts';
import { patchIdleRequestQueue } from './kafkajsRequestQueue.ts';

patchIdleRequestQueue();
patchListOffsetsIsolation();

/** The calls the Kafka source makes; offsets as kafkajs gives them (strings, "-1" = none). */
export interface KafkaAdminClient {
  /** Earliest (low) and log-end (high) offsets of every partition of `topic`. */
  topicOffsets(topic: string): Promise<readonly { partition: number; high: string; low: string }[]>;
  /** The group's committed offsets on `topics` (every partition), or on every topic it committed on. */
  groupOffsets(
    groupId: string,
    topics?: readonly string[],
  ): Promise<readonly { topic: string; partitions: readonly { partition: number; offset: string }[] }[]>;
  /** Members of the group now (undefined when the broker does not say; groupMemberCount). */
  groupMembers(groupId: string): Promise<GroupMembers | undefined>;
  listTopics(): Promise<readonly string[]>;
  close(): Promise<void>;
}

/** What a connection to the brokers depends on (with the topics: the pool's key, kafka.ts). */
export type KafkaConnection = Pick<
  KafkaSourceConfig,
  'bootstrapServers' | 'sasl' | 'username' | 'password' | 'tls' | 'ca' | 'cert' | 'key' | 'unsafeSsl'
>;

/** Topics a read named that the cluster does not have. */
export class UnknownTopics extends Error {
  readonly topics: readonly string[];
  constructor(topics: readonly string[]) {
    super(`unknown topic(s): ${topics.join(', ')}`);
    this.topics = topics;
  }
}

/** The topics exist, but the brokers do not serve them yet (just created, or moving). */
export class TopicsNotReady extends Error {}

/** Every name and protocol error type along an error's cause chain. */
function errorTags(err: unknown): string[] {
  const tags: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== null && typeof e === 'object' && depth < 6; depth++) {
    const { name, type, code } = e as { name?: unknown; type?: unknown; code?: unknown };
    for (const t of [name, type, code]) if (typeof t === 'string') tags.push(t);
    e = (e as { cause?: unknown; originalError?: unknown }).cause ?? (e as { originalError?: unknown }).originalError;
  }
  return tags;
}

function isUnknownTopic(err: unknown): boolean {
  return errorTags(err).includes('UNKNOWN_TOPIC_OR_PARTITION');
}

const authTags = /SASL|AUTHORIZATION_FAILED|AUTHENTICATION|UNSUPPORTED_SASL_MECHANISM/;
const saslInterrupted = /Closed connection|timed out|ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|socket hang up/i;
/** Node's codes for a broker certificate that fails verification (unknown CA, wrong name, expired). */
const untrustedCertTag =
  /^(UNABLE_TO_(GET_ISSUER_CERT(_LOCALLY)?|VERIFY_LEAF_SIGNATURE)|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_(HAS_EXPIRED|NOT_YET_VALID|UNTRUSTED|SIGNATURE_FAILURE|REJECTED)|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/** Maps a kafkajs error to a typed error; `where` names group, topics and brokers (never credentials). */
export function kafkaError(where: string, err: unknown): Error {
  if (err instanceof ScalerError) return err;
  const tags = errorTags(err);
  const message = errorMessage(err);
  // kafkajs wraps whatever ends the SASL exchange as an authentication error: a connection closed
  // or a request timed out there (a broker restarting) is an outage, not refused credentials.
  if (tags.some((t) => /AUTHORIZATION_FAILED/.test(t)))
    return new SourceUnauthenticated(
      `${where}: brokers refused the request: the user's ACLs do not allow describing the group or its topics (${message})`,
    );
  if (tags.some((t) => authTags.test(t)) && !saslInterrupted.test(message))
    return new SourceUnauthenticated(`${where}: brokers refused the credentials (${message})`);
  const untrusted = tags.find((t) => untrustedCertTag.test(t));
  if (untrusted !== undefined) {
    return new SourceUnavailable(
      `${where}: TLS: the brokers' certificate failed verification (${untrusted}); ` +
        'set kafka.ca to the PEM of the CA that signed it (or kafka.unsafeSsl to true to skip verification)',
    );
  }
  const refused = tags.find((t) => REFUSED_CLIENT_CERT.test(t));
  if (refused !== undefined) {
    return new SourceUnauthenticated(
      `${where}: TLS: the brokers refused the client certificate (${refused}); ` +
        'set kafka.cert and kafka.key to a certificate signed by a CA the brokers trust',
    );
  }
  if (tags.includes('UNKNOWN_TOPIC_OR_PARTITION')) return new SourceNotFound(`${where}: topic not found (${message})`);
  if (tags.includes('GROUP_ID_NOT_FOUND') || tags.includes('INVALID_GROUP_ID')) {
    return new SourceNotFound(`${where}: consumer group not found (${message})`);
  }
  return new SourceUnavailable(`${where}: brokers unreachable or failing (${message})`);
}

/**
 * kafkajs's log lines into ours, at warn; per-request protocol and authentication errors (which
 * the read reports as typed errors, logged once per source while they last) at debug.
 */
export function kafkajsLogCreator(logger: Logger): () => (entry: LogEntry) => void {
  const log = logger.child({ component: 'kafkajs' });
  return () =>
    ({ namespace, level, log: { message, timestamp: _ts, ...extra } }) => {
      const text = `${namespace ? `[${namespace}] ` : ''}${message}`;
      const fields = { ...extra, ...(typeof extra.error === 'string' ? { error: errorMessage(extra.error) } : {}) };
      const perRequest = namespace === 'Connection' || namespace === 'BrokerPool' || namespace.startsWith('SaslAuthenticator');
      if (level >= logLevel.INFO || perRequest) log.debug(fields, text);
      else log.warn(fields, text);
    };
}

function sasl(config: KafkaConnection): SASLOptions | undefined {
  const credentials = { username: config.username ?? '', password: config.password ?? '' };
  switch (config.sasl) {
    case 'plain':
      return { mechanism: 'plain', ...credentials };
    case 'scram_sha256':
      return { mechanism: 'scram-sha-256', ...credentials };
    case 'scram_sha512':
      return { mechanism: 'scram-sha-512', ...credentials };
    default:
      return undefined;
  }
}

interface KafkajsOptions {
  readonly logger: Logger;
  readonly timeoutMs: number;
  readonly socketFactory?: ISocketFactory;
}

/** A described group's member count, or that the broker knows no classic group of that name. */
export type GroupMembers = number | 'no classic group';

/**
 * The members a described group counts. kafkajs speaks the classic DescribeGroups only; a group
 * of the new consumer protocol (KIP-848, generally available in Kafka 4.0) is answered `Dead`
 * with no members while its consumers serve (found by review: read as 0, no replica was ever
 * seen up and μ never learned), as is a group that does not exist yet. Which one it is, the
 * group's commits tell (readOffsets in kafka.ts): a classic group with commits and no members is
 * `Empty`.
 */
export function groupMemberCount(
  group: { readonly state: string; readonly members: readonly unknown[] } | undefined,
): GroupMembers | undefined {
  if (group === undefined) return undefined;
  return group.state === 'Dead' ? 'no classic group' : group.members.length;
}

/** The real client: a kafkajs admin, connected on first use; kafkajs reconnects by itself after a broker outage. */
function kafkajsAdmin(config: KafkaConnection, options: KafkajsOptions): KafkaAdminClient {
  const kafka = new Kafka({
    clientId: 'keda-inference-scaler',
    brokers: [...config.bootstrapServers],
    ...(config.tls
      ? {
          ssl: {
            rejectUnauthorized: !config.unsafeSsl,
            // A private CA is added to the public roots (as for gpu.ca), not put in their place.
            ...(config.ca !== undefined ? { ca: [...rootCertificates, config.ca] } : {}),
            ...(config.cert !== undefined && config.key !== undefined ? { cert: config.cert, key: config.key } : {}),
          },
        }
      : {}),
    ...(sasl(config) !== undefined ? { sasl: sasl(config) } : {}),
    connectionTimeout: options.timeoutMs,
    requestTimeout: options.timeoutMs,
    // Short: the read cache asks again on its own clock, and a read must end inside KEDA's 3 s.
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 },
    logLevel: logLevel.WARN,
    logCreator: kafkajsLogCreator(options.logger),
    ...(options.socketFactory !== undefined ? { socketFactory: options.socketFactory } : {}),
  });
  const admin = kafka.admin();
  let connected: Promise<void> | undefined;
  const ready = (): Promise<void> => {
    connected ??= admin.connect().catch((err: unknown) => {
      connected = undefined;
      throw err;
    });
    return connected;
  };
  return {
    async topicOffsets(topic) {
      await ready();
      return admin.fetchTopicOffsets(topic);
    },
    async groupOffsets(groupId, topics) {
      await ready();
      // Never resolveOffsets: it commits offsets for the group.
      return admin.fetchOffsets({ groupId, ...(topics !== undefined ? { topics: [...topics] } : {}) });
    },
    async groupMembers(groupId) {
      await ready();
      const { groups } = await admin.describeGroups([groupId]);
      return groupMemberCount(groups.find((g) => g.groupId === groupId));
    },
    async listTopics() {
      await ready();
      return admin.listTopics();
    },
    close: () => admin.disconnect(),
  };
}

interface PooledAdmin {
  readonly client: KafkaAdminClient;
}

export interface KafkaAdminPoolOptions extends KafkajsOptions {
  readonly adminFactory?: (config: KafkaConnection) => KafkaAdminClient;
}

/** One admin client per connection key, replaced when a deleted topic poisons its metadata. */
export class KafkaAdminPool<C extends KafkaConnection> {
  private readonly admins = new ClientMap<PooledAdmin>();
  private readonly options: KafkaAdminPoolOptions;
  private readonly keyOf: (config: C) => string;
  /** Replaced clients, closed once reads still running on them have had time to finish. */
  private readonly retiring = new Map<KafkaAdminClient, NodeJS.Timeout>();

  constructor(options: KafkaAdminPoolOptions, keyOf: (config: C) => string) {
    this.options = options;
    this.keyOf = keyOf;
  }

  get size(): number {
    return this.admins.size;
  }

  private entry(config: C): PooledAdmin {
    return this.admins.get(this.keyOf(config), () => ({
      client: this.options.adminFactory?.(config) ?? kafkajsAdmin(config, this.options),
    }));
  }

  /**
   * Runs `fn` on the shared client for `config`. On UNKNOWN_TOPIC_OR_PARTITION it lists the
   * cluster's topics: topics the read named (`fn` tells them to `named`: a trigger without a topic
   * list reads those its group committed on) that are missing become UnknownTopics. If they all
   * exist, the client's metadata is poisoned (see above) or a topic is not served yet (just
   * created): the client is replaced and `fn` runs again, then once more after a pause, before
   * giving up with TopicsNotReady.
   */
  async withAdmin<T>(
    config: C,
    fn: (client: KafkaAdminClient, named: (topics: readonly string[]) => void) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const entry = this.entry(config);
      let topics: readonly string[] = [];
      try {
        return await fn(entry.client, (named) => {
          topics = named;
        });
      } catch (err) {
        if (!isUnknownTopic(err)) throw err;
        const existing = new Set(await entry.client.listTopics());
        const missing = topics.filter((t) => !existing.has(t));
        if (missing.length > 0) throw new UnknownTopics(missing);
        if (attempt >= 2) throw new TopicsNotReady(errorMessage(err));
        if (attempt === 0) this.replace(config, entry);
        else await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private replace(config: C, entry: PooledAdmin): void {
    this.admins.delete(this.keyOf(config), entry);
    this.options.logger.info(
      { brokers: config.bootstrapServers.join(',') },
      'kafka admin client replaced after a topic was deleted',
    );
    const timer = setTimeout(() => {
      this.retiring.delete(entry.client);
      entry.client.close().catch(() => undefined);
    }, this.options.timeoutMs);
    timer.unref();
    this.retiring.set(entry.client, timer);
  }

  async closeIdle(idleMs: number): Promise<void> {
    await this.admins.closeIdle(idleMs, (a) => a.client.close());
  }

  async close(): Promise<void> {
    const retired = [...this.retiring];
    this.retiring.clear();
    for (const [, timer] of retired) clearTimeout(timer);
    await Promise.all([
      this.admins.close((a) => a.client.close()),
      Promise.allSettled(retired.map(([client]) => client.close())),
    ]);
  }
}
