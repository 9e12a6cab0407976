// Real RabbitMQ helpers for tests: fresh queues with known backlogs, published with confirms, and
// the test broker's TLS listeners.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import amqplib, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { type ServiceEnv, optionalListeners } from './services.ts';

/** The test broker's amqps and https listeners, and the PEM of the CA that signed their certificate. */
export interface SecureRabbit {
  readonly url: string;
  readonly managementUrl: string;
  readonly ca: string;
}

/** The TLS listeners from `scripts/services.sh up`; fails with directions when they are not there. */
export function secureRabbit(services: ServiceEnv): SecureRabbit {
  const get = optionalListeners(services, 'RABBITMQ_TLS_', 'RabbitMQ', 'TLS listeners');
  return {
    url: get('RABBITMQ_TLS_URL'),
    managementUrl: get('RABBITMQ_TLS_MANAGEMENT_URL'),
    ca: readFileSync(get('RABBITMQ_TLS_CA_FILE'), 'utf8'),
  };
}

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

  /** Takes `count` messages off the queue and acknowledges each (a replica that served them). */
  async serve(queue: string, count: number): Promise<void> {
    const channel = await this.connection.createChannel();
    try {
      for (let served = 0; served < count;) {
        const message = await channel.get(queue, { noAck: false });
        if (message === false) throw new Error(`queue ${queue} ran out after ${served} of ${count} messages`);
        channel.ack(message);
        served++;
      }
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async purge(queue: string): Promise<void> {
    await this.channel.purgeQueue(queue);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const q of this.queues) await this.channel.deleteQueue(q).catch(() => undefined);
    await this.connection.close().catch(() => undefined);
  }
}

/** The management API's base (`.../api`) and basic authorization, from a URL with credentials. */
function managementApi(managementUrl: string): { api: string; authorization: string } {
  const url = new URL(managementUrl);
  const authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  return { api: `${url.protocol}//${url.host}/api`, authorization };
}

/**
 * Waits until the management API counts `ready` messages in `queue` (vhost "/"): its figures
 * follow at the broker's next statistics emission (a queue just declared has none, and the scaler
 * answers FAILED_PRECONDITION for it meanwhile, as it should).
 */
export async function managementCounts(managementUrl: string, queue: string, ready: number, timeoutMs = 15_000): Promise<void> {
  const { api, authorization } = managementApi(managementUrl);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${api}/queues/%2F/${encodeURIComponent(queue)}`, { headers: { authorization } });
    if (res.ok && ((await res.json()) as { messages_ready?: unknown }).messages_ready === ready) return;
    if (Date.now() > deadline)
      throw new Error(`the management API did not count ${ready} ready in ${queue} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * A broker user of its own with a random password (the default guest:guest would make "the
 * password is not in the error" true by chance as the user's name): made through the management
 * API, with every right on vhost "/" and the management tag, deleted on dispose.
 */
export class RabbitUser implements AsyncDisposable {
  readonly username = `kis-contract-${randomUUID().slice(0, 8)}`;
  readonly password: string;
  private readonly api: string;
  private readonly authorization: string;
  private readonly vhosts: string[] = [];

  private constructor(managementUrl: string, password: string) {
    ({ api: this.api, authorization: this.authorization } = managementApi(managementUrl));
    this.password = password;
  }

  /** A user of the root vhost; `passwordPrefix` starts its password (letters outside ASCII, say). */
  static async create(managementUrl: string, passwordPrefix = 'pw-'): Promise<RabbitUser> {
    const user = new RabbitUser(managementUrl, `${passwordPrefix}${randomUUID()}`);
    await user.call('PUT', `/users/${user.username}`, { password: user.password, tags: 'management' });
    await user.call('PUT', `/permissions/%2F/${user.username}`, { configure: '.*', write: '.*', read: '.*' });
    return user;
  }

  /** A vhost of its own that this user has no permission on (deleted on dispose). */
  async foreignVhost(): Promise<string> {
    const name = `kis-foreign-${randomUUID().slice(0, 8)}`;
    await this.call('PUT', `/vhosts/${name}`, {});
    this.vhosts.push(name);
    return name;
  }

  /** `url` (amqp or management) with this user's credentials in it. */
  in(url: string, password = this.password): string {
    const u = new URL(url);
    u.username = this.username;
    u.password = password;
    return u.toString();
  }

  private async call(method: string, path: string, body?: unknown): Promise<void> {
    const res = await fetch(`${this.api}${path}`, {
      method,
      headers: { authorization: this.authorization, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok) throw new Error(`management API ${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.call('DELETE', `/users/${this.username}`).catch(() => undefined);
    for (const vhost of this.vhosts) await this.call('DELETE', `/vhosts/${vhost}`).catch(() => undefined);
  }
}
