// The shared store: Redis or Valkey through ioredis. Every operation answers within the timeout or
// fails at once (no offline queue: a command while disconnected is refused, not held), the client
// reconnects with a backoff, and health changes are logged once per transition, not per call.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { clip, redact } from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { StateStoreMetrics } from '../telemetry/metrics.ts';
import { Throttle } from '../telemetry/throttle.ts';
import { type StoreAddress, describeStore } from './address.ts';
import { MAX_STORED_AHEAD_MS, type ReaderClock, Rejections, decodeRecord, encodeRecord } from './codec.ts';
import { StateStoreUnavailable } from './errors.ts';
import type { PayloadSchema, PublishResult, StateRecord, StateStore, StoreHealth, StoreOp } from './types.ts';
import { MAX_TIMER_MS } from '../timers.ts';

/** Bound per record: a trigger's history is a few KB of JSON; four times that leaves room to grow. */
const MAX_RECORD_BYTES = 16 * 1024;
/**
 * A record read or heard over this many times the bound is not decoded: not one a scaler wrote
 * (room for another version's larger bound), and a value of megabytes would cost every replica
 * its parse at every read.
 */
const READ_BOUND_FACTOR = 2;
/** A key in a message on the records channel: a trigger id (600 characters at most) with room to spare. */
const MAX_KEY_CHARS = 2048;
/** Keys and the channel start with this; v1 is the layout of keys and envelope, not the payload's format. */
const KEY_PREFIX = 'kis:v1:';
/** Another kind of value under a key (in a script's error before Redis 7, after its "-"): garbage, not a refusal. */
const WRONG_TYPE = /(^|-)WRONGTYPE\b/;
/** A store that wants a password and got none (NOAUTH) or a wrong one (WRONGPASS): a setting, not an outage. */
const LOGIN_REFUSED = /\b(NOAUTH|WRONGPASS)\b/;

export interface RedisStateStoreOptions<T> {
  readonly address: StoreAddress;
  /** PEM of the CA that the server's certificate chains to (rediss://); the system's roots when absent. */
  readonly tlsCa?: string;
  /** The address is one node of a cluster (cluster mode), the others found from it. */
  readonly cluster?: boolean;
  /** The address is a Sentinel's, which names the master of this group (its password, if it has one of its own). */
  readonly sentinel?: { readonly master: string; readonly password?: string };
  readonly writerId: string;
  readonly scalerVersion: string;
  /** The payload format written into records; records of another are not read. */
  readonly format: number;
  readonly schema: PayloadSchema<T>;
  readonly leaseMs: number;
  /** A record not published again for this long expires in the store (triggers no one asks about). */
  readonly recordTtlMs: number;
  /** Bound on one operation, connecting included (default 1000). */
  readonly timeoutMs?: number;
  readonly maxRecordBytes?: number;
  readonly keyPrefix?: string;
  readonly logger: Logger;
  readonly metrics: StateStoreMetrics;
  /**
   * The payload with every time in it `ms` later: how a record of a writer whose clock differs
   * from this replica's is read on this one's (measured against the store's clock). Without it,
   * records are read on their writers' clocks.
   */
  readonly shift?: (payload: T, ms: number) => T;
  /** This replica's clock (default Date.now): tests run replicas on clocks apart. */
  readonly now?: () => number;
}

/** What a connection is made from. */
type ConnectionOptions = Pick<
  RedisStateStoreOptions<unknown>,
  'address' | 'tlsCa' | 'cluster' | 'sentinel' | 'timeoutMs' | 'writerId'
> & {
  /** Whether a failover's reply (failoverReply) reconnects now: the store spaces them out. */
  readonly reconnectForFailover?: () => boolean;
};

/** The store's clock is read this often, to tell this replica's clock from the writers' (readClock). */
const CLOCK_CHECK_MS = 60_000;
/** Sooner while no reading is had, or the last one was not used. */
const CLOCK_RETRY_MS = 5_000;
/**
 * A reading of the store's clock whose round trip took longer than this is not used: its midpoint
 * may be off by half of it, and what the offsets are for is a second.
 */
const CLOCK_CHECK_MAX_ROUND_TRIP_MS = 1_000;
/**
 * The offset in use moves only when a reading differs from it by this much: each reading differs
 * from the last by the round trip's jitter, and a record's times move with the offset (a record
 * read again with times a millisecond later would be taken for another one).
 */
const CLOCK_HYSTERESIS_MS = 250;
/** A clock that far from the store's, or farther, is warned about (at most every REFUSAL_WARN_MS). */
const CLOCK_WARN_MS = 1000;

/** A kind of refusal (an error reply) is warned about at most this often. */
const REFUSAL_WARN_MS = 10 * 60_000;
/**
 * Reconnects for a failover's reply (failoverReply): the first at once, then at least this long
 * apart, doubling to FAILOVER_RECONNECT_MAX_MS while the replies go on, and at once again after a
 * quiet FAILOVER_RECONNECT_MAX_MS. A failover is over in seconds; a URL that names a replica (a
 * reader endpoint) refuses writes for good, and each reconnect marked the store down and up again
 * (found by review: 45 health changes in 5 s, a warning and a new connection each).
 */
const FAILOVER_RECONNECT_MIN_MS = 1000;
const FAILOVER_RECONNECT_MAX_MS = 60_000;

