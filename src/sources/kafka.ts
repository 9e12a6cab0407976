// Kafka consumer-group lag: B = sum over the topics' partitions of (log-end - committed offset),
// with KEDA's rules for partitions the group has not committed on. One kafkajs admin client per
// broker list, credentials and topics, kept connected (kafkajs reconnects by itself); the pure lag
// rules live in ./kafkaLag.ts.
import type { ISocketFactory } from 'kafkajs';
import { QUOTED_CHARS, SourceBadAnswer, SourceNotFound, SourceUnavailable, clip, errorMessage, quote } from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { KafkaSourceConfig } from '../trigger/types.ts';
import { secretHash, sourceIdentity } from './common.ts';
import {
  KafkaAdminPool,
  type KafkaAdminClient,
  type KafkaConnection,
  TopicsNotReady,
  UnknownTopics,
  kafkaError,
} from './kafkaAdmin.ts';
import { type PartitionOffsets, RetentionSkips, kafkaReading, parseOffset } from './kafkaLag.ts';
import type { Source, SourceDriver, SourceReading } from './source.ts';

export { kafkaReading, partitionLag, type PartitionOffsets } from './kafkaLag.ts';
export type { KafkaAdminClient } from './kafkaAdmin.ts';

/** Same key for every trigger that reaches the same brokers with the same credentials. */
function connectionKey(config: KafkaConnection): string {
  return secretHash(
    [...config.bootstrapServers].sort().join(','),
    config.sasl,
    config.username,
    config.password,
    String(config.tls),
    config.ca,
    config.cert,
    config.key,
    String(config.unsafeSsl),
  );
}

/** Room for a few topics or host:port pairs (cloud broker names run to 60 characters each). */
const LIST_CHARS = 4 * QUOTED_CHARS;
/** A read joins the attempt under way for at most this long after it started (KafkaDriver.create). */
const JOIN_ATTEMPT_MS = 30_000;

function label(config: KafkaSourceConfig): string {
  const topics =
    config.topics.length > 0 ? `topic(s) ${clip(config.topics.join(','), LIST_CHARS)}` : 'all topics it has committed on';
  return `kafka group ${quote(config.consumerGroup)} on ${topics} at ${clip(config.bootstrapServers.join(','), LIST_CHARS)}`;
}

/** Offsets of every partition of the trigger's topics, plus the group's member count. */
async function readOffsets(
  admin: KafkaAdminClient,
  config: KafkaSourceConfig,
  where: string,
  named: (topics: readonly string[]) => void,
): Promise<{ partitions: PartitionOffsets[]; consumers: number | undefined }> {
  const group = config.consumerGroup;
  let topics = [...config.topics];
  let committedByTopic: Awaited<ReturnType<KafkaAdminClient['groupOffsets']>> | undefined;
  if (topics.length === 0) {
    // No topic list: every topic the group has committed offsets on (as KEDA does).
    committedByTopic = await admin.groupOffsets(group);
    topics = committedByTopic.map((t) => t.topic);
    if (topics.length === 0) {
      throw new SourceNotFound(
        `${where}: consumer group ${quote(group)} has no committed offsets on any topic, so there is nothing to measure; ` +
          'set kafka.topic to the topic(s) it consumes',
      );
    }
  }
  named(topics);
  const members = admin.groupMembers(group).catch(() => undefined);
  const readEnds = (names: readonly string[]) =>
    Promise.all(names.map(async (topic) => ({ topic, partitions: await admin.topicOffsets(topic) })));
  // Topics first, the group's offsets after: kafkajs can keep a missing topic in its metadata for
  // good when the two look it up at the same time.
  let ends = await readEnds(topics);
  const committed = committedByTopic ?? (await admin.groupOffsets(group, topics));
  const committedAt = new Map<string, number | undefined>();
  for (const t of committed) {
    for (const p of t.partitions) committedAt.set(`${t.topic}/${p.partition}`, parseOffset(p.offset, where));
  }
  // A commit past the log end read before it is mostly a message produced and committed between the
  // two reads, not a topic created again (which counts as nothing committed, kafkaLag.ts): those
  // topics' ends are read once more, now after the commits (found by review: under earliest such a
  // race counted the partition's whole retained log).
  const ahead = new Set(
    ends.flatMap(({ topic, partitions: list }) =>
      list.some((p) => (committedAt.get(`${topic}/${p.partition}`) ?? -1) > Number(p.high)) ? [topic] : [],
    ),
  );
  if (ahead.size > 0) {
    const again = new Map((await readEnds([...ahead])).map((e) => [e.topic, e]));
    ends = ends.map((e) => again.get(e.topic) ?? e);
  }
  const partitions = ends.flatMap(({ topic, partitions: list }) =>
    list.map((p) => {
      // No log end (-1) says nothing of the partition's messages: not an empty partition.
      const logEnd = parseOffset(p.high, where);
      if (logEnd === undefined) {
        throw new SourceBadAnswer(`${where}: the brokers gave no log-end offset for partition ${p.partition} of ${quote(topic)}`);
      }
      return {
        topic,
        partition: p.partition,
        logStart: parseOffset(p.low, where) ?? 0,
        logEnd,
        committed: committedAt.get(`${topic}/${p.partition}`),
      };
    }),
  );
  if (partitions.length === 0) {
    throw new SourceBadAnswer(`${where}: the brokers listed no partitions for ${clip(topics.join(','), LIST_CHARS)}`);
  }
  // No classic group: a group of the new consumer protocol where it has commits (its members
  // unknown to the classic call), else one with no member yet.
  const described = await members;
  const consumers =
    described === 'no classic group' ? (partitions.some((p) => p.committed !== undefined) ? undefined : 0) : described;
  return { partitions, consumers };
}

