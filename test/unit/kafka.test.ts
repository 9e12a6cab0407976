// Kafka lag rules (table-driven, as in docs/sources.md) and the driver over a fake admin client:
// topic discovery, missing topics, a poisoned client replaced, error mapping, one client per
// broker list + credentials.
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { SourceBadAnswer, SourceNotFound, SourceUnauthenticated, SourceUnavailable } from '../../src/errors.ts';
import {
  type KafkaAdminClient,
  KafkaDriver,
  type PartitionOffsets,
  kafkaReading,
  partitionLag,
} from '../../src/sources/kafka.ts';
import { type GroupMembers, groupMemberCount, kafkaError, kafkajsLogCreator } from '../../src/sources/kafkaAdmin.ts';
import { RetentionSkips, parseOffset, partitionSet } from '../../src/sources/kafkaLag.ts';
import { updateRates } from '../../src/model/rates.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import { parseTrigger } from '../../src/trigger/schema.ts';
import type { KafkaSourceConfig } from '../../src/trigger/types.ts';
import { logLines } from '../support/logLines.ts';
import {
  PEM_CERTIFICATE_STUB,
  PEM_EC_PRIVATE_KEY_STUB,
  PEM_ENCRYPTED_PRIVATE_KEY_STUB,
  PEM_LEGACY_ENCRYPTED_KEY_STUB,
} from '../fixtures/pem.ts';

const p = (logStart: number, logEnd: number, committed: number | undefined, partition = 0, topic = 't'): PartitionOffsets => ({
  topic,
  partition,
  logStart,
  logEnd,
  committed,
});

describe('partitionLag', () => {
  const latest = { offsetResetPolicy: 'latest', scaleToZeroOnInvalidOffset: false } as const;
  const earliest = { offsetResetPolicy: 'earliest', scaleToZeroOnInvalidOffset: false } as const;
  const latestZero = { offsetResetPolicy: 'latest', scaleToZeroOnInvalidOffset: true } as const;
  const earliestZero = { offsetResetPolicy: 'earliest', scaleToZeroOnInvalidOffset: true } as const;
  it.each([
    // committed: E - C, whatever the policy
    ['committed', p(0, 10, 4), latest, 6],
    ['committed', p(0, 10, 4), earliest, 6],
    ['committed', p(0, 10, 4), latestZero, 6],
    ['caught up', p(0, 10, 10), latest, 0],
    // committed past the log end (a re-created topic): out of range, reset as if nothing was
    // committed (found by review: 0 left a workload at zero asleep until the log passed C)
    ['committed past the log end, earliest', p(0, 3, 8), earliest, 3],
    ['committed past the log end, latest', p(0, 3, 8), latest, 1],
    ['committed past the log end, scaleToZeroOnInvalidOffset', p(0, 3, 8), latestZero, 0],
    ['committed below the retained log (retention deleted the rest)', p(50, 80, 10), latest, 30],
    // nothing committed: the policy decides
    ['no commit, latest', p(0, 10, undefined), latest, 1],
    ['no commit, latest, empty partition', p(0, 0, undefined), latest, 1],
    ['no commit, earliest', p(0, 10, undefined), earliest, 10],
    ['no commit, earliest, trimmed log', p(40, 100, undefined), earliest, 60],
    ['no commit, earliest, empty partition', p(0, 0, undefined), earliest, 0],
    ['no commit, latest, scaleToZeroOnInvalidOffset', p(0, 10, undefined), latestZero, 0],
    ['no commit, earliest, scaleToZeroOnInvalidOffset', p(0, 10, undefined), earliestZero, 0],
  ] as const)('%s: %o under %o -> %d', (_, offsets, rules, lag) => {
    expect(partitionLag(offsets, rules)).toBe(lag);
  });
});