export class RedisStateStore<T> implements StateStore<T> {
  readonly kind = 'redis';
  readonly writerId: string;
  readonly leaseMs: number;
  /** Where the store is, without credentials (for logs). */
  readonly description: string;
  private readonly options: RedisStateStoreOptions<T>;
  private readonly client: Redis | Cluster;
  private subscriber: Redis | Cluster | undefined;
  /** How a record this replica wrote names its writer (encodeRecord's order of fields). */
  private readonly ownWriterField: string;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Since when the subscriber has not been connected (checkSubscriber). */
  private subscriberDownSinceMs: number | undefined;
  /** While degraded on a connection that stayed open: a PING a second, until one is answered. */
  private probe: NodeJS.Timeout | undefined;
  /** Each subscriber, with the keys it wants. */
  private readonly subscribers = new Map<(key: string, record: StateRecord<T>) => void, (key: string) => boolean>();
  private readonly healthListeners = new Set<(health: StoreHealth) => void>();
  private readonly rejections: Rejections;
  private readonly prefix: string;
  private readonly channel: string;
  private readonly maxRecordBytes: number;
  private readonly maxReadBytes: number;
  /** Leases this replica holds, with when they run out unless renewed (this process's clock). */
  private readonly held = new Map<string, number>();
  /** Lease calls under way (leaseCall). */
  private readonly leaseCalls = new Set<Promise<unknown>>();
  private lastLeaseSweepMs = 0;
  private state: StoreHealth = 'degraded';
  /** When the health last changed, and how many times in a row it went down within STABLE_UP_MS of coming up. */
  private healthSinceMs = 0;
  private flaps = 0;
  /** When each kind of refusal (op and the reply's first word) was last warned about. */
  private readonly refusalsWarned = new Throttle(REFUSAL_WARN_MS, () => Date.now());
  private reported = false;
  private lastError = 'not connected yet';
  private closing = false;
  private readonly failoverReconnects = new FailoverReconnects();
  /**
   * Until then the connection is being made again for a failover's reply: the store answered, and
   * its close and the commands refused meanwhile are no outage (a connect's timeout, twice).
   */
  private failoverGraceUntilMs = 0;
  /** When the store last answered a command (an error reply included). */
  private answeredAtMs = 0;
  /** A cluster that stopped answering: whether it answers again within two timeouts (noAnswer). */
  private downCheck: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** The store's clock less this replica's (whole ms), read every CLOCK_CHECK_MS; undefined before the first reading. */
  private clockOffsetMs: number | undefined;
  /** How records are moved to this replica's clock (decodeRecord); none without options.shift. */
  private readerClock: ReaderClock<T> | undefined;
  private clockCheck: NodeJS.Timeout | undefined;
  private readonly clockWarned = new Throttle(REFUSAL_WARN_MS);

