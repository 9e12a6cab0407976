// The contract between the scaler and where its learned state lives: one writer per key (a lease),
// records it publishes, and what every other replica reads. Payloads are opaque here.

/**
 * Checks a payload read back from the store. A zod schema is one (`z.object(...)`); so is anything
 * with the same safeParse. It must not throw: the store catches it if it does, and rejects the record.
 */
export interface PayloadSchema<T> {
  safeParse(value: unknown): { success: true; data: T } | { success: false; error: { message: string } };
}

/** One key's published state, as every replica reads it. */
export interface StateRecord<T> {
  /** The payload's format version: a record of another format is not read (RejectReason 'format'). */
  readonly format: number;
  /** Version of the scaler that wrote it (package.json), for diagnostics. */
  readonly scalerVersion: string;
  /** The replica that wrote it (StateStore.writerId). */
  readonly writerId: string;
  /** When the writer made the state (its clock, ms since the epoch). */
  readonly atMs: number;
  /**
   * When the store wrote it (the store's clock): the order of records, one clock for every writer,
   * so a writer whose clock is behind its predecessor's is not taken for older. Absent in records
   * of scalers before it; those are ordered by atMs.
   */
  readonly storedAtMs?: number;
  /**
   * The store's clock less the writer's, as the writer measured it (absent where it could not:
   * records of scalers before it, a store that refuses TIME). A reader whose own differs by a
   * second or more reads the record's times moved to its own clock (atMs included).
   */
  readonly clockOffsetMs?: number;
  readonly payload: T;
}

/** Why a record in the store was not used (each is warned once per key and counted). */
export type RejectReason =
  /** Not JSON, or not a string value (someone else's key). */
  | 'unreadable'
  /** JSON, but not a record envelope. */
  | 'envelope'
  /** A record of another payload format (another scaler version). */
  | 'format'
  /** The payload fails the schema. */
  | 'payload'
  /** Refused at publish: larger than the store's bound per record. */
  | 'too-large'
  /** Not read: larger than any record a scaler writes (someone else's value under our key). */
  | 'oversized'
  /** Not a record but a key's lease that holds a value of another type: nobody can take it. */
  | 'lease'
  /** Written by a clock far ahead of this replica's (or a time that is garbage): newer than any record to come. */
  | 'clock';

/** What publish did. Store failures are thrown (StateStoreUnavailable), never returned. */
export type PublishResult =
  /** Written; the other replicas see it from now on. storedAtMs: the record's place in the key's order. */
  | { readonly outcome: 'published'; readonly storedAtMs: number }
  /**
   * not-writer: not written, another replica holds the key's lease (this one lost it, or never had
   * it). too-large: not written, the record is over the bound per record (warned once per key).
   */
  | { readonly outcome: 'not-writer' | 'too-large' };

/** up: the store answers. degraded: it does not; each replica evaluates on its own state. */
export type StoreHealth = 'up' | 'degraded';

/** Operations counted in state_store_errors_total. */
export type StoreOp = 'connect' | 'lease' | 'publish' | 'read' | 'subscribe';

/**
 * Where learned state lives. Deliberately left out: transactions over several keys, listing keys,
 * and history of a key (only its latest record is kept). Every method either answers within the
 * store's timeout (about a second) or throws StateStoreUnavailable: none waits for a store that
 * does not answer, so callers may await them off the hot path, never on it.
 */
export interface StateStore<T> {
  /** memory: this process alone, always the writer (nothing shared). redis: shared by every replica. */
  readonly kind: 'memory' | 'redis';
  /** This replica's identity, held in its leases and written into its records. */
  readonly writerId: string;
  /** How long a lease lasts unless renewed. */
  readonly leaseMs: number;
  /**
   * Takes the key's lease when it is free, or extends it when this replica holds it. true: this
   * replica is the key's writer for leaseMs from now; renew well before that (every leaseMs / 3).
   */
  acquireLease(key: string): Promise<boolean>;
  /**
   * acquireLease for several keys at once, in as few round trips as the store allows (a renewal
   * round's slice). One answer per key, in order: undefined for a key whose lease the store refused
   * (another kind of value under it), or whose call failed (each key a call of its own on Redis
   * Cluster, a call per chunk of keys on one server: the chunks before a failed one keep their answers).
   */
  acquireLeases(keys: readonly string[]): Promise<(boolean | undefined)[]>;
  /** Gives up the key's lease if this replica holds it (on shutdown), so another takes over at once. */
  releaseLease(key: string): Promise<void>;
  /** Writes the key's record, if and only if this replica holds its lease (checked in the store, atomically). */
  publish(key: string, payload: T, atMs: number): Promise<PublishResult>;
  /** The key's latest record; undefined when there is none, it expired, or it cannot be used (warned once). */
  read(key: string): Promise<StateRecord<T> | undefined>;
  /**
   * Calls onRecord with each record another replica publishes, as it is published, for the keys
   * `wants` (every key without it; a record of a key no subscriber wants is not decoded). Best
   * effort: a record published while the store was unreachable is not replayed, so read on your own
   * clock too. Returns the function that unsubscribes.
   */
  subscribe(onRecord: (key: string, record: StateRecord<T>) => void, wants?: (key: string) => boolean): () => void;
  readonly health: StoreHealth;
  /** Calls listener on every change of health. Returns the function that removes it. */
  onHealthChange(listener: (health: StoreHealth) => void): () => void;
  /** Releases this replica's leases (best effort) and closes connections. */
  close(): Promise<void>;
}
