// What each trigger's learned state is based on when several replicas share a store: one replica,
// the lease holder, writes it; every replica decides from the newest record it has seen. All I/O
// runs off the request path: leases are kept by a timer, records arrive by subscription and by
// reads on a timer; a call reads only local maps. When the store does not answer, each replica
// goes on from its own state (local), and the store's health metric and log say so.
import type { Logger } from '../telemetry/logger.ts';
import type { StateRecord, StateStore } from './types.ts';

/**
 * A replica not asked about a trigger for this long gives its lease up, so that the replica KEDA
 * asks writes (KEDA's round robin can leave a replica out; an idle external-push trigger's one
 * stream stays on one replica). Past KEDA's polling of an idle trigger on two replicas (30 s
 * each by default), and well before a follower's record is old enough to be read as a silence
 * (RESUME_GAP_MS, 10 minutes).
 */
const UNASKED_LEASE_MS = 3 * 60_000;

/** Slices a round of lease renewals is cut into (start()). */
const TICKS_PER_ROUND = 10;
/** Every this many rounds a round re-reads followers' records too. */
const REREAD_EVERY_ROUNDS = 3;

/**
 * A writer notes in its trigger's lineage key that the trigger is the lineage's latest at most this
 * often, well within a record's life (STATE_RETENTION_MS, at least 30 minutes): what a replica
 * that never saw the trigger before its settings were edited starts the edited one from (track).
 */
const LINEAGE_NOTE_INTERVAL_MS = 10 * 60_000;

/** The store key of a lineage's note (Trigger.lineage): a record naming its latest trigger. */
export function lineageKey(lineage: string): string {
  return `lineage:${lineage}`;
}

/** A trigger's lineage: its key, and the record to note there (naming the trigger, its state left empty). */
export interface LineageNote<T> {
  readonly lineage: string;
  readonly note: T;
}

/**
 * writer: this replica holds the trigger's lease and publishes its state. follower: another one
 * does; decide from its record. local: the store is not answering (or nothing is shared).
 */
export type Role = 'writer' | 'follower' | 'local';

export interface SharedStateOptions {
  readonly logger: Logger;
  /** A writer publishes a trigger's state at most this often, unless its answer changed. */
  readonly publishIntervalMs: number;
  /**
   * The clock its intervals are measured on (when a trigger was last asked about, published, a
   * round began); none is a record's time. Default: monotonic, so a wall clock stepped forward
   * (an NTP step, a VM resumed) does not read as minutes unasked and give every lease up.
   */
  readonly now?: () => number;
}

/** A record as decisions use it: who made it when (and its place in the order), and the state. */
export type KnownState<T> = Pick<StateRecord<T>, 'writerId' | 'atMs' | 'storedAtMs' | 'payload'>;

/** Who made a record when, and its place in the order: what tells one record from another. */
export type RecordStamp = Pick<StateRecord<unknown>, 'writerId' | 'atMs' | 'storedAtMs'>;

/** The record's stamp, a copy that keeps none of its state alive. */
export function stampOf(record: RecordStamp): RecordStamp {
  const { writerId, atMs, storedAtMs } = record;
  return storedAtMs === undefined ? { writerId, atMs } : { writerId, atMs, storedAtMs };
}

/**
 * Whether two stamps name the same record: its writer and its place in the order where both have
 * one (a record read again after this replica's clock offset moved has its times moved too:
 * codec.ts), else its writer's time.
 */
export function sameRecord(a: RecordStamp | undefined, b: RecordStamp | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.writerId !== b.writerId || a.storedAtMs !== b.storedAtMs) return false;
  return a.storedAtMs !== undefined || a.atMs === b.atMs;
}

/**
 * Whether a record is newer than another: by the store's clock where both have its time (one clock
 * for every writer), else by their writers' (records of scalers before storedAtMs, or two writers'
 * stored in the same millisecond). Never the same record (sameRecord).
 */
export function newerRecord(a: RecordStamp, b: RecordStamp): boolean {
  if (sameRecord(a, b)) return false;
  if (a.storedAtMs === undefined || b.storedAtMs === undefined || a.storedAtMs === b.storedAtMs) return a.atMs > b.atMs;
  return a.storedAtMs > b.storedAtMs;
}