  constructor(options: RedisStateStoreOptions<T>) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.writerId = options.writerId;
    this.ownWriterField = `"writerId":${JSON.stringify(options.writerId)},"atMs":`;
    this.leaseMs = options.leaseMs;
    this.prefix = options.keyPrefix ?? KEY_PREFIX;
    this.channel = `${this.prefix}records`;
    this.maxRecordBytes = options.maxRecordBytes ?? MAX_RECORD_BYTES;
    this.maxReadBytes = READ_BOUND_FACTOR * this.maxRecordBytes;
    const mode =
      options.cluster === true
        ? ' (cluster)'
        : options.sentinel !== undefined
          ? ` (Sentinel, master ${options.sentinel.master})`
          : '';
    this.description = `${describeStore(options.address)}${mode}`;
    this.rejections = new Rejections(options.logger, options.metrics);
    this.client = connection({ ...options, reconnectForFailover: () => this.reconnectForFailover() });
    this.client.on('ready', () => {
      this.lastError = 'the connection closed';
      this.failoverGraceUntilMs = 0;
      if (this.client instanceof Cluster) this.confirmUp();
      else this.setHealth('up');
      void this.readClock();
    });
    this.client.on('error', (err: Error) => (this.lastError = err.message));
    // A cluster tells a node's errors apart from its own.
    this.client.on('node error', (err: Error) => (this.lastError = err.message));
    this.client.on('close', () => this.noAnswer(this.lastError));
    options.metrics.up.set(0);
    options.metrics.observeLeases(() => this.leasesHeld());
  }

  /** Connects; rejects when the store does not answer within the timeout (it keeps trying in the background). */
  async connect(): Promise<void> {
    // Bounded here: ioredis's own connect does not settle while the Sentinels name no master
    // (down, a wrong name or password), and the scaler starts only once this returns.
    const boundMs = 1.5 * (this.options.timeoutMs ?? 1000);
    const connecting = this.client.connect();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${boundMs} ms (${this.lastError})`)), boundMs);
    });
    try {
      await Promise.race([connecting, late]);
      // A cluster is ready once its slots are known, before its 'ready' event comes.
      if (this.client.status === 'ready') this.setHealth('up');
    } catch (err) {
      connecting.catch(() => undefined); // it goes on trying in the background
      this.lastError = (err as Error).message;
      this.setHealth('degraded', this.lastError);
      this.options.metrics.errors.inc({ op: 'connect' });
      throw new StateStoreUnavailable('connect', clip(redact(this.lastError), 300), { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  get health(): StoreHealth {
    return this.state;
  }

  async acquireLease(key: string): Promise<boolean> {
    const startedMs = Date.now();
    this.sweepLeases(startedMs);
    const held = await this.leaseCall(() =>
      this.run('lease', () => ACQUIRE.run(this.client, [this.leaseKey(key)], [this.writerId, this.leaseMs]), key),
    );
    return this.leaseAnswer(key, held as number, startedMs) === true;
  }

  /**
   * A lease taken or extended, counted while under way: close() waits for them, since a lease won
   * after it listed those to give up would stay for its whole term (found by review).
   */
  private leaseCall<R>(call: () => Promise<R>): Promise<R> {
    // None once closing: close() gives up what it holds, and a lease won after would stay its term.
    if (this.closing) return Promise.reject(new StateStoreUnavailable('lease', 'closing'));
    const pending = call();
    this.leaseCalls.add(pending);
    pending.then(
      () => this.leaseCalls.delete(pending),
      () => this.leaseCalls.delete(pending),
    );
    return pending;
  }

  /**
   * A renewal round's slice in one script call per LEASES_PER_CALL keys on a single server: a call
   * per lease was most of a replica's garbage at thousands of triggers (docs/performance.md). On a
   * cluster the keys are in different slots: one call each, as acquireLease.
   */
  async acquireLeases(keys: readonly string[]): Promise<(boolean | undefined)[]> {
    if (this.client instanceof Cluster || keys.length === 1) {
      const settled = await Promise.allSettled(keys.map((key) => this.acquireLease(key)));
      return settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
    }
    const out: (boolean | undefined)[] = [];
    for (let from = 0; from < keys.length; from += LEASES_PER_CALL) {
      const chunk = keys.slice(from, from + LEASES_PER_CALL);
      const startedMs = Date.now();
      this.sweepLeases(startedMs);
      const leaseKeys = chunk.map((key) => this.leaseKey(key));
      // A chunk that fails leaves its own keys unknown, not the chunks before it, whose leases
      // were taken (found by review: the whole slice went local for a round).
      let codes: number[] | undefined;
      try {
        codes = (await this.leaseCall(() =>
          this.run('lease', () => ACQUIRE_MANY.run(this.client, leaseKeys, [this.writerId, this.leaseMs])),
        )) as number[];
      } catch {
        codes = undefined;
      }
      chunk.forEach((key, i) => out.push(codes === undefined ? undefined : this.leaseAnswer(key, codes[i]!, startedMs)));
    }
    return out;
  }

  /**
   * A lease script's answer for `key`: whether this replica holds the lease now, or undefined for a
   * key holding another kind of value (-1 from ACQUIRE_MANY; ACQUIRE's reply is then an error).
   */
  private leaseAnswer(key: string, held: number, startedMs: number): boolean | undefined {
    if (held === -1) {
      this.options.metrics.errors.inc({ op: 'lease' });
      this.replied('lease', 'WRONGTYPE', key);
      this.held.delete(key);
      return undefined;
    }
    // 2: a lease without an expiry (no scaler writes one: a restore that dropped TTLs, a PERSIST,
    // a hand-made SET) was taken over, or no replica would ever hold it again.
    if (held === 2) this.rejections.reject(key, 'lease', 'a lease without an expiry, taken over');
    if (held === 1 || held === 2) this.held.set(key, startedMs + this.leaseMs);
    else this.held.delete(key);
    return held === 1 || held === 2;
  }

  async releaseLease(key: string): Promise<void> {
    this.held.delete(key);
    await this.run('lease', () => RELEASE.run(this.client, [this.leaseKey(key)], [this.writerId]), key);
  }

  async publish(key: string, payload: T, atMs: number): Promise<PublishResult> {
    const { format, scalerVersion, recordTtlMs } = this.options;
    const text = encodeRecord({
      format,
      scalerVersion,
      writerId: this.writerId,
      atMs,
      ...(this.clockOffsetMs !== undefined && { clockOffsetMs: this.clockOffsetMs }),
      payload,
    });
    const bytes = Buffer.byteLength(text);
    if (bytes > this.maxRecordBytes) {
      this.rejections.reject(key, 'too-large', `${bytes} bytes, bound ${this.maxRecordBytes}`);
      return { outcome: 'too-large' };
    }
    const reply = await this.run(
      'publish',
      () =>
        PUBLISH.run(
          this.client,
          [this.leaseKey(key), this.recordKey(key)],
          [this.writerId, text, recordTtlMs, this.channel, `${key.length}:${key}`, Math.round(atMs), MAX_STORED_AHEAD_MS],
        ),
      key,
    );
    if (!Array.isArray(reply)) {
      this.held.delete(key);
      return { outcome: 'not-writer' };
    }
    // Written, not announced (an ACL without PUBLISH): the other replicas read it on their clock.
    const [storedAtMs, announceError] = reply as [string, string?];
    if (announceError !== undefined) {
      this.options.metrics.errors.inc({ op: 'publish' });
      this.refused(
        'publish',
        announceError,
        'state store refuses to announce records: replicas read them every few seconds instead',
      );
    }
    return { outcome: 'published', storedAtMs: Number(storedAtMs) };
  }

  async read(key: string): Promise<StateRecord<T> | undefined> {
    let bytes: Buffer;
    try {
      // Never more than the read bound, whatever lies under the key.
      bytes = await this.run('read', () => this.client.getrangeBuffer(this.recordKey(key), 0, this.maxReadBytes), key);
    } catch (err) {
      // Something else under our key (a list, a hash): garbage (reported by run), not an outage.
      if (err instanceof StateStoreUnavailable && /WRONGTYPE/.test(err.message)) return undefined;
      throw err;
    }
    if (bytes.length === 0) return undefined;
    if (bytes.length > this.maxReadBytes) {
      this.rejections.reject(key, 'oversized', `over ${this.maxReadBytes} bytes`);
      return undefined;
    }
    return this.decode(key, bytes.toString('utf8'));
  }

  subscribe(onRecord: (key: string, record: StateRecord<T>) => void, wants: (key: string) => boolean = () => true): () => void {
    this.subscribers.set(onRecord, wants);
    if (this.subscriber === undefined) this.startSubscriber();
    return () => this.subscribers.delete(onRecord);
  }

  onHealthChange(listener: (health: StoreHealth) => void): () => void {
    this.healthListeners.add(listener);
    return () => this.healthListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.clockCheck);
    clearInterval(this.heartbeat);
    clearInterval(this.probe);
    clearTimeout(this.downCheck);
    // Bounded by the command timeout: a store that does not answer fails them. A slice past one
    // script call sends its next call after the one before: until none is left.
    while (this.leaseCalls.size > 0) await Promise.allSettled([...this.leaseCalls]);
    const nowMs = Date.now();
    const mine = [...this.held].filter(([, untilMs]) => untilMs > nowMs).map(([key]) => key);
    await Promise.allSettled(mine.map((key) => this.releaseLease(key)));
    const connections = this.subscriber === undefined ? [this.client] : [this.client, this.subscriber];
    // quit() leaves a Sentinel connector's failover detector connected: disconnect() after it.
    await Promise.all(
      connections.map((c) =>
        c
          .quit()
          .then(noop, noop)
          .finally(() => c.disconnect()),
      ),
    );
  }

  /**
   * Reads the store's clock (TIME, on the node of one key: a cluster's nodes each have their own)
   * against this replica's, by the midpoint of the round trip: what the records this replica
   * writes say (clockOffsetMs), and how the others' are moved to its clock. Then again in
   * CLOCK_CHECK_MS, or CLOCK_RETRY_MS while no reading was used. A store that does not answer
   * leaves the last reading, and one that refuses TIME (an ACL) is said once: records are then
   * read on their writers' clocks. Never throws.
   */
  private async readClock(): Promise<void> {
    clearTimeout(this.clockCheck);
    if (this.closing) return;
    let used = false;
    try {
      const sentMs = this.now();
      const [seconds, micros] = (await CLOCK.run(this.client, [`${this.prefix}clock`], [])) as [number, number];
      const receivedMs = this.now();
      const offsetMs = Math.round(Number(seconds) * 1000 + Number(micros) / 1000 - (sentMs + receivedMs) / 2);
      used = !this.closing && receivedMs - sentMs <= CLOCK_CHECK_MAX_ROUND_TRIP_MS && Number.isFinite(offsetMs);
      if (used) this.clockRead(offsetMs);
    } catch (err) {
      // An ACL's refusal is the user's to lift; other replies (MOVED, READONLY, OOM) the store's
      // other commands report.
      const message = err instanceof Error ? err.message : String(err);
      if (/NOPERM|permission|can.t run this command/i.test(message))
        this.refused('read', message, "state store refuses TIME: records are read on their writers' clocks");
    }
    if (this.closing) return;
    this.clockCheck = setTimeout(() => void this.readClock(), used ? CLOCK_CHECK_MS : CLOCK_RETRY_MS);
    this.clockCheck.unref();
  }

  private clockRead(offsetMs: number): void {
    this.options.metrics.clockOffset.set(offsetMs / 1000);
    if (this.clockOffsetMs !== undefined && Math.abs(offsetMs - this.clockOffsetMs) < CLOCK_HYSTERESIS_MS) return;
    this.clockOffsetMs = offsetMs;
    const { shift } = this.options;
    if (shift !== undefined) this.readerClock = { offsetMs, writerId: this.writerId, shift };
    if (Math.abs(offsetMs) >= CLOCK_WARN_MS && this.clockWarned.allows('offset')) {
      this.options.logger.warn(
        { offsetSeconds: Math.round(offsetMs / 100) / 10 },
        "this replica's clock is off the state store's: records are moved between the replicas' clocks, but keep the nodes' clocks synchronized (NTP)",
      );
    }
  }

  private decode(key: string, text: string): StateRecord<T> | undefined {
    const decoded = decodeRecord(text, this.options.format, this.options.schema, this.now(), this.readerClock);
    if (decoded.ok) return decoded.record;
    this.rejections.reject(key, decoded.reason, decoded.detail);
    return undefined;
  }

  /**
   * One operation: refused at once while disconnected (ioredis's offline queue is off), failed
   * after timeoutMs when the store does not answer. A failure without an answer from the server
   * marks the store degraded; an error reply (the server is there) does not. On a cluster, only
   * when no node answered for two timeouts: one node down (its slots failing over) leaves the
   * triggers of the others shared, and the failing ones local, each on its own (SharedState).
   */
  private async run<R>(op: StoreOp, call: () => Promise<R>, key?: string): Promise<R> {
    // A deadline of its own from when it is issued: ioredis's command timeout runs from when the
    // command is sent, and auto-pipelining holds a command back while the batch before it is out
    // (a stall: 2 s, not 1), and on a cluster that never loaded its slots until the next reconnect
    // (3 s; found by review).
    const timeoutMs = this.options.timeoutMs ?? 1000;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const result = await Promise.race([call(), deadline]);
      this.answeredAtMs = Date.now();
      // An answer: a stall that ended without a reconnect (no 'ready' event) is over.
      if (this.state === 'degraded' && this.client.status === 'ready') this.answeredAgain();
      return result;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // Another kind of value under a key is a rejected record or lease (counted there, replied):
      // counted as an error too, it fired the store-errors alert, whose runbook (an ACL, a read-only
      // replica) is not that one's (found by review).
      if (!WRONG_TYPE.test(message)) this.options.metrics.errors.inc({ op });
      // A cluster that says it is down (CLUSTERDOWN) answers nothing of use.
      if ((err as Error | undefined)?.name === 'ReplyError' && !/^CLUSTERDOWN\b/.test(message)) {
        this.answeredAtMs = Date.now();
        this.replied(op, message, key);
      } else this.noAnswer(message);
      throw new StateStoreUnavailable(op, clip(redact(message), 300), { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The store did not answer (a command failed without a reply, or the connection closed): down at
   * once. A cluster only if no node has answered for two timeouts since (a node lost, its slots
   * failing over, or ioredis reconnecting to read the slots again, is not the store down).
   */
  private noAnswer(reason: string): void {
    if (Date.now() < this.failoverGraceUntilMs) return;
    if (!(this.client instanceof Cluster)) {
      this.setHealth('degraded', reason);
      return;
    }
    const sinceMs = Date.now();
    const windowMs = 2 * (this.options.timeoutMs ?? 1000);
    if (sinceMs - this.answeredAtMs > windowMs) this.setHealth('degraded', reason);
    else if (this.downCheck === undefined) {
      this.downCheck = setTimeout(() => {
        this.downCheck = undefined;
        if (this.answeredAtMs < sinceMs) this.setHealth('degraded', reason);
      }, windowMs);
      this.downCheck.unref();
    }
  }

  /** Whether a failover's reply reconnects now (FAILOVER_RECONNECT_MIN_MS): ioredis asks on each such reply. */
  private reconnectForFailover(): boolean {
    const nowMs = Date.now();
    if (!this.failoverReconnects.allow(nowMs)) return false;
    // A cluster's node reconnects alone, under noAnswer's window for clusters.
    if (!(this.client instanceof Cluster)) this.failoverGraceUntilMs = nowMs + 2 * (this.options.timeoutMs ?? 1000);
    return true;
  }

  /** An error reply to an operation on `key`: said in the log (or as a rejected record), once per kind. */
  private replied(op: StoreOp, message: string, key: string | undefined): void {
    if (/^(MOVED|ASK)\b/.test(message)) {
      // On a cluster: slots moved (resharding), and ioredis retries no pipeline that holds a
      // write besides (auto-pipelining): its map of the slots is read again, now.
      if (this.client instanceof Cluster) void this.client.refreshSlotsCache();
      // A cluster's node, reached as one server: the keys of its slots work, the others never do.
      else this.refused(op, message, 'state store is a cluster: set STATE_STORE_CLUSTER=true (chart: stateStore.cluster)');
    } else if (WRONG_TYPE.test(message)) {
      // Another kind of value under our key: garbage there, a rejected record (read) or a lease
      // nobody can hold (the trigger is shared no more).
      if (key === undefined) return;
      if (op === 'read') this.rejections.reject(key, 'unreadable', 'not a string value');
      else
        this.rejections.reject(
          key,
          'lease',
          'another kind of value under its key: each replica decides from its own state until it is deleted',
        );
    } else this.refused(op, message);
  }

  /**
   * An error reply: the store is there but refuses (OOM under maxmemory with noeviction, READONLY
   * after a failover, an ACL's NOPERM). Leases refused leave every trigger on its own state, and
   * the health stays up: said once per kind of refusal every 10 minutes, not once per command.
   */
  private refused(
    op: StoreOp,
    message: string,
    consequence = 'state store refuses commands: replicas share nothing it refuses until it accepts them again',
  ): void {
    if (!this.refusalsWarned.allows(`${op} ${replyCode(message)} ${consequence}`)) return;
    this.options.logger.warn({ store: this.description, op, reason: clip(redact(message), 300) }, consequence);
  }

  /**
   * Up once the store answers. A cluster is ready (its slots known) and answers PING while it
   * refuses every key (CLUSTERDOWN): it is asked for a key.
   */
  private confirmUp(): void {
    const answered = this.client instanceof Cluster ? this.client.getrange(`${this.prefix}probe`, 0, 0) : this.client.ping();
    answered.then(() => {
      this.answeredAtMs = Date.now();
      this.answeredAgain();
    }, noop);
  }

  /**
   * Up again on a connection that stayed open, unless the store went down again soon after each
   * of its last recoveries: then only after a wait that doubles with each such turn (up to a
   * minute). A store whose latency sits near the command timeout flapped every second or two,
   * each turn a log line and a re-read of every trigger (found by review). A reconnect is up at once.
   */
  private answeredAgain(): void {
    const waitMs = this.flaps === 0 ? 0 : Math.min(MAX_FLAP_WAIT_MS, 1000 * 2 ** this.flaps);
    if (Date.now() - this.healthSinceMs >= waitMs) this.setHealth('up');
  }

  private setHealth(health: StoreHealth, reason?: string): void {
    if (this.closing || (health === this.state && this.reported)) return;
    const nowMs = Date.now();
    if (health === 'degraded' && this.state === 'up')
      this.flaps = nowMs - this.healthSinceMs < STABLE_UP_MS ? Math.min(this.flaps + 1, MAX_FLAPS) : 0;
    this.healthSinceMs = nowMs;
    this.state = health;
    this.reported = true;
    // A command that timed out on a connection that stays open (a store stalled for a second or
    // two: a fork, a failover pause) brings no reconnect and so no 'ready' event, and the shared
    // state asks nothing while degraded: a PING a second says when the store answers again.
    clearInterval(this.probe);
    this.probe = undefined;
    if (health === 'degraded') {
      this.probe = setInterval(() => {
        if (this.client.status === 'ready') this.confirmUp();
      }, 1000);
      this.probe.unref();
    }
    this.options.metrics.up.set(health === 'up' ? 1 : 0);
    const { logger } = this.options;
    if (health === 'up') logger.info({ store: this.description }, 'state store connected: replicas share learned state');
    else {
      logger.warn(
        { store: this.description, reason: clip(redact(reason ?? ''), 300) },
        LOGIN_REFUSED.test(reason ?? '')
          ? 'state store refused the login: give its password in STATE_STORE_PASSWORD (the chart: stateStore.existingSecret under its passwordKey) or its user and password in the URL; each replica evaluates on its own state until it logs in'
          : 'state store unreachable: each replica evaluates on its own state until it is back',
      );
    }
    for (const listener of this.healthListeners) listener(health);
  }

  /**
   * A second connection (one in subscriber mode takes no other command). It queues its SUBSCRIBE
   * until connected and subscribes again after every reconnect; a PING every lease keeps it
   * honest, since a connection that only listens never notices a store that stopped answering.
   */
  private startSubscriber(at?: NodeAddress): void {
    const subscriber = connection(this.options, true, at);
    this.subscriber = subscriber;
    this.subscriberDownSinceMs = undefined;
    subscriber.on('error', () => {}); // its state shows in the main connection's health
    subscriber.on('message', (_channel: string, message: string) => this.onMessage(message));
    subscriber.subscribe(this.channel).catch((err: unknown) => {
      // Refused by the server (an ACL without the channel), not timed out while the store was away:
      // ioredis sends a queued SUBSCRIBE once connected, and that one subscribes (found by review:
      // "subscription failed" was said of a subscription that worked).
      if ((err as Error | undefined)?.name !== 'ReplyError') return;
      this.options.metrics.errors.inc({ op: 'subscribe' });
      this.options.logger.warn(
        { store: this.description, err: clip(redact(String(err)), 300) },
        'state store subscription failed',
      );
    });
    this.heartbeat = setInterval(() => this.checkSubscriber(subscriber), Math.min(MAX_TIMER_MS, Math.max(1000, this.leaseMs)));
    this.heartbeat.unref();
  }

  /**
   * The subscriber's heartbeat. On a cluster its server is one node: lost (a fixed node address
   * in the URL, not an endpoint that moves), the subscriber would reconnect to it for ever while
   * the other nodes serve, and no record would be heard again. Down for two leases while the store
   * is up, it moves to another node the cluster names.
   */
  private checkSubscriber(subscriber: Redis | Cluster): void {
    if (subscriber.status === 'ready') {
      this.subscriberDownSinceMs = undefined;
      subscriber.ping().catch(() => this.options.metrics.errors.inc({ op: 'subscribe' }));
      return;
    }
    if (this.options.cluster !== true || this.health !== 'up' || this.closing) return;
    const nowMs = Date.now();
    this.subscriberDownSinceMs ??= nowMs;
    if (nowMs - this.subscriberDownSinceMs < 2 * Math.max(1000, this.leaseMs)) return;
    const from = subscriber.options as { host?: string; port?: number };
    const others = (this.client as Cluster)
      .nodes('all')
      .filter((node) => !(node.options.host === from.host && node.options.port === from.port));
    // One the main connection reached is surest; else any the cluster names. ioredis connects a
    // node only once a command goes there, and a replica that sent none but to the lost node would
    // never have moved (found in CI, one run in three: its probe key's slot on that node).
    const ready = others.filter((node) => node.status === 'ready');
    const open = ready.length > 0 ? ready : others.filter((node) => node.status !== 'end' && node.status !== 'close');
    const to = open[Math.floor(Math.random() * open.length)];
    if (to === undefined) return;
    const at = { host: to.options.host!, port: to.options.port! };
    this.options.metrics.errors.inc({ op: 'subscribe' });
    this.options.logger.warn(
      { store: this.description, from: `${from.host}:${from.port}`, to: `${at.host}:${at.port}` },
      'state store subscription moved to another node: its node has not answered for two leases',
    );
    clearInterval(this.heartbeat);
    subscriber.disconnect();
    this.startSubscriber(at);
  }

  private onMessage(message: string): void {
    const colon = message.indexOf(':');
    const length = Number(message.slice(0, colon));
    if (colon < 1 || !Number.isInteger(length) || length > MAX_KEY_CHARS || colon + 1 + length > message.length) {
      this.rejections.reject(this.channel, 'unreadable', 'a message on the records channel without a key');
      return;
    }
    const key = message.slice(colon + 1, colon + 1 + length);
    // Decoded only for a key some subscriber tracks: every replica hears every trigger's records.
    if (!this.wanted(key)) return;
    const text = message.slice(colon + 1 + length);
    if (Buffer.byteLength(text) > this.maxReadBytes) {
      this.rejections.reject(key, 'oversized', `over ${this.maxReadBytes} bytes`);
      return;
    }
    // This replica's own record, heard back: known without decoding it (most of the channel's
    // traffic for a writer's triggers).
    if (text.lastIndexOf(this.ownWriterField, OWN_WRITER_WITHIN) >= 0) return;
    const record = this.decode(key, text);
    if (record === undefined || record.writerId === this.writerId) return;
    for (const [listener, wants] of this.subscribers) if (wants(key)) listener(key, record);
  }

  private wanted(key: string): boolean {
    for (const wants of this.subscribers.values()) if (wants(key)) return true;
    return false;
  }

  private leasesHeld(): number {
    const nowMs = Date.now();
    let count = 0;
    for (const untilMs of this.held.values()) if (untilMs > nowMs) count++;
    return count;
  }

  /** Forgets leases that ran out, now and then: keys no one asks about leave no entry behind. */
  private sweepLeases(nowMs: number): void {
    if (nowMs - this.lastLeaseSweepMs < this.leaseMs) return;
    this.lastLeaseSweepMs = nowMs;
    for (const [key, untilMs] of this.held) if (untilMs <= nowMs) this.held.delete(key);
  }

  // Hash tags ({key}): a key's record and lease live in one slot, as the publish script needs on a cluster.
  private recordKey(key: string): string {
    return `${this.prefix}{${key}}:record`;
  }

  private leaseKey(key: string): string {
    return `${this.prefix}{${key}}:lease`;
  }
}

/** A node of a cluster, where a subscriber moved (checkSubscriber). */
interface NodeAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * A connection to the store: to one server, to the master a Sentinel names (sentinel), or
 * (cluster) to the cluster a node of which the address names. Commands fail at once while disconnected (no offline queue: a command is refused, not
 * held); a subscriber queues its SUBSCRIBE until connected and waits for replies as long as it takes.
 */
function connection(options: ConnectionOptions, subscriber = false, at?: NodeAddress): Redis | Cluster {
  const { host, port } = at ?? options.address;
  const { db } = options.address;
  const perServer = serverOptions(options);
  // A subscriber resends what a reconnect cut off: its SUBSCRIBE, sent as the connection came up and
  // unanswered when it dropped, was otherwise lost without a word (found by review).
  const redisOptions: RedisOptions = subscriber
    ? { ...perServer, maxRetriesPerRequest: null, autoResendUnfulfilledCommands: true }
    : perServer;
  const common = {
    enableOfflineQueue: subscriber,
    lazyConnect: !subscriber,
    // Commands from one turn of the event loop (many triggers' leases) go in one write.
    enableAutoPipelining: true,
  };
  const { sentinel } = options;
  if (sentinel !== undefined) {
    // The master the Sentinels name, followed through a failover (their +switch-master).
    return new Redis({
      sentinels: [{ host, port }],
      name: sentinel.master,
      db,
      ...redisOptions,
      ...common,
      retryStrategy: reconnectDelay,
      ...(sentinel.password !== undefined && { sentinelPassword: sentinel.password }),
      ...(redisOptions.tls !== undefined && { enableTLSForSentinelMode: true, sentinelTLS: redisOptions.tls }),
      sentinelCommandTimeout: options.timeoutMs ?? 1000,
      failoverDetector: true,
    });
  }
  // A cluster's subscriber is one server's connection (a message published on any node reaches
  // every node): with the timeouts of the others and its heartbeat, which ioredis's own cluster
  // subscriber takes neither of (a node stalled under it went unnoticed).
  if (options.cluster !== true || subscriber)
    return new Redis({ host, port, db, ...redisOptions, ...common, retryStrategy: reconnectDelay });
  return new Cluster([{ host, port }], {
    redisOptions,
    ...common,
    clusterRetryStrategy: reconnectDelay,
    slotsRefreshTimeout: options.timeoutMs ?? 1000,
    // Slots moved by a resharding are found within seconds, failing commands or not.
    slotsRefreshInterval: 5000,
    // The nodes as the cluster names them (addresses, often): TLS checks each node's certificate
    // against the URL's host name (tls.servername), not a name looked up again.
    dnsLookup: (address, callback) => callback(null, address),
  });
}

function reconnectDelay(times: number): number {
  return Math.min(100 * 2 ** Math.min(times - 1, 5), 2000) + Math.floor(Math.random() * 100);
}

/** What each connection to a server of the store is made with. */
function serverOptions(options: ConnectionOptions): RedisOptions {
  const { address } = options;
  const timeoutMs = options.timeoutMs ?? 1000;
  return {
    ...(address.username !== undefined ? { username: address.username } : {}),
    ...(address.password !== undefined ? { password: address.password } : {}),
    // SNI names a host, never an address (RFC 6066); the certificate is checked against either.
    ...(address.tls
      ? {
          tls: {
            ...(isIP(address.host) === 0 ? { servername: address.host } : {}),
            ...(options.tlsCa !== undefined ? { ca: options.tlsCa } : {}),
          },
        }
      : {}),
    connectionName: `keda-inference-scaler:${options.writerId}`,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    // A connection that goes silent with a command waiting is dropped and made again: a store
    // behind a broken network path would otherwise hold a dead connection until TCP gives up.
    socketTimeout: 2 * timeoutMs,
    // Never resend a command after a reconnect (the caller's next attempt is newer than the one lost).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // A failover behind one address (Sentinel, ElastiCache): the old primary, now a replica,
    // refuses writes with READONLY for as long as the connection lasts. Reconnect, and reach the
    // new primary; the command fails as before and the next tick retries it.
    reconnectOnError: (err) => failoverReply(err.message) && (options.reconnectForFailover?.() ?? true),
  };
}

/**
 * An error reply of a store that failed over behind one address: the old primary, now a replica,
 * refusing writes, or a new one still loading. Before Redis 7 an error inside a script (every
 * write here is one) comes back as "ERR Error running script ... -READONLY ...", so the code is
 * matched after a "-" too (found by review: anchored, such a store was never reconnected).
 */
export function failoverReply(message: string): boolean {
  return /(^|-)(READONLY|MASTERDOWN|LOADING)\b/.test(message);
}

/**
 * An error reply's code: its first word, or, for an error inside a script before Redis 7 ("ERR
 * Error running script ... -OOM ..."), the code quoted after the "-". Found by review: every such
 * refusal was "ERR", and the first one's warning hid the others' (a NOPERM behind an OOM) for
 * ten minutes.
 */
export function replyCode(message: string): string {
  return /^ERR Error running script\b.*?-([A-Z]+)\b/.exec(message)?.[1] ?? message.split(' ', 1)[0] ?? '';
}

/**
 * When a failover's replies reconnect (FAILOVER_RECONNECT_MIN_MS .. MAX_MS): the first at once,
 * then gaps doubling while the replies go on, and at once again after replies quiet for the
 * longest gap.
 */
export class FailoverReconnects {
  private atMs = -Infinity;
  private gapMs = 0;
  private repliedAtMs = -Infinity;

  /** A failover's reply now: whether it reconnects. */
  allow(nowMs: number): boolean {
    // Quiet since the last such reply, not the last reconnect: replies that go on at the longest
    // gap started it over at 1 s each time otherwise (found by review).
    const quiet = nowMs - this.repliedAtMs > FAILOVER_RECONNECT_MAX_MS;
    this.repliedAtMs = nowMs;
    if (!quiet && nowMs - this.atMs < this.gapMs) return false;
    this.gapMs = quiet ? FAILOVER_RECONNECT_MIN_MS : Math.min(2 * this.gapMs, FAILOVER_RECONNECT_MAX_MS);
    this.atMs = nowMs;
    return true;
  }
}

/** A Lua script sent once and then called by its digest. */
class Script {
  private readonly lua: string;
  private readonly sha: string;

  constructor(lua: string) {
    this.lua = lua;
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(client: Redis | Cluster, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message)) throw err;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

/** The store's clock, on the node of the key given (TIME alone goes to any node of a cluster). */
const CLOCK = new Script(`return redis.call('TIME')`);

/** Up for less than this before going down again is a flap (answeredAgain). */
const STABLE_UP_MS = 60_000;
/** The longest wait before a flapping store counts as up again, and the flaps that reach it. */
const MAX_FLAP_WAIT_MS = 60_000;
const MAX_FLAPS = 6;

/** Takes a free lease or extends one this writer holds: 1 when the caller holds it afterwards. */
const ACQUIRE = new Script(`
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0`);

/** Where a record's writer field starts at the latest: after its time, format and version. */
const OWN_WRITER_WITHIN = 400;

/** Leases taken or extended by one script call at most (acquireLeases): a call holds the server for its length. */
const LEASES_PER_CALL = 1000;

/** ACQUIRE for each of KEYS: 1 or 2 (held afterwards) or 0 per key, -1 for a key holding another type of value. */
const ACQUIRE_MANY = new Script(`
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.pcall('GET', key)
  if type(holder) == 'table' and holder.err then
    out[i] = -1
  elseif holder == false then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 1
  elseif holder == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  elseif redis.call('PTTL', key) == -1 then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 2
  else
    out[i] = 0
  end
end
return out`);

/** Deletes the lease if this writer holds it. */
const RELEASE = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`);

