// The AMQP channel pool against a fake amqplib connection: a burst of reads of distinct queues opens
// at most MAX_CHANNELS channels (it opened one per read), every read is answered, a channel closed
// by a 404 gives its slot to the next read, and a read whose deadline passes while it waits leaves
// the queue.
import { EventEmitter } from 'node:events';
import type { Channel, ChannelModel } from 'amqplib';
import { describe, expect, it, vi } from 'vitest';
import { AmqpConnection, type Connect, MAX_CHANNELS } from '../../src/sources/amqpConnection.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';

/** A broker with queues `q0` ... and their message counts; answers each checkQueue on the next tick. */
class FakeBroker {
  channelsOpened = 0;
  channelsOpen = 0;
  maxChannelsOpen = 0;
  readonly queues = new Map<string, number>();
  /** checkQueue calls that have not answered yet (set `hold` to keep them waiting). */
  readonly held: (() => void)[] = [];
  hold = false;
  /** Connections made. */
  connections = 0;
  /** The channel_max the connection negotiated (amqplib's connection.channelMax), if any. */
  channelMax: number | undefined;
  /** A close the broker never confirms (a channel stuck behind a queue that never answers), as amqplib then waits. */
  closesHang = false;

  connection(): ChannelModel {
    this.connections++;
    const conn = new EventEmitter() as EventEmitter & { createChannel(): Promise<Channel>; close(): Promise<void> };
    conn.createChannel = async () => this.channel();
    conn.close = async () => undefined;
    if (this.channelMax !== undefined) Object.assign(conn, { connection: { channelMax: this.channelMax } });
    return conn as unknown as ChannelModel;
  }

  private channel(): Channel {
    // As amqplib: a channel not closed yet keeps its number.
    if (this.channelMax !== undefined && this.channelsOpen >= this.channelMax) throw new Error('No channels left to allocate');
    this.channelsOpened++;
    this.channelsOpen++;
    this.maxChannelsOpen = Math.max(this.maxChannelsOpen, this.channelsOpen);
    const channel = new EventEmitter() as EventEmitter & {
      checkQueue(q: string): Promise<{ messageCount: number; consumerCount: number }>;
      close(): Promise<void>;
    };
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      this.channelsOpen--;
      channel.emit('close');
    };
    channel.close = () => (this.closesHang ? new Promise<void>(() => undefined) : Promise.resolve(close()));
    channel.checkQueue = (q) =>
      new Promise((resolve, reject) => {
        const answer = () => {
          const messages = this.queues.get(q);
          if (messages === undefined) {
            // As RabbitMQ does: a 404 closes the channel.
            close();
            reject(Object.assign(new Error(`NOT_FOUND - no queue '${q}'`), { code: 404 }));
          } else resolve({ messageCount: messages, consumerCount: 0 });
        };
        if (this.hold) this.held.push(answer);
        else setImmediate(answer);
      });
    return channel as unknown as Channel;
  }
}

function pool(broker: FakeBroker): AmqpConnection {
  return new AmqpConnection('amqp://broker', silentLogger(), 1000, async () => broker.connection());
}

/** Every channel of `amqp` held by a read of `q0` ... the broker does not answer yet; those reads. */
async function holdEveryChannel(broker: FakeBroker, amqp: AmqpConnection): Promise<Promise<unknown>[]> {
  for (let i = 0; i < MAX_CHANNELS; i++) broker.queues.set(`q${i}`, 1);
  broker.hold = true;
  const busy = Array.from({ length: MAX_CHANNELS }, (_, i) => amqp.checkQueue(`q${i}`));
  await new Promise((r) => setImmediate(r));
  return busy;
}