interface Entry<T> {
  role: Role;
  /**
   * The newest state seen: another replica's, or one read from the store. Not one this replica just
   * published: its own history is newer, and a copy of it per trigger was a writer's largest cost.
   */
  record: KnownState<T> | undefined;
  /** The newest record's stamp, the one this replica published included: what orders the next one. */
  newest: RecordStamp | undefined;
  lastPublishMs: number;
  publishing: boolean;
  /**
   * A writer's decision not yet in the store: its time (offer) until a publish of it or a later one
   * lands, or another writer's record is taken. What a replica that stops publishes before it goes
   * (owed), if it was made within publishIntervalMs of then (unpublishedSinceMs, on this clock).
   */
  unpublishedAtMs: number | undefined;
  unpublishedSinceMs: number;
  /**
   * A changed answer came while a publish was in flight: the next offer publishes whatever the
   * interval says (dropped, the change waited for the interval: found by review).
   */
  changeOwed: boolean;
  /** When this replica last noted the trigger in its lineage's key (offer). */
  lastLineageNoteMs: number;
  /** When this replica was last asked about the trigger (view). */
  askedAtMs: number;
  /**
   * Until when this replica's lease surely held, on its clock: the start of its last call that won
   * it, plus the lease's term. A win after that is the lease taken anew, whatever the role says:
   * another replica may have held it and published meanwhile (found by review: a writer paused past
   * its lease, whose successor published and gave it up, won it back free and wrote without reading).
   */
  heldUntilMs?: number;
  /**
   * The record of the trigger its lineage's note names, read at first sight when the trigger had
   * none (track): a state to start from for a replica that has none of its own, never one that
   * overrides its own.
   */
  lineageRecord?: KnownState<T>;
  /** The first sight's store round trip, while it is under way: every call waits for it. */
  tracking?: Promise<void>;
  /** The lineage the trigger was first seen under (track), for a first sight done again. */
  lineage?: string;
  /**
   * Its record (and lineage's) read once: at its first sight, or at the first renewal after a
   * first sight the store did not answer. Until then its lease is not used to write.
   */
  sighted: boolean;
  /** A renewal of its lease (and maybe a read) is under way: the next one waits for it to end. */
  renewing: boolean;
  /** A re-read asked for while a renewal without one was under way (the store back up): run after it. */
  rereadWanted: boolean;
}

/** A decision of this replica's no longer to publish (its lease lost, or another writer's record newer). */
function owedNothing(entry: Pick<Entry<unknown>, 'unpublishedAtMs' | 'changeOwed'>): void {
  entry.unpublishedAtMs = undefined;
  entry.changeOwed = false;
}

/** Milliseconds that only move forward (performance.now() from the process's start on the epoch). */
function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}

export class SharedState<T extends { readonly trigger?: string }> {
  readonly store: StateStore<T>;
  private readonly options: SharedStateOptions;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry<T>>();
  /** Publishes under way (offer), for a replica that stops to wait for (publishesLanded). */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly unsubscribe: () => void;
  private readonly removeHealthListener: () => void;
  private timer: NodeJS.Timeout | undefined;
  /** The current round's triggers still to renew (start()), last first, and how many a tick renews. */
  private pending: string[] = [];
  private slice = 0;
  private round = 0;
  private roundMs = 0;
  private roundStartedMs = -Infinity;
  /** Told of each trigger whose lease this replica takes over (onTakeover). */
  private takenOver: ((key: string) => void) | undefined;

  constructor(store: StateStore<T>, options: SharedStateOptions) {
    this.store = store;
    this.options = options;
    this.now = options.now ?? monotonicNow;
    this.unsubscribe = store.subscribe(
      (key, record) => this.seen(key, record),
      (key) => this.entries.has(key),
    );
    // Back from an outage: records published meanwhile were not heard; read them, retake leases, in
    // a round of their own, a slice a tick (all at once, a store that flapped on every slow command
    // had thousands of reads and decodes land in one turn of the loop each time: found by review).
    this.removeHealthListener = store.onHealthChange((health) => {
      if (health === 'up') this.rereadRound();
      else for (const entry of this.entries.values()) entry.role = 'local';
    });
  }

  /**
   * Keeps leases (and, every third round, followers' records) fresh from now on: a round every
   * leaseMs / 3, spread over TICKS_PER_ROUND ticks that each renew a slice of the triggers, so a
   * thousand triggers cost a hundred store calls every tick, not a thousand at once on the loop.
   */
  start(): void {
    const roundMs = Math.max(100, Math.floor(this.store.leaseMs / 3));
    this.roundMs = roundMs;
    this.timer = setInterval(() => this.tick(), roundMs / TICKS_PER_ROUND);
    this.timer.unref();
  }

