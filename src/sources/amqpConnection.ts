// One AMQP connection per broker URL, re-made lazily after it drops, with a bounded pool of
// channels for passive queue declares (checkQueue). Bounded because a burst of reads of distinct
// queues (10,000 triggers first seen together) opened a channel per read: RabbitMQ opens a
// connection's channels one at a time, so most reads ran past their deadline, and past 2,047
// channels (RabbitMQ's channel_max) amqplib has none left to give.
import { once } from 'node:events';
import amqplib, { type Channel, type ChannelModel } from 'amqplib';
import { SourceUnavailable, errorMessage, redact } from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';

/** Channels per connection, far under channel_max: on the test bed 16 answered 3,600 checkQueue/s, 64 answered 7,400/s. */
export const MAX_CHANNELS = 64;

/**
 * Channels the pool opens on `conn`: MAX_CHANNELS, or fewer where the broker's channel_max says so
 * (0: no limit). Past it amqplib has no channel to give, and a burst of reads failed UNAVAILABLE
 * (found by review).
 */
function channelLimit(conn: ChannelModel): number {
  const negotiated = (conn as { connection?: { channelMax?: unknown } }).connection?.channelMax;
  return typeof negotiated === 'number' && negotiated > 0 ? Math.min(MAX_CHANNELS, negotiated) : MAX_CHANNELS;
}

/** Closes a connection: amqplib's close() never settles when the socket drops at that moment; its 'close' event still comes. */
async function closeConnection(conn: ChannelModel): Promise<void> {
  await Promise.race([conn.close(), once(conn, 'close')]);
}

/** What the connection is opened with beside its URL. */
interface ConnectOptions {
  readonly timeout: number;
  /** The URL's user and password, decoded as UTF-8 (amqplib decodes the URL's as Latin-1). */
  readonly credentials?: ReturnType<typeof amqplib.credentials.plain>;
  readonly clientProperties: { readonly connection_name: string };
}

/** The part of amqplib this module uses (the seam for unit tests). */
export type Connect = (url: string, options: ConnectOptions) => Promise<ChannelModel>;

/** What the broker's management UI names the scaler's connections. */
const CONNECTION_NAME = 'keda-inference-scaler';

type QueueCount = { messageCount: number; consumerCount: number };

/**
 * The URL's credentials as amqplib must get them: it reads the URL's user and password with
 * `unescape`, so a password with a non-ASCII letter (`p%C3%A4ss`) reached the broker as Latin-1,
 * refused, where the management API and KEDA decode UTF-8 (found by review).
 */
function connectOptions(url: string, timeout: number): ConnectOptions {
  const { username, password } = new URL(url);
  const clientProperties = { connection_name: CONNECTION_NAME };
  if (username === '' && password === '') return { timeout, clientProperties };
  const credentials = amqplib.credentials.plain(decodeURIComponent(username), decodeURIComponent(password));
  return { timeout, credentials, clientProperties };
}

interface Waiter {
  /** Called when a channel is free, or a slot to open one: the waiter asks again. */
  readonly wake: () => void;
  /** Called when the connection is closed for good: the waiter does not open another. */
  readonly fail: (err: Error) => void;
}

export class AmqpConnection {
  private connecting: Promise<ChannelModel> | undefined;
  private readonly idle: Channel[] = [];
  /** Channels open (idle or in use) on the current connection. */
  private readonly open = new Set<Channel>();
  /** Channels being opened: their slots are taken before the broker answers. */
  private creating = 0;
  private readonly waiting: Waiter[] = [];
  /** Channels given up on (abandon) on the current connection. */
  private abandoned = 0;
  /** The connection the pool's channels are on, once made. */
  private current: ChannelModel | undefined;
  /** The passive declare under way per queue: a queue that never answers holds one channel, not all. */
  private readonly checking = new Map<string, Declare>();
  private readonly url: string;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly connect: Connect;

  constructor(url: string, logger: Logger, timeoutMs: number, connect: Connect = amqplib.connect) {
    this.url = url;
    this.logger = logger;
    this.timeoutMs = timeoutMs;
    this.connect = connect;
  }

  /** Reads waiting for a channel now. */
  get queued(): number {
    return this.waiting.length;
  }

