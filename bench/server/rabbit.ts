// RabbitMQ side of the benchmark: the broker URL, the benchmark's queues (declared with an
// expiry, so a crashed run cleans up after itself) and publishing for the wake tries.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import amqplib, { type ChannelModel, type ConfirmChannel } from 'amqplib';

/**
 * RABBITMQ_URL from the environment, else the test bed's RabbitMQ: `scripts/services.sh up
 * rabbitmq` installs and starts it when it is not running (and only prints its address when it is).
 */
export function rabbitmqUrl(): string {
  if (process.env.RABBITMQ_URL) return process.env.RABBITMQ_URL;
  const script = fileURLToPath(new URL('../../scripts/services.sh', import.meta.url));
  const up = spawnSync('bash', [script, 'up', 'rabbitmq'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = (up.stdout ?? '').split('\n').find((l) => l.startsWith('RABBITMQ_URL='));
  if (up.status === 0 && line) return line.slice('RABBITMQ_URL='.length).trim();
  throw new Error(`could not start RabbitMQ with scripts/services.sh up rabbitmq (exit ${up.status}); or set RABBITMQ_URL`);
}

export class BenchBroker {
  private readonly connection: ChannelModel;
  private readonly channel: ConfirmChannel;
  private readonly declared = new Set<string>();
  private closing = false;

  private constructor(connection: ChannelModel, channel: ConfirmChannel) {
    this.connection = connection;
    this.channel = channel;
  }

  /** `onLost` runs if the connection drops (e.g. the broker restarts): the run cannot go on. */
  static async connect(url: string, onLost: (reason: string) => void): Promise<BenchBroker> {
    const connection = await amqplib.connect(url);
    const channel = await connection.createConfirmChannel();
    const broker = new BenchBroker(connection, channel);
    connection.on('error', () => undefined);
    connection.on('close', (err?: Error) => {
      if (!broker.closing) onLost(err?.message ?? 'connection closed');
    });
    channel.on('error', () => undefined);
    return broker;
  }

  /** Declares an empty queue that the broker deletes 15 minutes after its last use. */
  async declare(queue: string, messages = 0): Promise<void> {
    await this.channel.assertQueue(queue, { durable: false, arguments: { 'x-expires': 15 * 60_000 } });
    this.declared.add(queue);
    for (let i = 0; i < messages; i++) this.channel.sendToQueue(queue, Buffer.from('bench'));
    if (messages > 0) await this.channel.waitForConfirms();
  }

  /** Publishes one message and resolves when the broker has confirmed it. */
  async publish(queue: string): Promise<void> {
    this.channel.sendToQueue(queue, Buffer.from('wake'));
    await this.channel.waitForConfirms();
  }

  async deleteQueue(queue: string): Promise<void> {
    await this.channel.deleteQueue(queue);
    this.declared.delete(queue);
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const queue of this.declared) await this.channel.deleteQueue(queue).catch(() => undefined);
    await this.connection.close().catch(() => undefined);
  }
}