// Found by review: a group behind the earliest retained offset resets past the deleted messages,
// and its committed offset (the served counter) jumped by them: read as completions, μ was learned
// thousands of times too high under exactly the backlog that had outrun retention.
describe('kafkaReading: a group that retention left behind', () => {
  const rules = { offsetResetPolicy: 'earliest', scaleToZeroOnInvalidOffset: false, allowIdleConsumers: false } as const;

  it('puts the read that sees its committed offset jump past the deleted messages on a basis of its own', () => {
    const skips = new RetentionSkips();
    const behind = kafkaReading([p(50, 80, 10), p(0, 5, 5, 1)], rules, 1, skips);
    expect(kafkaReading([p(60, 80, 10), p(0, 5, 5, 1)], rules, 1, skips).counterBasis).toBe(behind.counterBasis);
    const reset = kafkaReading([p(60, 80, 60), p(0, 5, 5, 1)], rules, 1, skips);
    expect(reset.backlog).toBe(behind.backlog - 10); // 10 more deleted, none served
    expect(reset.counterBasis).not.toBe(behind.counterBasis);
    // The next read is on the partitions' basis again, as a process that never saw the jump reads.
    const after = kafkaReading([p(60, 90, 70), p(0, 5, 5, 1)], rules, 1, skips);
    expect(after.counterBasis).toBe(behind.counterBasis);
    expect(kafkaReading([p(60, 90, 70), p(0, 5, 5, 1)], rules, 1, new RetentionSkips()).counterBasis).toBe(after.counterBasis);
    // Its offsets expired while behind (nothing committed: served read as S) is such a jump too.
    const again = kafkaReading([p(60, 90, 20), p(0, 5, 5, 1)], rules, 1, skips);
    expect(kafkaReading([p(60, 90, undefined), p(0, 5, 5, 1)], rules, 1, skips).counterBasis).toBe(
      `${again.counterBasis}/skipped`,
    );
  });

  it('gives the rates no completions from the jump', () => {
    const skips = new RetentionSkips();
    const at = (s: number, offsets: PartitionOffsets) => ({ reading: kafkaReading([offsets], rules, 1, skips), atMs: s * 1000 });
    let state = updateRates(undefined, at(0, p(1e6, 1e6 + 30, 10)).reading, 0);
    for (let s = 1; s <= 30; s++) {
      const { reading, atMs } = at(s, p(1e6, 1e6 + 30 + 10 * s, 10 + 10 * s));
      state = updateRates(state, reading, atMs);
    }
    const before = state.serviceRatePerSecond!;
    expect(before).toBeGreaterThan(5);
    const { reading, atMs } = at(31, p(1e6, 1e6 + 340, 1e6 + 10));
    expect(updateRates(state, reading, atMs).serviceRatePerSecond).toBe(before);
  });
});

describe('kafkaReading', () => {
  const parts = [p(0, 10, 4, 0), p(0, 5, undefined, 1), p(2, 2, 2, 2), p(0, 1, 9, 3)];
  const rules = { offsetResetPolicy: 'earliest', scaleToZeroOnInvalidOffset: false, allowIdleConsumers: false } as const;

  it('sums the partitions, never negative, and caps replicas at the partition count', () => {
    expect(kafkaReading(parts, rules, 2)).toEqual({
      backlog: 6 + 5 + 0 + 1,
      arrivedTotal: 10 + 5 + 2 + 1,
      orderedQueues: 4,
      servedTotal: 4 + 0 + 2 + 0,
      counterBasis: partitionSet(parts),
      replicaCap: 4,
      consumers: 2,
    });
  });

  it('sets no cap with allowIdleConsumers, and counts an uncommitted partition as served up to its end under latest', () => {
    const reading = kafkaReading(parts, { ...rules, offsetResetPolicy: 'latest', allowIdleConsumers: true });
    expect(reading).toEqual({
      backlog: 6 + 1 + 0 + 1,
      arrivedTotal: 18,
      orderedQueues: 4,
      servedTotal: 4 + 5 + 2 + 1,
      counterBasis: partitionSet(parts),
    });
  });

  it('names the partitions its counters sum: the same set in any order, another once a topic joins (a group without kafka.topic that starts committing on it)', () => {
    expect(partitionSet([...parts].reverse())).toBe(partitionSet(parts));
    expect(partitionSet(parts)).toMatch(/^4:[0-9a-f]{12}$/);
    const joined = [...parts, p(0, 4e8, 4e8 - 10, 0, 'old-topic')];
    expect(partitionSet(joined)).not.toBe(partitionSet(parts));
    expect(partitionSet([p(0, 1, 1, 0, 'a'), p(0, 1, 1, 1, 'b')])).not.toBe(
      partitionSet([p(0, 1, 1, 1, 'a'), p(0, 1, 1, 0, 'b')]),
    );
  });
});

