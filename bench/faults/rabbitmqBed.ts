// RabbitMQ beds (amqp and management http): queues with a known backlog, read by the scaler as a
// user of the harness's own (made through the management API), so its password and permissions
// can be taken away mid-run without touching anyone else's.
import { randomBytes } from 'node:crypto';
import amqplib, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { RabbitAdmin } from '../../test/support/rabbitmqAdmin.ts';
import { TcpProxy } from '../../test/support/tcpProxy.ts';
import { BACKLOG, MESSAGES_PER_REPLICA, QUEUE_REPLICAS, type SourceBed, until } from './bed.ts';

export interface RabbitBedOptions {
  readonly amqpUrl: string;
  readonly managementUrl: string;
  readonly sources: number;
  readonly protocol: 'amqp' | 'http';
  readonly runId: string;
}

export async function rabbitmqBed(options: RabbitBedOptions): Promise<SourceBed> {
  const { protocol, runId } = options;
  const admin = new RabbitAdmin(options.managementUrl);
  const user = `kis-faults-${protocol}-${runId}`;
  const password = randomBytes(9).toString('hex');
  await admin.setUser(user, password);
  await admin.grant(user);
  const queues = Array.from({ length: options.sources }, (_, i) => `kis-faults-${runId}-${protocol}-${i}`);
  const connection: ChannelModel = await amqplib.connect(options.amqpUrl);
  connection.on('error', () => undefined);
  const channel: ConfirmChannel = await connection.createConfirmChannel();
  channel.on('error', () => undefined);
  const fill = async () => {
    for (const q of queues) {
      await channel.assertQueue(q, { durable: false, arguments: { 'x-expires': 30 * 60_000 } });
      for (let i = 0; i < BACKLOG; i++) channel.sendToQueue(q, Buffer.from(`job ${i}`));
    }
    await channel.waitForConfirms();
  };
  await fill();
  const target = protocol === 'amqp' ? options.amqpUrl : options.managementUrl;
  const proxy = TcpProxy.forUrl(target);
  await proxy.start();
  const host = new URL(proxy.rewrite(target));
  host.username = encodeURIComponent(user);
  host.password = password;
  const scalerHost = host.toString();
  return {
    kind: protocol === 'amqp' ? 'rabbitmq-amqp' : 'rabbitmq-http',
    sources: queues.length,
    expectedReplicas: QUEUE_REPLICAS,
    proxies: [proxy],
    metadata: (i) => ({
      'rabbitmq.host': scalerHost,
      'rabbitmq.protocol': protocol,
      'rabbitmq.queueName': queues[i % queues.length]!,
      messagesPerReplica: String(MESSAGES_PER_REPLICA),
    }),
    ...(protocol === 'amqp' ? { brokerSide: () => admin.holdings(user) } : {}),
    // The management API's counts lag by its statistics interval: wait until it shows them all.
    ready: () =>
      until(`rabbitmq queues hold ${BACKLOG} messages`, async () => {
        for (const q of queues) if ((await admin.queueMessages(q)) !== BACKLOG) return false;
        return true;
      }),
    // A broker going down closes its connections (connection.close 320) before the socket goes.
    restart: async () => {
      await admin.closeConnections(user, 'broker restart (fault harness)');
    },
    breakCredentials: async () => {
      await admin.setUser(user, randomBytes(9).toString('hex'));
      await admin.revoke(user);
      await admin.closeConnections(user, 'credentials changed (fault harness)');
    },
    restoreCredentials: async () => {
      await admin.setUser(user, password);
      await admin.grant(user);
    },
    deleteSources: async () => {
      for (const q of queues) await channel.deleteQueue(q);
    },
    recreateSources: fill,
    close: async () => {
      await proxy.stop();
      for (const q of queues) await channel.deleteQueue(q).catch(() => undefined);
      await connection.close().catch(() => undefined);
      await admin.closeConnections(user, 'fault harness done').catch(() => undefined);
      await admin.deleteUser(user).catch(() => undefined);
    },
  };
}