describe('AmqpConnection', () => {
  it(`answers 2,000 concurrent reads of distinct queues on at most ${MAX_CHANNELS} channels`, async () => {
    const broker = new FakeBroker();
    for (let i = 0; i < 2000; i++) broker.queues.set(`q${i}`, i);
    const amqp = pool(broker);
    const replies = await Promise.all(Array.from({ length: 2000 }, (_, i) => amqp.checkQueue(`q${i}`)));
    expect(replies.map((r) => r.messageCount)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(broker.maxChannelsOpen).toBe(MAX_CHANNELS);
    expect(broker.channelsOpened).toBe(MAX_CHANNELS);
    expect(amqp.queued).toBe(0);
  });

  // Found by review: past a broker's channel_max amqplib has no channel to give.
  it("opens no more channels than the broker's channel_max, when it is below the pool's", async () => {
    const broker = new FakeBroker();
    broker.channelMax = 5;
    for (let i = 0; i < 200; i++) broker.queues.set(`q${i}`, i);
    const amqp = pool(broker);
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => amqp.checkQueue(`q${i}`)));
    expect(replies).toHaveLength(200);
    expect(broker.maxChannelsOpen).toBe(5);
  });

  it('gives the slot of a channel that a 404 closed to the next read', async () => {
    const broker = new FakeBroker();
    broker.queues.set('jobs', 3);
    const amqp = pool(broker);
    const reads = [
      ...Array.from({ length: MAX_CHANNELS }, (_, i) => amqp.checkQueue(`missing${i}`)),
      ...Array.from({ length: 50 }, () => amqp.checkQueue('jobs')),
    ];
    const settled = await Promise.allSettled(reads);
    expect(settled.filter((s) => s.status === 'rejected')).toHaveLength(MAX_CHANNELS);
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(50);
    expect(broker.channelsOpen).toBeLessThanOrEqual(MAX_CHANNELS);
    expect(amqp.queued).toBe(0);
  });

  it('rejects a waiting read with its deadline, and takes it out of the queue', async () => {
    const broker = new FakeBroker();
    broker.queues.set('jobs', 1);
    const amqp = pool(broker);
    const busy = await holdEveryChannel(broker, amqp);
    const deadline = new AbortController();
    const waiting = amqp.checkQueue('jobs', deadline.signal);
    await new Promise((r) => setImmediate(r));
    expect(amqp.queued).toBe(1);
    deadline.abort(new Error('no answer within 1000 ms'));
    await expect(waiting).rejects.toThrow('no answer within 1000 ms');
    expect(amqp.queued).toBe(0);
    for (const answer of broker.held.splice(0)) answer();
    await Promise.all(busy);
  });

  // Found by review: close() woke the reads waiting for a channel, and they opened a new
  // connection that nothing would close.
  it('ends the reads waiting for a channel when closed, and opens no connection for them', async () => {
    const broker = new FakeBroker();
    for (let i = MAX_CHANNELS; i < MAX_CHANNELS + 5; i++) broker.queues.set(`q${i}`, 1);
    let connects = 0;
    const amqp = new AmqpConnection('amqp://user:s3cret@broker', silentLogger(), 1000, async () => {
      connects++;
      return broker.connection();
    });
    const busy = await holdEveryChannel(broker, amqp);
    const waiting = Array.from({ length: 5 }, (_, i) => amqp.checkQueue(`q${MAX_CHANNELS + i}`));
    await new Promise((r) => setImmediate(r));
    expect(amqp.queued).toBe(5);
    await amqp.close();
    for (const read of waiting) await expect(read).rejects.toThrow(/closed while the read waited for a channel/);
    await expect(Promise.all(waiting.map((w) => w.catch((e: Error) => e.message)))).resolves.not.toContainEqual(
      expect.stringContaining('s3cret'),
    );
    expect(amqp.queued).toBe(0);
    expect(connects).toBe(1);
    for (const answer of broker.held.splice(0)) answer();
    await Promise.allSettled(busy);
  });

  // Found by review: each read of a queue whose declare never answered (a busy or paging queue
  // process) held a channel past its deadline; after 64 reads every queue on the broker waited.
  it('holds one channel for a queue whose declare never answers, however many reads time out on it', async () => {
    const broker = new FakeBroker();
    broker.queues.set('stuck', 1);
    broker.queues.set('other', 2);
    broker.hold = true;
    const amqp = pool(broker);
    for (let i = 0; i < 3 * MAX_CHANNELS; i++) {
      const deadline = new AbortController();
      const read = amqp.checkQueue('stuck', deadline.signal);
      await new Promise((r) => setImmediate(r));
      deadline.abort(new Error('no answer within 1000 ms'));
      await expect(read).rejects.toThrow('no answer within 1000 ms');
    }
    expect(broker.channelsOpen).toBe(1);
    broker.hold = false;
    expect(await amqp.checkQueue('other')).toEqual({ messageCount: 2, consumerCount: 0 });
    for (const answer of broker.held.splice(0)) answer();
  });

  // Found by review: amqplib frees a channel's slot once the broker confirms its close, which a
  // channel stuck behind a queue that never answers never does: each give-up kept one, and after 64
  // every queue on the broker waited for a channel.
  it('frees the slot of a channel given up on at once, and makes the connection again past 16 of them', async () => {
    const broker = new FakeBroker();
    broker.queues.set('stuck', 1);
    broker.queues.set('other', 2);
    broker.hold = true;
    broker.closesHang = true;
    const amqp = new AmqpConnection('amqp://broker', silentLogger(), 1, async () => broker.connection());
    for (let i = 0; i < MAX_CHANNELS + 8; i++) {
      const deadline = new AbortController();
      const read = amqp.checkQueue('stuck', deadline.signal);
      await new Promise((r) => setTimeout(r, 12)); // past 10 deadlines of 1 ms: the next read gives it up
      deadline.abort(new Error('deadline'));
      await expect(read).rejects.toThrow('deadline');
    }
    expect(broker.connections).toBeGreaterThan(1);
    broker.hold = false;
    const other = await Promise.race([amqp.checkQueue('other'), new Promise((r) => setTimeout(() => r('no channel'), 500))]);
    expect(other).toEqual({ messageCount: 2, consumerCount: 0 });
    for (const answer of broker.held.splice(0)) answer();
  });

  // Found by review of the above: under a channel_max of 5, one channel given up on left the pool
  // counting a slot amqplib had no number for, and reads failed "No channels left to allocate".
  it('under a low channel_max, counts channels given up on against it, and makes the connection again sooner', async () => {
    const broker = new FakeBroker();
    broker.channelMax = 5;
    broker.queues.set('stuck', 1);
    for (let i = 0; i < 20; i++) broker.queues.set(`q${i}`, i);
    broker.hold = true;
    broker.closesHang = true;
    const amqp = new AmqpConnection('amqp://broker', silentLogger(), 1, async () => broker.connection());
    const deadline = new AbortController();
    const stuck = amqp.checkQueue('stuck', deadline.signal);
    await new Promise((r) => setTimeout(r, 12));
    deadline.abort(new Error('deadline'));
    await expect(stuck).rejects.toThrow('deadline');
    // Given up on by the next read of it; then a burst of other queues.
    const next = new AbortController();
    const again = amqp.checkQueue('stuck', next.signal);
    broker.hold = false;
    const burst = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => amqp.checkQueue(`q${i}`)));
    expect(burst.filter((r) => r.status === 'rejected')).toEqual([]);
    await Promise.allSettled([again]);
    for (const answer of broker.held.splice(0)) answer();
  });

  // Found by review: amqplib decodes the URL's user and password as Latin-1 (unescape).
  it("opens the connection with the URL's credentials decoded as UTF-8, and names it", async () => {
    const broker = new FakeBroker();
    broker.queues.set('jobs', 1);
    const seen: Parameters<Connect>[1][] = [];
    const amqp = new AmqpConnection(
      'amqp://sc%C3%A4ler:p%C3%A4ss%40word@broker/ml',
      silentLogger(),
      1000,
      async (_url, options) => {
        seen.push(options);
        return broker.connection();
      },
    );
    await amqp.checkQueue('jobs');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.clientProperties).toEqual({ connection_name: 'keda-inference-scaler' });
    expect(seen[0]!.credentials?.username).toBe('scäler');
    expect(seen[0]!.credentials?.password).toBe('päss@word');
  });

  // Found by review: amqplib emits 'error' at once and 'close' once the broker answers; the old
  // connection's late 'close' emptied the pool of the connection made since, whose channels were
  // then never reused nor counted (128 open against a cap of 64).
  it("keeps the new connection's pool when the old connection's close comes late", async () => {
    const broker = new FakeBroker();
    for (let i = 0; i < 2 * MAX_CHANNELS; i++) broker.queues.set(`q${i}`, 1);
    const connections: EventEmitter[] = [];
    const amqp = new AmqpConnection('amqp://broker', silentLogger(), 1000, async () => {
      const conn = broker.connection();
      connections.push(conn as unknown as EventEmitter);
      return conn;
    });
    await Promise.all(Array.from({ length: MAX_CHANNELS }, (_, i) => amqp.checkQueue(`q${i}`)));
    connections[0]!.emit('error', new Error('Frame on unknown channel'));
    await Promise.all(Array.from({ length: MAX_CHANNELS }, (_, i) => amqp.checkQueue(`q${i}`)));
    expect(connections).toHaveLength(2);
    connections[0]!.emit('close');
    await Promise.all(Array.from({ length: 2 * MAX_CHANNELS }, (_, i) => amqp.checkQueue(`q${i}`)));
    // The old connection's channels, and at most the cap on the new one.
    expect(broker.channelsOpened).toBe(2 * MAX_CHANNELS);
  });

  // Found by review of the shared declare: it waited for a channel on the first read's deadline, and
  // every read that joined it failed with that read's deadline, not its own.
  it('keeps a shared declare waiting for a channel while any read of it still waits', async () => {
    const broker = new FakeBroker();
    broker.queues.set('jobs', 7);
    const amqp = pool(broker);
    const busy = await holdEveryChannel(broker, amqp);
    const first = new AbortController();
    const firstRead = amqp.checkQueue('jobs', first.signal);
    const secondRead = amqp.checkQueue('jobs', new AbortController().signal);
    await new Promise((r) => setImmediate(r));
    first.abort(new Error('no answer within 1000 ms'));
    await expect(firstRead).rejects.toThrow('no answer within 1000 ms');
    broker.hold = false;
    for (const answer of broker.held.splice(0)) answer();
    expect(await secondRead).toEqual({ messageCount: 7, consumerCount: 0 });
    await Promise.all(busy);
  });

  it('declares on the new connection a queue whose declare the lost one still holds', async () => {
    const broker = new FakeBroker();
    broker.queues.set('jobs', 2);
    broker.hold = true;
    const connections: EventEmitter[] = [];
    const amqp = new AmqpConnection('amqp://broker', silentLogger(), 1000, async () => {
      const conn = broker.connection();
      connections.push(conn as unknown as EventEmitter);
      return conn;
    });
    const stuck = new AbortController();
    const read = amqp.checkQueue('jobs', stuck.signal);
    await new Promise((r) => setImmediate(r));
    stuck.abort(new Error('no answer within 1000 ms'));
    await expect(read).rejects.toThrow('no answer within 1000 ms');
    // amqplib's 'error' at once; the broker's CloseOk, and with it 'close', may never come.
    connections[0]!.emit('error', new Error('Unexpected frame on channel 0'));
    broker.hold = false;
    expect(await amqp.checkQueue('jobs')).toEqual({ messageCount: 2, consumerCount: 0 });
    expect(connections).toHaveLength(2);
  });

  it('gives up a declare the broker left unanswered for ten deadlines, closing its channel', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      const broker = new FakeBroker();
      broker.queues.set('jobs', 2);
      broker.hold = true;
      const amqp = pool(broker);
      const first = new AbortController();
      const read = amqp.checkQueue('jobs', first.signal);
      await vi.waitFor(() => expect(broker.held).toHaveLength(1));
      first.abort(new Error('no answer within 1000 ms'));
      await expect(read).rejects.toThrow('no answer within 1000 ms');
      vi.advanceTimersByTime(9_000);
      const joined = new AbortController();
      const second = amqp.checkQueue('jobs', joined.signal);
      await new Promise((r) => setImmediate(r));
      expect(broker.channelsOpened).toBe(1); // joined, still within ten deadlines
      joined.abort(new Error('no answer within 1000 ms'));
      await expect(second).rejects.toThrow('no answer within 1000 ms');
      vi.advanceTimersByTime(2_000);
      broker.hold = false;
      expect(await amqp.checkQueue('jobs')).toEqual({ messageCount: 2, consumerCount: 0 });
      expect(broker.channelsOpened).toBe(2);
      expect(broker.channelsOpen).toBe(1); // the stuck one closed
    } finally {
      vi.useRealTimers();
    }
  });
});