describe('parseOffset', () => {
  it('reads kafkajs string offsets, "-1" meaning none committed', () => {
    expect(parseOffset('42', 'w')).toBe(42);
    expect(parseOffset('-1', 'w')).toBeUndefined();
    expect(() => parseOffset('', 'w')).toThrow(SourceBadAnswer);
    expect(() => parseOffset('12x', 'w')).toThrow(SourceBadAnswer);
  });
});

function protocolError(type: string): Error {
  return Object.assign(new Error(`protocol ${type}`), { name: 'KafkaJSProtocolError', type });
}

interface FakeCluster {
  topics: Map<string, { high: number; low: number }[]>;
  commits: Map<string, Map<string, number>>;
  members: Map<string, GroupMembers>;
  /** Topics that exist but answer UNKNOWN_TOPIC_OR_PARTITION this many more times (just created). */
  notReady: Map<string, number>;
}

/** A fake admin over an in-memory cluster; `poisoned` mimics kafkajs after a topic it read was deleted. */
class FakeAdmin implements KafkaAdminClient {
  readonly cluster: FakeCluster;
  readonly read = new Set<string>();
  fail: Error | undefined;
  closed = false;
  calls = 0;

  constructor(cluster: FakeCluster) {
    this.cluster = cluster;
  }

  private check(): void {
    this.calls++;
    if (this.fail) throw this.fail;
    if ([...this.read].some((t) => !this.cluster.topics.has(t))) throw protocolError('UNKNOWN_TOPIC_OR_PARTITION');
  }

  topicOffsets(topic: string) {
    this.check();
    const parts = this.cluster.topics.get(topic);
    const pending = this.cluster.notReady.get(topic) ?? 0;
    if (pending > 0) this.cluster.notReady.set(topic, pending - 1);
    if (!parts || pending > 0) return Promise.reject(protocolError('UNKNOWN_TOPIC_OR_PARTITION'));
    this.read.add(topic);
    return Promise.resolve(parts.map((o, partition) => ({ partition, high: String(o.high), low: String(o.low) })));
  }

  groupOffsets(groupId: string, topics?: readonly string[]) {
    this.check();
    const commits = this.cluster.commits.get(groupId) ?? new Map<string, number>();
    const names = topics ?? [...new Set([...commits.keys()].map((k) => k.split('/')[0]!))];
    return Promise.resolve(
      names.map((topic) => ({
        topic,
        partitions: (this.cluster.topics.get(topic) ?? [])
          .map((_, partition) => ({ partition, offset: String(commits.get(`${topic}/${partition}`) ?? -1) }))
          .filter((x) => topics !== undefined || x.offset !== '-1'),
      })),
    );
  }

  groupMembers(groupId: string) {
    this.check();
    return Promise.resolve(this.cluster.members.get(groupId));
  }

  listTopics() {
    if (this.fail) return Promise.reject(this.fail);
    return Promise.resolve([...this.cluster.topics.keys()]);
  }

  close() {
    this.closed = true;
    return Promise.resolve();
  }
}

function kafkaConfig(overrides: Partial<KafkaSourceConfig> = {}): KafkaSourceConfig {
  return {
    kind: 'kafka',
    bootstrapServers: ['b1:9092', 'b2:9092'],
    topics: ['jobs'],
    consumerGroup: 'workers',
    offsetResetPolicy: 'latest',
    commitIntervalSeconds: 0,
    allowIdleConsumers: false,
    scaleToZeroOnInvalidOffset: false,
    sasl: 'none',
    username: undefined,
    password: undefined,
    tls: false,
    ca: undefined,
    cert: undefined,
    key: undefined,
    unsafeSsl: false,
    ...overrides,
  };
}

function setup() {
  const cluster: FakeCluster = {
    topics: new Map([
      [
        'jobs',
        [
          { low: 0, high: 10 },
          { low: 0, high: 20 },
          { low: 5, high: 5 },
        ],
      ],
      ['other', [{ low: 0, high: 7 }]],
    ]),
    commits: new Map([
      [
        'workers',
        new Map([
          ['jobs/0', 4],
          ['jobs/2', 5],
        ]),
      ],
    ]),
    members: new Map([['workers', 2]]),
    notReady: new Map(),
  };
  const admins: FakeAdmin[] = [];
  const driver = new KafkaDriver({
    logger: silentLogger(),
    timeoutMs: 50,
    adminFactory: () => {
      const admin = new FakeAdmin(cluster);
      admins.push(admin);
      return admin;
    },
  });
  const read = (config: KafkaSourceConfig) => driver.create(config).read(new AbortController().signal);
  return { cluster, admins, driver, read };
}