  /**
   * `listener` is told of each trigger whose lease this replica takes over, once it has read the
   * record: the engine publishes then what it decided as a follower, if that is newer. Where KEDA
   * asks each replica less often than UNASKED_LEASE_MS (a ScaledObject at zero, polled every few
   * minutes), the writer has given its lease up by the time the next call comes, the replica asked
   * is a follower then and takes the lease only after it answered, and nothing was ever published
   * again: the replicas drifted apart and the record expired (found by review).
   */
  onTakeover(listener: (key: string) => void): void {
    this.takenOver = listener;
  }

  /** The newest record's stamp a replica knows of a trigger, its own publishes included. */
  newestStamp(key: string): RecordStamp | undefined {
    return this.entries.get(key)?.newest;
  }

  /** The trigger's role, for the explain endpoint: reading it is not being asked (view). */
  role(key: string): Role | undefined {
    return this.entries.get(key)?.role;
  }

  /** The newest record seen of a trigger another replica wrote, without marking it asked (view does). */
  newestRecord(key: string): KnownState<T> | undefined {
    return this.entries.get(key)?.record;
  }

  /** The trigger's role and newest record, as KEDA asks for it. Local maps only: for the request path. */
  view(
    key: string,
  ): { readonly role: Role; readonly record: KnownState<T> | undefined; readonly lineageRecord?: KnownState<T> } | undefined {
    const entry = this.entries.get(key);
    if (entry !== undefined) entry.askedAtMs = this.now();
    return entry;
  }

  /**
   * First sight of a trigger: try its lease and read its record, so a replica that just started
   * answers from what was learned before. For a trigger with no record yet (new, or its settings
   * just edited), the record of the trigger its lineage's note names, if any. Bounded by the store's
   * timeout (twice for a new one); a failure leaves it local.
   */
  async track(key: string, lineage?: string): Promise<void> {
    const known = this.entries.get(key);
    if (known !== undefined) return known.tracking;
    const entry: Entry<T> = {
      role: 'local',
      record: undefined,
      newest: undefined,
      lastPublishMs: -Infinity,
      publishing: false,
      unpublishedAtMs: undefined,
      unpublishedSinceMs: -Infinity,
      changeOwed: false,
      lastLineageNoteMs: -Infinity,
      askedAtMs: this.now(),
      renewing: false,
      rereadWanted: false,
      ...(lineage !== undefined && { lineage }),
      sighted: false,
    };
    this.entries.set(key, entry);
    entry.tracking = this.firstSight(key, entry).finally(() => {
      entry.tracking = undefined;
    });
    return entry.tracking;
  }