  private connection(): Promise<ChannelModel> {
    if (this.connecting === undefined) {
      this.abandoned = 0;
      const attempt = this.connect(this.url, connectOptions(this.url, this.timeoutMs)).then((conn) => {
        const forget = (err?: unknown) => {
          // An earlier connection's late close (amqplib emits 'error' at once and 'close' once the
          // broker answers) would empty the pool of the one made since (found by review).
          if (this.connecting !== attempt) return;
          this.dropConnection();
          this.wakeAll();
          // A broker that closes the connection (a restart: 320 CONNECTION_FORCED) gives 'close' alone.
          this.logger.warn(
            { broker: redact(this.url), ...(err !== undefined && { err: errorMessage(err) }) },
            'rabbitmq connection lost',
          );
        };
        conn.on('error', forget);
        conn.on('close', (err?: unknown) => forget(err));
        conn.on('blocked', (reason: unknown) =>
          this.logger.warn({ broker: redact(this.url), reason }, 'rabbitmq connection blocked'),
        );
        if (this.connecting === attempt) this.current = conn;
        return conn;
      });
      attempt.catch(() => {
        if (this.connecting === attempt) this.connecting = undefined;
      });
      this.connecting = attempt;
    }
    return this.connecting;
  }

  /**
   * checkQueue on a pooled channel, waiting for one when all MAX_CHANNELS are busy (FIFO). A 404
   * closes that channel, so it is never pooled again and its slot goes to the next waiter. Rejects
   * with the signal's reason if it aborts first (the read's deadline).
   */
  checkQueue(queue: string, signal?: AbortSignal): Promise<QueueCount> {
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    // A read of a queue whose last declare is still under way waits for that one: a queue process
    // that never answers (busy, paging) held a channel per read past its deadline, and after 64
    // reads every other queue on the broker waited for a channel (found by review). One given no
    // answer for ABANDON_AFTER_TIMEOUTS deadlines is given up, its channel closed.
    let declare = this.checking.get(queue);
    if (declare !== undefined && performance.now() - declare.startedMs > ABANDON_AFTER_TIMEOUTS * this.timeoutMs) {
      this.checking.delete(queue);
      if (declare.channel !== undefined) this.abandon(declare.channel);
      declare = undefined;
    }
    // One its readers all left before it reached the broker is ending: a read that joined it was
    // rejected with another read's deadline (found by review).
    if (declare !== undefined && declare.abandoned.signal.aborted && declare.channel === undefined) {
      this.checking.delete(queue);
      declare = undefined;
    }
    declare ??= this.startDeclare(queue);
    return declare.wait(signal);
  }

  private startDeclare(queue: string): Declare {
    const declare = new Declare();
    this.checking.set(queue, declare);
    this.declare(queue, declare).then(
      (reply) => this.settle(queue, declare, { ok: true, reply }),
      (err: unknown) => this.settle(queue, declare, { ok: false, err }),
    );
    return declare;
  }

  private settle(queue: string, declare: Declare, outcome: Outcome): void {
    if (this.checking.get(queue) === declare) this.checking.delete(queue);
    declare.settle(outcome);
  }

  /** A passive declare on a pooled channel; it waits for a channel only while a read waits for it. */
  private async declare(queue: string, declare: Declare): Promise<QueueCount> {
    const signal = declare.abandoned.signal;
    // Given up after a wake (a channel free, or a slot to open one), it passes the wake on: kept, the
    // next waiter slept with a channel free (found by review, after a connect slower than the reads).
    const giveUpIfAborted = (woken: boolean) => {
      if (!signal.aborted) return;
      if (woken) this.waiting.shift()?.wake();
      signal.throwIfAborted();
    };
    for (let woken = false; ; woken = true) {
      giveUpIfAborted(woken);
      const conn = await this.connection();
      giveUpIfAborted(woken);
      // Channels given up on keep their numbers on the connection: fewer left under channel_max.
      const room = channelLimit(conn) - this.abandoned;
      const channel = this.idle.pop() ?? (this.open.size + this.creating < room ? await this.createChannel(conn) : undefined);
      if (channel === undefined) {
        await this.turn(signal);
        continue;
      }
      declare.channel = channel;
      let reply: QueueCount;
      try {
        reply = await channel.checkQueue(queue);
      } catch (err) {
        // The broker closes the channel on an error; make sure of it, so its slot is given back.
        channel.close().catch(() => undefined);
        throw err;
      } finally {
        declare.channel = undefined;
      }
      this.release(channel);
      return reply;
    }
  }

  private async createChannel(conn: ChannelModel): Promise<Channel> {
    this.creating++;
    let channel: Channel;
    try {
      channel = await conn.createChannel();
    } catch (err) {
      // The slot is free again: the next waiter may try.
      this.waiting.shift()?.wake();
      throw err;
    } finally {
      this.creating--;
    }
    // Made on a connection replaced meanwhile (abandon): not this pool's.
    if (this.current !== conn) {
      channel.close().catch(() => undefined);
      throw new SourceUnavailable(`rabbitmq connection to ${redact(this.url)} was made again while a channel opened`);
    }
    this.open.add(channel);
    // Without an 'error' listener, a channel error takes the whole connection down.
    channel.on('error', () => undefined);
    channel.on('close', () => {
      if (!this.open.delete(channel)) return;
      const i = this.idle.indexOf(channel);
      if (i >= 0) this.idle.splice(i, 1);
      this.waiting.shift()?.wake();
    });
    return channel;
  }