// Found by review: with more queues than channels and a connect slower than the reads' deadlines,
// every declare was given up while it waited for the connection; those that then found no channel
// waited on a signal already fired, and each channel released woke one of them and was lost: a live
// read stayed queued with a channel free. A read that joined a given-up declare got another read's
// deadline.
describe('a connect slower than the reads', () => {
  it('answers a live read at once, with the first channel released at the latest', async () => {
    const broker = new FakeBroker();
    const count = MAX_CHANNELS + 6;
    for (let i = 0; i <= count; i++) broker.queues.set(`q${i}`, i);
    broker.hold = true;
    let connected: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => (connected = resolve));
    const amqp = new AmqpConnection('amqp://broker', silentLogger(), 1000, async () => {
      await slow;
      return broker.connection();
    });
    const deadlines = Array.from({ length: count }, () => new AbortController());
    const reads = deadlines.map((d, i) => amqp.checkQueue(`q${i}`, d.signal));
    for (const r of reads) r.catch(() => undefined);
    for (const d of deadlines) d.abort(new Error('old deadline'));
    connected();
    await Promise.allSettled(reads);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    broker.hold = false;
    const live = amqp.checkQueue(`q${count}`, AbortSignal.timeout(2000));
    let done = false;
    void live.then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    broker.held.shift()?.();
    await vi.waitFor(() => expect(done).toBe(true), { timeout: 500 });
    expect((await live).messageCount).toBe(count);
    // A read of a queue whose declare was given up before it reached the broker declares again.
    const again = amqp.checkQueue(`q${MAX_CHANNELS + 1}`, AbortSignal.timeout(2000));
    for (const answer of broker.held.splice(0)) answer();
    expect((await again).messageCount).toBe(MAX_CHANNELS + 1);
    await amqp.close();
  });
});