  /**
   * Whether the trigger is tracked and its first sight done: else a call goes the async way (track),
   * rather than decide from nothing and make that the trigger's own history, or decide a trigger
   * forgotten by the idle sweep without tracking it again (found by review: a trigger swept, then
   * asked again while another trigger kept its reading fresh, was never shared again). Local maps only.
   */
  settled(key: string): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && entry.tracking === undefined;
  }

  private async firstSight(key: string, entry: Entry<T>): Promise<void> {
    try {
      const startedMs = this.now();
      const [held] = await Promise.all([this.store.acquireLease(key), this.sight(key, entry)]);
      entry.role = held ? 'writer' : 'follower';
      if (held) this.won(entry, startedMs);
    } catch {
      // The store logged and counted it; the trigger stays local until it answers.
    }
  }

  /**
   * Reads the trigger's record and, with none, the record its lineage's note names (the note read
   * beside the record: two round trips at most before the first answer, not three, on a store far
   * away).
   */
  private async sight(key: string, entry: Entry<T>): Promise<void> {
    const note = entry.lineage === undefined ? undefined : this.store.read(lineageKey(entry.lineage));
    note?.catch(() => undefined);
    const record = await this.store.read(key);
    this.seen(key, record);
    entry.sighted = true;
    // The lineage's record is a start for a trigger with none, best effort: a failure to read it (its
    // key on a cluster's node that is down) leaves the trigger shared, from nothing, as before.
    if (record === undefined && note !== undefined) {
      entry.lineageRecord = await note.then((found) => this.latestOf(found, key)).catch(() => undefined);
    }
  }

  /**
   * A writer's new state: published when its answer changed (`changed`) or the last one is older
   * than publishIntervalMs. Fire and forget: the request path never waits for the store.
   */
  offer(key: string, payload: T, atMs: number, changed: boolean, lineage?: LineageNote<T>): void {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.role !== 'writer') return;
    const nowMs = this.now();
    entry.unpublishedAtMs = atMs;
    entry.unpublishedSinceMs = nowMs;
    if (entry.publishing) {
      entry.changeOwed ||= changed;
      return;
    }
    const sincePublishMs = nowMs - entry.lastPublishMs;
    if (!changed && !entry.changeOwed && sincePublishMs >= 0 && sincePublishMs < this.options.publishIntervalMs) return;
    entry.publishing = true;
    entry.changeOwed = false;
    entry.lastPublishMs = nowMs;
    const publish = this.store.publish(key, payload, atMs).then(
      (result) => {
        entry.publishing = false;
        if (result.outcome === 'not-writer') {
          entry.role = 'follower';
          owedNothing(entry);
        } else if (result.outcome === 'published') {
          if (entry.unpublishedAtMs === atMs) entry.unpublishedAtMs = undefined;
          this.published(key, { writerId: this.store.writerId, atMs, storedAtMs: result.storedAtMs });
          if (lineage !== undefined && nowMs - entry.lastLineageNoteMs >= LINEAGE_NOTE_INTERVAL_MS) {
            entry.lastLineageNoteMs = nowMs;
            void this.note(lineageKey(lineage.lineage), lineage.note, atMs);
          }
        }
      },
      () => {
        entry.publishing = false;
        entry.role = 'local';
        owedNothing(entry);
      },
    );
    this.inFlight.add(publish);
    void publish.finally(() => this.inFlight.delete(publish));
  }

  /**
   * The triggers whose writer here decided since its last publish, within publishIntervalMs of now:
   * what a replica about to stop publishes first (Engine.publishOwed). Not an older decision: stored
   * now, a record is newer than any before it, and the replicas KEDA asked meanwhile (followers,
   * learning as they answer) would go back to it (found by review).
   */
  owed(): string[] {
    const nowMs = this.now();
    const keys: string[] = [];
    for (const [key, entry] of this.entries) {
      const sinceMs = nowMs - entry.unpublishedSinceMs;
      if (
        entry.role === 'writer' &&
        entry.unpublishedAtMs !== undefined &&
        sinceMs >= 0 &&
        sinceMs <= this.options.publishIntervalMs
      )
        keys.push(key);
    }
    return keys;
  }

  /** Every publish under way has landed (or failed). */
  async publishesLanded(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * The lineage's note, written under a lease taken for the write and given up after it (nobody
   * renews it): two writers of one lineage (two triggers of it in use at once) take turns, and
   * either is a state to start from. Best effort: the store counts and logs a failure.
   */
  private async note(key: string, note: T, atMs: number): Promise<void> {
    try {
      if (!(await this.store.acquireLease(key))) return;
      await this.store.publish(key, note, atMs);
      await this.store.releaseLease(key);
    } catch {
      // Counted and logged by the store.
    }
  }

  /** The record of the trigger a lineage's note names, unless that is `key` itself, or it has none. */
  private async latestOf(note: StateRecord<T> | undefined, key: string): Promise<KnownState<T> | undefined> {
    const named = note?.payload.trigger;
    return named === undefined || named === key ? undefined : this.store.read(named);
  }

  /**
   * Whether this replica may hold the entry's lease: its writer, or one that won it and has not
   * written yet (a takeover whose read is under way, a publish that timed out), within its term.
   * Given up, it is another's at once, not after its term (found by review).
   */
  private holds(entry: Entry<T>): boolean {
    return entry.role === 'writer' || (entry.heldUntilMs !== undefined && this.now() < entry.heldUntilMs);
  }

  /** Whether the entry's lease may have run out by `atMs` (heldUntilMs): a win then is a takeover. */
  private lapsed(entry: Entry<T>, atMs: number): boolean {
    return entry.heldUntilMs === undefined || atMs > entry.heldUntilMs;
  }

  /** A call that started at `startedMs` won the entry's lease: it holds until a term after that. */
  private won(entry: Entry<T>, startedMs: number): void {
    entry.heldUntilMs = startedMs + this.store.leaseMs;
  }

  /** A trigger no one asks about any more: give its lease up so it expires everywhere. */
  forget(key: string): void {
    const entry = this.entries.get(key);
    this.entries.delete(key);
    if (entry !== undefined && this.holds(entry)) this.store.releaseLease(key).catch(() => undefined);
  }

  /**
   * Forgets every trigger but those `keep` names (the engine's sweep: triggers that answered nothing
   * lately) and those asked about within UNASKED_LEASE_MS: a first sight still under way is not yet
   * among the engine's triggers, and forgotten then it would decide from nothing (found by review).
   */
  forgetExcept(keep: (key: string) => boolean): void {
    const nowMs = this.now();
    for (const [key, entry] of [...this.entries]) {
      if (!keep(key) && nowMs - entry.askedAtMs > UNASKED_LEASE_MS) this.forget(key);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** How many tracked triggers hold each role (for the state_triggers gauge). */
  roles(): Record<Role, number> {
    const counts = { writer: 0, follower: 0, local: 0 };
    for (const entry of this.entries.values()) counts[entry.role]++;
    return counts;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    // Renewals still to come (a re-read asked for, a first lease in flight) find nothing to renew:
    // no lease is taken or kept after the store gives this replica's up.
    this.entries.clear();
    this.unsubscribe();
    this.removeHealthListener();
    await this.store.close();
  }

  private seen(key: string, record: KnownState<T> | undefined): void {
    if (record !== undefined) this.advance(key, record, record);
  }

  /** This replica's own record, published: newer than any seen before it, which is let go. */
  private published(key: string, stamp: RecordStamp): void {
    this.advance(key, stamp, undefined);
  }

  /** The record `stamp` names becomes the trigger's newest if it is newer; `record` its state kept. */
  private advance(key: string, stamp: RecordStamp, record: KnownState<T> | undefined): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    if (entry.newest === undefined || newerRecord(stamp, entry.newest)) {
      // Another writer's record, newer than this replica's decision not yet published: nothing owed.
      if (record !== undefined) owedNothing(entry);
      entry.record = record;
      // A record of its own now: the lineage's, a start for a trigger with none, is done with.
      entry.lineageRecord = undefined;
      // A record's own fields would keep its state alive: its stamp is copied.
      entry.newest = record === undefined ? stamp : stampOf(record);
    }
  }

  /** Renews or takes every tracked lease at once; with `reread`, reads followers' records too. */
  async refresh(reread: boolean): Promise<void> {
    await this.renew([...this.entries], reread);
  }

  /** The next tick starts a round that re-reads every record (at once when no round runs: not started). */
  private rereadRound(): void {
    if (this.timer === undefined) {
      void this.refresh(true);
      return;
    }
    this.pending = [];
    this.roundStartedMs = -Infinity;
    // tick() counts the round up to the next that re-reads.
    this.round += REREAD_EVERY_ROUNDS - 1 - (this.round % REREAD_EVERY_ROUNDS);
  }

  /**
   * One tick of a round: the next slice of the triggers, in the order they were first seen. A tick
   * does not wait for the last one's store round trips: on a store 400 ms away a round that waited
   * took longer than a lease, and leases lapsed and changed hands with no error.
   */
  private tick(): void {
    if (this.pending.length === 0) {
      // A round at most every roundMs: with fewer triggers than ticks a round, the next one waits
      // (one trigger renewed its lease ten times a round, and a follower re-read it every 300 ms).
      // (A clock stepped back past the round's start starts the next one: it would wait for the clock.)
      const sinceRoundMs = this.now() - this.roundStartedMs;
      if (sinceRoundMs >= 0 && sinceRoundMs < this.roundMs) return;
      this.roundStartedMs = this.now();
      this.pending = [...this.entries.keys()].reverse();
      this.slice = Math.ceil(this.pending.length / TICKS_PER_ROUND);
      this.round++;
    }
    const batch: [string, Entry<T>][] = [];
    while (batch.length < this.slice && this.pending.length > 0) {
      const key = this.pending.pop()!;
      const entry = this.entries.get(key);
      if (entry !== undefined) batch.push([key, entry]);
    }
    void this.renew(batch, this.round % REREAD_EVERY_ROUNDS === 0);
  }

  private async renew(batch: readonly (readonly [string, Entry<T>])[], reread: boolean): Promise<void> {
    if (this.store.health === 'degraded') return;
    // The common case (a lease to extend, nothing else to do) goes in one call for the batch; a
    // trigger with more to do (its first sight, a follower's read, a lease to give up) in its own.
    const nowMs = this.now();
    const plain: (readonly [string, Entry<T>])[] = [];
    const other: Promise<void>[] = [];
    for (const item of batch) {
      const [key, entry] = item;
      if (
        this.entries.get(key) === entry &&
        !entry.renewing &&
        entry.sighted &&
        nowMs - entry.askedAtMs <= UNASKED_LEASE_MS &&
        !(reread && entry.role !== 'writer')
      )
        plain.push(item);
      else other.push(this.renewOne(key, entry, reread));
    }
    await Promise.all([this.renewMany(plain, reread), ...other]);
  }

  /** renewOne for triggers that only need their leases extended, in one store call. */
  private async renewMany(batch: readonly (readonly [string, Entry<T>])[], reread: boolean): Promise<void> {
    if (batch.length === 0) return;
    for (const [, entry] of batch) entry.renewing = true;
    const startedMs = this.now();
    let held: readonly (boolean | undefined)[] | undefined;
    try {
      held = await this.store.acquireLeases(batch.map(([key]) => key));
    } catch {
      held = undefined;
    }
    batch.forEach(([key, entry], i) => {
      const mine = held?.[i];
      // A replica that won a lease it did not hold (its writer's lapsed; or its own last renewal
      // failed, the entry left local) writes only once it has read the record: the announcements it
      // would have heard a newer one by may have been lost (a subscriber's node gone, a pub/sub
      // buffer past its limit). It stays a follower until renewOne has read it.
      // So does a writer whose lease lapsed since its last win (lapsed): it may have been another's.
      const takenOver = mine === true && (entry.role !== 'writer' || this.lapsed(entry, startedMs));
      if (mine === true) this.won(entry, startedMs);
      entry.role = mine === undefined ? 'local' : mine && !takenOver ? 'writer' : 'follower';
      entry.renewing = false;
      if (entry.rereadWanted || (mine === false && reread) || takenOver) {
        // A writer that lost its lease in a round that re-reads: read its new writer's record.
        entry.rereadWanted = false;
        void this.renewOne(key, entry, true);
      }
    });
  }

  /** Renews one trigger's lease, and with `reread` reads its record when it follows; one at a time per trigger. */
  private async renewOne(key: string, entry: Entry<T>, reread: boolean): Promise<void> {
    // Forgotten meanwhile (a follow-up of a renewal under way then): its lease is not taken again.
    if (this.entries.get(key) !== entry) return;
    if (entry.renewing) {
      entry.rereadWanted ||= reread;
      return;
    }
    entry.renewing = true;
    const wasWriter = entry.role === 'writer';
    try {
      // Not asked here lately (KEDA's calls for it go to another replica): its lease goes to the
      // one asked, whose decisions would otherwise rest on this replica's frozen record.
      if (this.now() - entry.askedAtMs > UNASKED_LEASE_MS) {
        if (this.holds(entry)) await this.store.releaseLease(key).catch(() => undefined);
        entry.role = 'follower';
        return;
      }
      // A first sight the store did not answer, done now: a replica that takes the lease then
      // writes only once it has read what was stored, never over it from nothing.
      const sight = entry.sighted ? undefined : this.sight(key, entry);
      sight?.catch(() => undefined);
      // A follower's read goes beside its lease, not after it: one round trip, not two; so does a
      // writer's whose lease lapsed since its last win (heldUntilMs).
      const startedMs = this.now();
      const lapsed = wasWriter && this.lapsed(entry, startedMs);
      const read = ((reread && !wasWriter) || lapsed) && sight === undefined ? this.store.read(key) : undefined;
      read?.catch(() => undefined);
      try {
        const held = await this.store.acquireLease(key);
        await sight;
        // The record read beside the lease counts when the lease is won too: a replica taking over
        // must not write over a newer record it missed (found by review), nor write before it is
        // read: a read that failed leaves it a follower, to read again at the next round's renewal.
        if (held) {
          const readBack =
            read === undefined ||
            (await read.then(
              (found) => {
                this.seen(key, found);
                return true;
              },
              () => false,
            ));
          entry.role = readBack ? 'writer' : 'follower';
          this.won(entry, startedMs);
          if (readBack && (!wasWriter || lapsed)) this.takenOver?.(key);
        } else {
          entry.role = 'follower';
          if (reread && sight === undefined) this.seen(key, await (read ?? this.store.read(key)));
        }
      } catch {
        entry.role = 'local';
      }
    } finally {
      entry.renewing = false;
      if (entry.rereadWanted) {
        entry.rereadWanted = false;
        void this.renewOne(key, entry, true);
      }
    }
  }
}