  /**
   * A channel given up on: closed, and its slot freed now. amqplib frees it once the broker confirms
   * the close, which a channel stuck behind a queue that never answers never does: one such queue
   * took a slot per give-up, all MAX_CHANNELS in some 20 minutes, and then every queue on the
   * broker waited (found by review). The channel numbers such channels keep are the connection's:
   * past MAX_ABANDONED_CHANNELS of them it is made again.
   */
  private abandon(channel: Channel): void {
    channel.close().catch(() => undefined);
    if (!this.open.delete(channel)) return;
    const i = this.idle.indexOf(channel);
    if (i >= 0) this.idle.splice(i, 1);
    this.waiting.shift()?.wake();
    // Past half the room under a low channel_max too: the pool would be left no channel to give.
    const limit = this.current === undefined ? MAX_CHANNELS : channelLimit(this.current);
    if (++this.abandoned < Math.min(MAX_ABANDONED_CHANNELS, Math.max(1, Math.floor(limit / 2)))) return;
    const stale = this.connecting;
    if (stale === undefined) return;
    this.dropConnection();
    this.wakeAll();
    stale.then(closeConnection).catch(() => undefined);
    this.logger.warn(
      { broker: redact(this.url), abandonedChannels: this.abandoned },
      'rabbitmq connection made again: its channels given up on (a queue that never answers) were never closed',
    );
  }

  /**
   * Forgets the connection and the pool on it: the next read makes another. Declares on it settle
   * as their channels end (or never, a CloseOk that never comes): reads from now on declare on the
   * next connection.
   */
  private dropConnection(): void {
    this.connecting = undefined;
    this.current = undefined;
    this.idle.length = 0;
    this.open.clear();
    this.checking.clear();
  }

  private release(channel: Channel): void {
    if (!this.open.has(channel)) return; // closed meanwhile, or the connection was lost
    this.idle.push(channel);
    this.waiting.shift()?.wake();
  }

  /** Waits until a channel is released or a slot frees, or the signal aborts. */
  private turn(signal: AbortSignal | undefined): Promise<void> {
    // Aborted already: a waiter queued now would take a wake it cannot use.
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        fail: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private wakeAll(): void {
    for (const waiter of this.waiting.splice(0)) waiter.wake();
  }

  async close(): Promise<void> {
    const pending = this.connecting;
    this.dropConnection();
    // Reads waiting for a channel end here: woken, they would open a connection nobody closes.
    const closed = new SourceUnavailable(`rabbitmq connection to ${redact(this.url)} closed while the read waited for a channel`);
    for (const waiter of this.waiting.splice(0)) waiter.fail(closed);
    if (pending === undefined) return;
    try {
      await closeConnection(await pending);
    } catch {
      // already closed or never opened
    }
  }
}

/** Deadlines a declare may go unanswered before a read gives it up and declares again. */
const ABANDON_AFTER_TIMEOUTS = 10;
/** Channels given up on that a connection keeps before it is made again (abandon). */
const MAX_ABANDONED_CHANNELS = 16;

type Outcome = { readonly ok: true; readonly reply: QueueCount } | { readonly ok: false; readonly err: unknown };

interface Reader {
  readonly resolve: (reply: QueueCount) => void;
  readonly reject: (err: unknown) => void;
  readonly leave: () => void;
}

/**
 * One queue's passive declare and the reads waiting for it. A read leaves at its own deadline,
 * holding nothing after; once none is left, the declare stops waiting for a channel (it may not
 * have one yet). A declare the broker holds goes on: the next read joins it.
 */
class Declare {
  readonly startedMs = performance.now();
  readonly abandoned = new AbortController();
  /** Its channel while the broker has the declare. */
  channel: Channel | undefined;
  private readonly readers = new Set<Reader>();

  wait(signal: AbortSignal | undefined): Promise<QueueCount> {
    return new Promise<QueueCount>((resolve, reject) => {
      const onAbort = () => {
        this.readers.delete(reader);
        if (this.readers.size === 0) this.abandoned.abort(signal!.reason);
        reject(signal!.reason as Error);
      };
      const reader: Reader = { resolve, reject, leave: () => signal?.removeEventListener('abort', onAbort) };
      this.readers.add(reader);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  settle(outcome: Outcome): void {
    for (const reader of this.readers) {
      reader.leave();
      if (outcome.ok) reader.resolve(outcome.reply);
      else reader.reject(outcome.err);
    }
    this.readers.clear();
  }
}