describe('KafkaDriver', () => {
  // Found by review: a group of the new consumer protocol read 0 members while it served.
  it('reads no classic group as members unknown where it has commits (KIP-848), and as none where it has none', async () => {
    const { cluster, read } = setup();
    cluster.members.set('workers', 'no classic group');
    expect((await read(kafkaConfig())).consumers).toBeUndefined();
    cluster.commits.delete('workers');
    expect((await read(kafkaConfig())).consumers).toBe(0);
  });

  it('reads lag over every partition of the topic, with the group size and the partition cap', async () => {
    const { read } = setup();
    // jobs/0: 10-4, jobs/1: no commit under latest = 1, jobs/2: 5-5
    expect(await read(kafkaConfig())).toEqual({
      backlog: 7,
      arrivedTotal: 35,
      orderedQueues: 3,
      servedTotal: 4 + 20 + 5,
      counterBasis: expect.stringMatching(/^3:[0-9a-f]{12}$/),
      replicaCap: 3,
      consumers: 2,
    });
    expect((await read(kafkaConfig({ offsetResetPolicy: 'earliest' }))).backlog).toBe(6 + 20 + 0);
  });

  // Found by review: the log end is read before the commits, and a message produced and committed
  // between the two reads put a commit past the end, which counts as nothing committed.
  it('reads the log end again for a commit past it, not the whole log under earliest', async () => {
    const { read, cluster, admins } = setup();
    await read(kafkaConfig());
    const admin = admins[0]!;
    const groupOffsets = admin.groupOffsets.bind(admin);
    admin.groupOffsets = (group, topics) => {
      // Between the two reads: 3 messages into jobs/0, served and committed at once.
      cluster.topics.get('jobs')![0] = { low: 0, high: 13 };
      cluster.commits.get('workers')!.set('jobs/0', 13);
      return groupOffsets(group, topics);
    };
    // jobs/0 caught up (0), jobs/1 no commit under earliest (20), jobs/2 empty (0).
    expect((await read(kafkaConfig({ offsetResetPolicy: 'earliest' }))).backlog).toBe(20);
  });

  // Found by review: a partition with no log end (-1) read as empty, its lag 0.
  it('gives a bad answer, not a lag of 0, for a partition the brokers give no log end for', async () => {
    const { read, cluster } = setup();
    cluster.topics.set('jobs', [
      { high: 10, low: 0 },
      { high: -1, low: 0 },
      { high: 5, low: 0 },
    ]);
    const err = (await read(kafkaConfig()).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(SourceBadAnswer);
    expect(err.message).toMatch(/no log-end offset for partition 1 of "jobs"/);
  });

  it('names a long group, topic list and broker list cut, so its errors stay short', () => {
    const { driver } = setup();
    const topics = Array.from({ length: 1000 }, (_, i) => `topic-${i}`);
    const bootstrapServers = Array.from({ length: 1000 }, (_, i) => `broker-${i}:9092`);
    const { label } = driver.create(kafkaConfig({ consumerGroup: 'g'.repeat(100_000), topics, bootstrapServers }));
    expect(label).toMatch(
      /^kafka group "g{40}"\.\.\. \(100000 chars\) on topic\(s\) topic-0,topic-1,.*\.\.\. \(\d+ chars\) at broker-0:9092,.*\.\.\. \(\d+ chars\)$/,
    );
    expect(label.length).toBeLessThan(600);
  });

  it('sums a topic list and caps at the partitions of all of them', async () => {
    const { read } = setup();
    const reading = await read(kafkaConfig({ topics: ['jobs', 'other'], offsetResetPolicy: 'earliest' }));
    expect(reading).toMatchObject({ backlog: 26 + 7, replicaCap: 4 });
  });

  it('without a topic list, reads the topics the group committed on; none is a clear NOT_FOUND', async () => {
    const { read } = setup();
    expect(await read(kafkaConfig({ topics: [] }))).toMatchObject({ backlog: 7, replicaCap: 3 });
    const none = read(kafkaConfig({ topics: [], consumerGroup: 'never-ran' }));
    await expect(none).rejects.toThrow(SourceNotFound);
    await expect(none).rejects.toThrow(/consumer group "never-ran" has no committed offsets on any topic.*set kafka.topic/);
  });

  it('treats a group that never committed on the listed topics by the policy rules, as KEDA does', async () => {
    const { read } = setup();
    const reading = await read(kafkaConfig({ consumerGroup: 'new-group' }));
    expect(reading).toMatchObject({ backlog: 3, replicaCap: 3 });
    expect(reading).not.toHaveProperty('consumers');
    expect((await read(kafkaConfig({ consumerGroup: 'new-group', scaleToZeroOnInvalidOffset: true }))).backlog).toBe(0);
  });

  it('names a missing topic in a NOT_FOUND and keeps the client', async () => {
    const { read, admins } = setup();
    const missing = read(kafkaConfig({ topics: ['jobs', 'nope'] }));
    await expect(missing).rejects.toThrow(SourceNotFound);
    await expect(missing).rejects.toThrow(/topic\(s\) "nope" do not exist/);
    await expect(read(kafkaConfig({ topics: ['jobs', 'nope'] }))).rejects.toThrow(SourceNotFound);
    expect(await read(kafkaConfig())).toMatchObject({ backlog: 7 });
    expect(admins).toHaveLength(2);
  });

  // Found by review: without a topic list the missing topics were looked for in the (empty) list of
  // the trigger, so a deleted topic the group still had offsets on read as a poisoned client: the
  // client replaced, a pause, then UNAVAILABLE "topic not served yet".
  it('without a topic list, names a committed-on topic that no longer exists in a NOT_FOUND, and keeps the client', async () => {
    const { read, admins, cluster } = setup();
    cluster.commits.set('leftover', new Map([['gone/0', 3]]));
    const missing = read(kafkaConfig({ topics: [], consumerGroup: 'leftover' }));
    await expect(missing).rejects.toThrow(SourceNotFound);
    await expect(missing).rejects.toThrow(/topic\(s\) "gone" do not exist/);
    expect(admins).toHaveLength(1);
  });

  it('replaces a client whose metadata a deleted topic poisoned, and answers for the live topics at once', async () => {
    // The fake fails every call once a topic it read is gone, as kafkajs does. A trigger without a
    // topic list reads the topics its group committed on, which change: here 'other' goes, its
    // offsets with it.
    const { read, admins, cluster } = setup();
    cluster.commits.get('workers')!.set('other/0', 3);
    const byGroup = kafkaConfig({ topics: [] });
    await read(byGroup);
    cluster.topics.delete('other');
    cluster.commits.get('workers')!.delete('other/0');
    expect(await read(byGroup)).toMatchObject({ backlog: 7 });
    expect(admins).toHaveLength(2);
    // Retired a moment later, not at once (reads still in flight on it finish).
    expect(admins[0]!.closed).toBe(false);
    await vi.waitFor(() => expect(admins[0]!.closed).toBe(true));
  });

  it('retries a topic that exists but is not served yet, then calls it UNAVAILABLE, not NOT_FOUND', async () => {
    const { read, cluster } = setup();
    await read(kafkaConfig());
    cluster.notReady.set('jobs', 2);
    expect(await read(kafkaConfig())).toMatchObject({ backlog: 7 });
    cluster.notReady.set('jobs', 100);
    const stuck = read(kafkaConfig());
    await expect(stuck).rejects.toThrow(SourceUnavailable);
    await expect(stuck).rejects.toThrow(/topic not served yet/);
  });

  it('keeps one client per broker list, credentials and topics', async () => {
    const { read, admins, driver } = setup();
    await read(kafkaConfig());
    await read(kafkaConfig({ consumerGroup: 'g2' }));
    await read(kafkaConfig({ bootstrapServers: ['b2:9092', 'b1:9092'] }));
    expect(admins).toHaveLength(1);
    await read(kafkaConfig({ sasl: 'plain', username: 'u', password: 'p1' }));
    await read(kafkaConfig({ sasl: 'plain', username: 'u', password: 'p2' }));
    expect(admins).toHaveLength(3);
    await read(kafkaConfig({ topics: ['other'] }));
    expect(admins).toHaveLength(4);
    await driver.close();
    expect(admins.every((a) => a.closed)).toBe(true);
  });

  // Found by review: kafkajs asks for the metadata of every topic a client ever read and fails the
  // whole request on one partition's error; one client per cluster failed every trigger on it.
  it("fails only the triggers of a topic with a partition offline, not the cluster's others", async () => {
    const { read, admins } = setup();
    await read(kafkaConfig({ topics: ['other'] }));
    await read(kafkaConfig());
    admins[0]!.fail = protocolError('LEADER_NOT_AVAILABLE');
    await expect(read(kafkaConfig({ topics: ['other'] }))).rejects.toThrow(SourceUnavailable);
    await expect(read(kafkaConfig())).resolves.toMatchObject({ backlog: expect.any(Number) as unknown });
  });

  it('maps a broker outage to UNAVAILABLE naming the brokers, and refused credentials to UNAUTHENTICATED', async () => {
    const { read, admins } = setup();
    await read(kafkaConfig());
    admins[0]!.fail = Object.assign(new Error('Connection error: connect ECONNREFUSED 10.0.0.1:9092'), {
      name: 'KafkaJSConnectionError',
    });
    const down = read(kafkaConfig());
    await expect(down).rejects.toThrow(SourceUnavailable);
    await expect(down).rejects.toThrow(/at b1:9092,b2:9092: brokers unreachable/);
    admins[0]!.fail = protocolError('SASL_AUTHENTICATION_FAILED');
    await expect(read(kafkaConfig())).rejects.toThrow(SourceUnauthenticated);
  });

  it('answers without the group size when describing the group fails', async () => {
    const { read, admins } = setup();
    await read(kafkaConfig());
    admins[0]!.groupMembers = () => Promise.reject(new Error('describe failed'));
    const reading = await read(kafkaConfig());
    expect(reading).toMatchObject({ backlog: 7 });
    expect(reading).not.toHaveProperty('consumers');
  });

  it('rejects with the abort reason when the cache gives up, however long kafkajs takes', async () => {
    const { driver, admins } = setup();
    const source = driver.create(kafkaConfig());
    await source.read(new AbortController().signal);
    admins[0]!.topicOffsets = () => new Promise(() => undefined);
    const controller = new AbortController();
    const pending = source.read(controller.signal);
    controller.abort(new Error('deadline'));
    await expect(pending).rejects.toThrow('deadline');
  });

  // Found by review: each read that timed out left its kafkajs work running, and the cache's next
  // read started another beside it: five of one source at once on a slow broker.
  it('runs one attempt at a time: a read after one that timed out joins its attempt', async () => {
    const { driver, admins } = setup();
    const source = driver.create(kafkaConfig());
    await source.read(new AbortController().signal);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const offsets = admins[0]!.topicOffsets.bind(admins[0]!);
    let attempts = 0;
    admins[0]!.topicOffsets = (topic: string) => {
      attempts++;
      return gate.then(() => offsets(topic));
    };
    const timedOut = new AbortController();
    const first = source.read(timedOut.signal);
    timedOut.abort(new Error('deadline'));
    await expect(first).rejects.toThrow('deadline');
    const second = source.read(new AbortController().signal);
    release();
    await expect(second).resolves.toMatchObject({ backlog: 7 });
    expect(attempts).toBe(1);
    await expect(source.read(new AbortController().signal)).resolves.toMatchObject({ backlog: 7 });
  });
});

describe('kafkaError', () => {
  it.each([
    [
      Object.assign(new Error('retries'), {
        name: 'KafkaJSNumberOfRetriesExceeded',
        cause: protocolError('UNKNOWN_TOPIC_OR_PARTITION'),
      }),
      SourceNotFound,
    ],
    [protocolError('GROUP_AUTHORIZATION_FAILED'), SourceUnauthenticated],
    [
      Object.assign(new Error('SASL PLAIN authentication failed'), { name: 'KafkaJSSASLAuthenticationError' }),
      SourceUnauthenticated,
    ],
    [Object.assign(new Error('Request timed out'), { name: 'KafkaJSRequestTimeoutError' }), SourceUnavailable],
    // kafkajs wraps a connection that closed, or a request that timed out, during SASL as an
    // authentication error: a broker restarting, not refused credentials.
    [
      Object.assign(new Error('SASL PLAIN authentication failed: Closed connection'), { name: 'KafkaJSSASLAuthenticationError' }),
      SourceUnavailable,
    ],
    [
      Object.assign(
        new Error('SASL SCRAM SHA512 authentication failed: Request SaslAuthenticate(key: 36, version: 1) timed out'),
        {
          name: 'KafkaJSSASLAuthenticationError',
        },
      ),
      SourceUnavailable,
    ],
    [protocolError('COORDINATOR_NOT_AVAILABLE'), SourceUnavailable],
  ])('%s -> %o', (err, type) => {
    expect(kafkaError('kafka group "g"', err)).toBeInstanceOf(type);
  });

  it('tells ACLs that refuse the request from refused credentials', () => {
    expect(kafkaError('kafka group "g"', protocolError('GROUP_AUTHORIZATION_FAILED')).message).toMatch(
      /the user's ACLs do not allow describing the group or its topics/,
    );
    expect(
      kafkaError('g', Object.assign(new Error('SASL PLAIN authentication failed'), { name: 'KafkaJSSASLAuthenticationError' }))
        .message,
    ).toMatch(/brokers refused the credentials/);
  });

  const connectionError = (code: string, message: string) =>
    Object.assign(new Error('retries'), {
      name: 'KafkaJSNumberOfRetriesExceeded',
      cause: Object.assign(new Error(`Connection error: ${message}`), { name: 'KafkaJSConnectionError', code }),
    });

  it("says to set kafka.ca when the brokers' certificate fails verification", () => {
    const err = kafkaError(
      'kafka group "g"',
      connectionError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'),
    );
    expect(err).toBeInstanceOf(SourceUnavailable);
    expect(err.message).toMatch(/certificate failed verification \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); set kafka\.ca/);
  });

  it('gives UNAUTHENTICATED when the brokers refuse the client certificate', () => {
    const err = kafkaError(
      'kafka group "g"',
      connectionError('ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_UNKNOWN', 'alert certificate unknown'),
    );
    expect(err).toBeInstanceOf(SourceUnauthenticated);
    expect(err.message).toMatch(/refused the client certificate .*kafka\.cert and kafka\.key/);
  });
});

