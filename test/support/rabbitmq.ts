// Real RabbitMQ helpers for tests: fresh queues with known backlogs, published with confirms.
import { randomUUID } from 'node:crypto';
import amqplib, { type ChannelModel, type ConfirmChannel } from 'amqplib';

export class RabbitFixture implements AsyncDisposable {
  private readonly connection: ChannelModel;
  private readonly channel: ConfirmChannel;
  private readonly queues: string[] = [];

  private constructor(connection: ChannelModel, channel: ConfirmChannel) {
    this.connection = connection;
    this.channel = channel;
  }

  static async connect(url: string): Promise<RabbitFixture> {
    const connection = await amqplib.connect(url);
    const channel = await connection.createConfirmChannel();
    return new RabbitFixture(connection, channel);
  }

  /** Declares a fresh queue (unique name) holding `messages` ready messages. */
  async queue(messages = 0, prefix = 'kis-test'): Promise<string> {
    const name = `${prefix}-${randomUUID().slice(0, 8)}`;
    await this.channel.assertQueue(name, { durable: false, autoDelete: false });
    this.queues.push(name);
    await this.publish(name, messages);
    return name;
  }

  async publish(queue: string, messages: number): Promise<void> {
    for (let i = 0; i < messages; i++) this.channel.sendToQueue(queue, Buffer.from(`job ${i}`));
    if (messages > 0) await this.channel.waitForConfirms();
  }

  /**
   * A consumer that takes `prefetch` messages and never acknowledges them (a replica at work):
   * they are unacknowledged until the returned function closes its channel.
   */
  async holdUnacked(queue: string, prefetch: number): Promise<() => Promise<void>> {
    const channel = await this.connection.createChannel();
    await channel.prefetch(prefetch);
    await channel.consume(queue, () => undefined, { noAck: false });
    return () => channel.close().catch(() => undefined);
  }

  async purge(queue: string): Promise<void> {
    await this.channel.purgeQueue(queue);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const q of this.queues) await this.channel.deleteQueue(q).catch(() => undefined);
    await this.connection.close().catch(() => undefined);
  }
}
