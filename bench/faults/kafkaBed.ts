// Kafka bed: topics whose consumer group lags by a known count (it never commits). Every socket of the scaler's
// Kafka clients goes through a proxy (routed in scalerChild.ts). With Kafka's jars at hand the
// scaler authenticates with SCRAM as a user of the harness's own, whose password it can change
// mid-run (kafka.admin.ConfigCommand); without them it reads over plaintext (no credentials fault).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type Admin, Kafka, Partitioners, logLevel } from 'kafkajs';
import { patchIdleRequestQueue } from '../../src/sources/kafkajsRequestQueue.ts';
import { TcpProxy } from '../../test/support/tcpProxy.ts';
import { BACKLOG, MESSAGES_PER_REPLICA, QUEUE_REPLICAS, type SourceBed, sleep, until } from './bed.ts';

// The bed's own kafkajs connections must not spin a 1 ms timer beside the scaler it measures.
patchIdleRequestQueue();

const PARTITIONS = 4;
const PER_PARTITION = BACKLOG / PARTITIONS;

/** Kafka's jars (for ConfigCommand) from KAFKA_JARS, else where scripts/services.sh puts them. */
export function findKafkaJars(): string | undefined {
  if (process.env.KAFKA_JARS) return process.env.KAFKA_JARS;
  const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'keda-inference-scaler');
  if (!existsSync(cache)) return undefined;
  const dir = readdirSync(cache).find((d) => d.startsWith('kafka-') && existsSync(join(cache, d, 'jars')));
  return dir === undefined ? undefined : join(cache, dir, 'jars');
}

/** Sets (or changes) a user's SCRAM-SHA-256 password through the brokers' admin API. */
function setScramPassword(jars: string, brokers: string, user: string, password: string): void {
  const out = spawnSync(
    'java',
    [
      '-Xms32m',
      '-Xmx128m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-cp',
      `${jars}/*`,
      'kafka.admin.ConfigCommand',
      '--bootstrap-server',
      brokers,
      '--alter',
      '--entity-type',
      'users',
      '--entity-name',
      user,
      '--add-config',
      `SCRAM-SHA-256=[password=${password}]`,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (out.status !== 0) throw new Error(`kafka ConfigCommand for ${user} failed: ${out.stderr.slice(-500)}`);
}

export interface KafkaBedOptions {
  /** Plaintext listener (admin, producing, ConfigCommand). */
  readonly brokers: string;
  /** SASL_PLAINTEXT listener the scaler reads through, when `jars` is given. */
  readonly saslBrokers?: string;
  readonly jars?: string;
  readonly sources: number;
  readonly runId: string;
}

export async function kafkaBed(options: KafkaBedOptions): Promise<SourceBed> {
  const scram = options.jars !== undefined && options.saslBrokers !== undefined;
  const user = `kis-faults-${options.runId}`;
  const password = randomBytes(9).toString('hex');
  if (scram) setScramPassword(options.jars!, options.brokers, user, password);
  const kafka = new Kafka({ clientId: 'kis-faults-bed', brokers: options.brokers.split(','), logLevel: logLevel.NOTHING });
  const admin: Admin = kafka.admin();
  await admin.connect();
  const topics = Array.from({ length: options.sources }, (_, i) => `kis-faults-${options.runId}-${i}`);
  const group = `kis-faults-${options.runId}`;
  const create = () =>
    admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: PARTITIONS })), waitForLeaders: true });
  const populate = async () => {
    // A fresh producer each time: a kafkajs client that saw a topic deleted keeps failing on it.
    // Idempotent: a send retried while the new topic's leaders settle must not write twice.
    const producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    try {
      for (const topic of topics) {
        const messages = Array.from({ length: BACKLOG }, (_, i) => ({ partition: i % PARTITIONS, value: `job ${i}` }));
        await producer.send({ topic, acks: -1, messages });
      }
    } finally {
      await producer.disconnect();
    }
  };
  await create();
  await populate();
  const scalerBrokers = (scram ? options.saslBrokers! : options.brokers).split(',');
  const proxies = scalerBrokers.map((address) => TcpProxy.forUrl(`kafka://${address}`));
  for (const p of proxies) await p.start();
  const routes = Object.fromEntries(scalerBrokers.map((address, i) => [address, proxies[i]!.port]));
  // The credentials fault: a changed password bites when the client next authenticates, so the
  // harness then cuts the open connections (as a broker roll or a network blip would).
  const cut = async () => {
    for (const p of proxies) {
      await p.stop();
      await p.start();
    }
  };
  return {
    kind: 'kafka',
    sources: topics.length,
    expectedReplicas: QUEUE_REPLICAS,
    proxies,
    kafkaRoutes: routes,
    metadata: (i) => ({
      'kafka.bootstrapServers': scalerBrokers.join(','),
      'kafka.topic': topics[i % topics.length]!,
      'kafka.consumerGroup': group,
      // The group never commits: under `earliest` its lag is the whole log (KEDA's rule), which
      // needs no commit to set up (kafkajs's setOffsets takes 5 s a topic) and none after a recreate.
      'kafka.offsetResetPolicy': 'earliest',
      messagesPerReplica: String(MESSAGES_PER_REPLICA),
      ...(scram ? { 'kafka.sasl': 'scram_sha256', 'kafka.username': user, 'kafka.password': password } : {}),
    }),
    ready: () =>
      until(`kafka topics hold ${PER_PARTITION} messages per partition`, async () => {
        for (const topic of topics) {
          const ends = await admin.fetchTopicOffsets(topic);
          if (ends.length !== PARTITIONS || ends.some((p) => p.high !== String(PER_PARTITION) || p.low !== '0')) return false;
        }
        return true;
      }),
    ...(scram
      ? {
          breakCredentials: async () => {
            setScramPassword(options.jars!, options.brokers, user, randomBytes(9).toString('hex'));
            await cut();
          },
          restoreCredentials: async () => {
            setScramPassword(options.jars!, options.brokers, user, password);
          },
        }
      : {}),
    deleteSources: async () => {
      await admin.deleteTopics({ topics });
      await until('kafka topics deleted', async () => {
        const left = new Set(await admin.listTopics());
        return topics.every((t) => !left.has(t));
      });
    },
    recreateSources: async () => {
      // The brokers finish deleting a topic's partitions a moment after it leaves the list.
      for (let attempt = 0; ; attempt++) {
        try {
          await create();
          break;
        } catch (err) {
          if (attempt >= 10) throw err;
          await sleep(500);
        }
      }
      await populate();
    },
    close: async () => {
      for (const p of proxies) await p.stop();
      await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.deleteGroups([group]).catch(() => undefined);
      await admin.disconnect();
    },
  };
}