describe('kafkajsLogCreator', () => {
  it("routes kafkajs's log lines into ours: warnings at warn, per-request protocol noise at debug", () => {
    const { sink, lines } = logLines<{ level: number; msg: string; component?: string }>();
    const log = kafkajsLogCreator(pino({ level: 'debug' }, sink))();
    log({ namespace: 'Admin', level: 2, label: 'WARN', log: { timestamp: 'x', message: 'something odd' } });
    log({
      namespace: 'Connection',
      level: 1,
      label: 'ERROR',
      log: { timestamp: 'x', message: 'Response Metadata', error: 'boom' },
    });
    log({
      namespace: 'SaslAuthenticator-SCRAM-SHA-512',
      level: 1,
      label: 'ERROR',
      log: { timestamp: 'x', message: 'Failed to authenticate', error: 'SASL SCRAM SHA512 authentication failed' },
    });
    expect(lines.map((l) => [l.level, l.msg, l.component])).toEqual([
      [40, '[Admin] something odd', 'kafkajs'],
      [20, '[Connection] Response Metadata', 'kafkajs'],
      [20, '[SaslAuthenticator-SCRAM-SHA-512] Failed to authenticate', 'kafkajs'],
    ]);
  });
});

describe('kafka trigger metadata', () => {
  const base = { 'kafka.bootstrapServers': 'b1:9092,[::1]:9093', 'kafka.topic': 'jobs', 'kafka.consumerGroup': 'workers' };
  const parse = (metadata: Record<string, string>, profiles = {}) =>
    parseTrigger({ name: 'so', namespace: 'ns', metadata }, { profiles });
  const issues = (metadata: Record<string, string>) => {
    try {
      parse(metadata);
    } catch (err) {
      return (err as { issues: string[] }).issues;
    }
    return [];
  };

  it('accepts host:port brokers and Kafka topic names, with the documented defaults', () => {
    expect(parse(base).sources[0]).toMatchObject({
      bootstrapServers: ['b1:9092', '[::1]:9093'],
      topics: ['jobs'],
      offsetResetPolicy: 'latest',
      allowIdleConsumers: false,
      scaleToZeroOnInvalidOffset: false,
      sasl: 'none',
      tls: false,
    });
  });

  it.each([
    [{ 'kafka.topic': 'jobs,bad topic' }, /^kafka\.topic: got "jobs,bad topic"; allowed: a topic name/],
    [
      { 'kafka.bootstrapServers': 'kafka://b1:9092' },
      /^kafka\.bootstrapServers: got .*allowed: a comma-separated list of host:port/,
    ],
    [{ 'kafka.bootstrapServers': 'b1' }, /^kafka\.bootstrapServers: got "b1"/],
    [{ 'kafka.bootstrapServers': 'b1:0' }, /^kafka\.bootstrapServers: got "b1:0".*port 1-65535/],
    [{ 'kafka.bootstrapServers': 'b1:9092,b2:99999' }, /^kafka\.bootstrapServers: got "b1:9092,b2:99999"/],
    [{ 'kafka.ca': '-----BEGIN CERTIFICATE-----' }, /^kafka\.ca: applies only with kafka\.tls: enable/],
    // Found by review: a file's path where PEM text belongs was taken, and failed at the brokers.
    [
      { 'kafka.tls': 'enable', 'kafka.ca': '/etc/kafka/ca.crt' },
      /^kafka\.ca: got "\/etc\/kafka\/ca\.crt"; allowed: a PEM CA certificate/,
    ],
    [
      { 'kafka.tls': 'enable', 'kafka.cert': '/etc/kafka/tls.crt', 'kafka.key': PEM_EC_PRIVATE_KEY_STUB },
      /^kafka\.cert: got "\/etc\/kafka\/tls\.crt"; allowed: a PEM certificate \(-----BEGIN CERTIFICATE/,
    ],
    [
      { 'kafka.tls': 'enable', 'kafka.cert': PEM_CERTIFICATE_STUB, 'kafka.key': '/etc/kafka/tls.key' },
      /^kafka\.key: got \(redacted\); allowed: a PEM private key/,
    ],
    // Found by review: an encrypted key was taken, and failed every read as brokers unreachable.
    [
      { 'kafka.tls': 'enable', 'kafka.cert': PEM_CERTIFICATE_STUB, 'kafka.key': PEM_ENCRYPTED_PRIVATE_KEY_STUB },
      /^kafka\.key: got \(redacted\); allowed: a PEM private key, not encrypted/,
    ],
    [
      { 'kafka.tls': 'enable', 'kafka.cert': PEM_CERTIFICATE_STUB, 'kafka.key': PEM_LEGACY_ENCRYPTED_KEY_STUB },
      /^kafka\.key: got \(redacted\); allowed: a PEM private key, not encrypted/,
    ],
    [{ 'kafka.sasl': 'scram_sha512', 'kafka.username': 'u' }, /^kafka\.password: is required/],
  ])('rejects %o', (extra, message) => {
    expect(issues({ ...base, ...extra })).toContainEqual(expect.stringMatching(message));
  });

  it('takes brokers and SASL credentials from a connection profile, the trigger naming only the profile', () => {
    const profiles = {
      kafka: {
        main: { bootstrapServers: 'k1:9092', sasl: 'scram_sha512', username: 'svc', password: 'from-secret', tls: 'enable' },
      },
    };
    const trigger = parse({ 'kafka.connection': 'main', 'kafka.topic': 'jobs', 'kafka.consumerGroup': 'workers' }, profiles);
    expect(trigger.sources[0]).toMatchObject({
      bootstrapServers: ['k1:9092'],
      sasl: 'scram_sha512',
      username: 'svc',
      password: 'from-secret',
      tls: true,
    });
  });
});

describe('groupMemberCount: the members a described group counts', () => {
  it.each([
    { what: 'a classic group at work', group: { state: 'Stable', members: [{}, {}] }, count: 2 },
    { what: 'a classic group with commits and no members', group: { state: 'Empty', members: [] }, count: 0 },
    // KIP-848: the classic DescribeGroups answers a consumer-protocol group Dead, with no members (found by review)
    {
      what: 'no classic group: of the new consumer protocol, or none yet',
      group: { state: 'Dead', members: [] },
      count: 'no classic group',
    },
    { what: 'not in the answer', group: undefined, count: undefined },
  ])('$what: $count', ({ group, count }) => {
    expect(groupMemberCount(group)).toBe(count);
  });
});