export interface KafkaDriverOptions {
  readonly logger: Logger;
  readonly timeoutMs: number;
  /** Test seam: replaces kafkajs's socket factory (e.g. to route through a proxy). */
  readonly socketFactory?: ISocketFactory;
  /** Test seam: replaces the kafkajs admin client. */
  readonly adminFactory?: (config: KafkaConnection) => KafkaAdminClient;
}

export class KafkaDriver implements SourceDriver<KafkaSourceConfig> {
  readonly kind = 'kafka' as const;
  private readonly pool: KafkaAdminPool<KafkaSourceConfig>;

  constructor(options: KafkaDriverOptions) {
    // A client per brokers, credentials and topics (the group's, without kafka.topic): kafkajs asks
    // for the metadata of every topic a client ever read, and fails the whole request on one
    // partition's error, so one client shared by the cluster's triggers failed them all for one
    // topic with a partition offline, or whose Describe was revoked (found by review). KEDA's
    // scaler keeps a client per trigger too.
    this.pool = new KafkaAdminPool(options, (config: KafkaSourceConfig) =>
      JSON.stringify([
        connectionKey(config),
        config.topics.length > 0 ? [...config.topics].sort() : { group: config.consumerGroup },
      ]),
    );
  }

  identity(config: KafkaSourceConfig): string {
    return sourceIdentity(
      'kafka',
      connectionKey(config),
      config.consumerGroup,
      [...config.topics].sort().join(','),
      config.offsetResetPolicy,
      config.scaleToZeroOnInvalidOffset ? 'zero-on-invalid' : 'one-on-invalid',
      config.allowIdleConsumers ? 'idle-ok' : 'cap',
    );
  }

  create(config: KafkaSourceConfig): Source {
    const where = label(config);
    const skips = new RetentionSkips();
    // One attempt at a time: kafkajs takes no signal, so a read that timed out leaves its attempt
    // running (its retries can outlast several timeouts), and the next read joins it rather than
    // start another beside it (found by review: five reads of one source at once on a slow broker).
    // One older than JOIN_ATTEMPT_MS is left to itself: an attempt that never settled would hold the
    // source for good.
    let running: { readonly reading: Promise<SourceReading>; readonly startedMs: number } | undefined;
    const read = async (signal: AbortSignal): Promise<SourceReading> => {
      // kafkajs takes no AbortSignal: race it, so a timed-out read gives its slot back at once.
      const aborted = new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
      aborted.catch(() => undefined);
      const attempt = async () => {
        try {
          const { partitions, consumers } = await this.pool.withAdmin(config, (admin, named) =>
            readOffsets(admin, config, where, named),
          );
          return kafkaReading(partitions, config, consumers, skips);
        } catch (err) {
          if (err instanceof UnknownTopics) {
            throw new SourceNotFound(
              `${where}: topic(s) ${clip(err.topics.map((t) => quote(t)).join(', '), LIST_CHARS)} do not exist`,
            );
          }
          if (err instanceof TopicsNotReady) throw new SourceUnavailable(`${where}: topic not served yet (${err.message})`);
          throw kafkaError(where, err);
        }
      };
      const nowMs = performance.now();
      if (running === undefined || nowMs - running.startedMs > JOIN_ATTEMPT_MS) {
        const started = { reading: attempt(), startedMs: nowMs };
        const settled = () => {
          if (running === started) running = undefined;
        };
        started.reading.then(settled, settled);
        running = started;
      }
      return Promise.race([running.reading, aborted]);
    };
    return { identity: this.identity(config), label: where, kind: 'kafka', read };
  }

  closeIdle(idleMs: number): Promise<void> {
    return this.pool.closeIdle(idleMs);
  }

  close(): Promise<void> {
    return this.pool.close().catch((err: unknown) => {
      throw new Error(`closing kafka admin clients: ${errorMessage(err)}`);
    });
  }
}