/**
 * Writes the record and announces it, only while the caller holds the lease: a writer that lost
 * its lease (paused past it, and another took over) cannot overwrite the new writer's record.
 * The record gets its place in the key's order as its first field (storedAtMs): the store's time,
 * one clock for every writer, and past the last record's, so that a store whose clock stepped
 * back (a failover to another host) or a garbage time under the key never orders a new record
 * before an old one (the writer's time, ARGV[6], where an ACL refuses TIME; a last time more than
 * ARGV[7] ahead is garbage, not followed). The announcement is
 * the key's length, ':', the key, then the record; a refused one (an ACL without PUBLISH) leaves
 * the record written. Returns 0 when not the writer, else storedAtMs and the announcement's error.
 */
const PUBLISH = new Script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local time = redis.pcall('TIME')
local nowMs = tonumber(ARGV[6])
if type(time) == 'table' and time.err == nil then
  nowMs = time[1] * 1000 + math.floor(time[2] / 1000)
end
local head = redis.pcall('GETRANGE', KEYS[2], 0, 40)
local last = type(head) == 'string' and tonumber(string.match(head, '^{"storedAtMs":(%d+),')) or 0
if last > nowMs + ARGV[7] then
  last = 0
end
local storedAtMs = string.format('%.0f', math.max(nowMs, last + 1))
local text = '{"storedAtMs":' .. storedAtMs .. ',' .. string.sub(ARGV[2], 2)
redis.call('SET', KEYS[2], text, 'PX', ARGV[3])
local announced = redis.pcall('PUBLISH', ARGV[4], ARGV[5] .. text)
if type(announced) == 'table' and announced.err then
  return {storedAtMs, announced.err}
end
return {storedAtMs}`);

function noop(): void {}
