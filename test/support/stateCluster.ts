// A Redis-like state store in memory, on a clock the caller gives: one per cluster of scaler
// processes, each with its own client (its writer id, leases and subscription). Leases expire,
// records are held as Redis holds them, JSON text, and read back through the codec and the
// payload's schema, so what a process reads is what a real store would give it, until it expires
// (recordTtlMs after it was last published; never by default). The store can be
// taken down (setHealth) for the processes to go on without it. Used by the engine's unit tests and
// by the decisions simulator's several scaler processes (bench/decisions/modelPolicy.ts).
import { decodeRecord, encodeRecord } from '../../src/state/codec.ts';
import { STATE_FORMAT, type SharedTriggerState, sharedStateSchema } from '../../src/state/payload.ts';
import type { PublishResult, StateRecord, StateStore, StoreHealth } from '../../src/state/types.ts';

type Listener = (key: string, record: StateRecord<SharedTriggerState>) => void;

export class StateCluster {
  readonly leaseMs: number;
  readonly now: () => number;
  readonly leases = new Map<string, { holder: string; untilMs: number }>();
  /** Each key's latest record, as JSON text. */
  readonly records = new Map<string, string>();
  /** When each key's record expires. */
  readonly expiries = new Map<string, number>();
  readonly clients = new Set<ClusterClient>();
  readonly recordTtlMs: number;
  health: StoreHealth = 'up';

  constructor(now: () => number, leaseMs = 3000, recordTtlMs = Number.POSITIVE_INFINITY) {
    this.now = now;
    this.leaseMs = leaseMs;
    this.recordTtlMs = recordTtlMs;
  }

  /** A scaler process's connection to the store. */
  client(writerId: string): ClusterClient {
    return new ClusterClient(this, writerId);
  }

  /** Takes the store down ('degraded': every operation throws) or brings it back, telling every client. */
  setHealth(health: StoreHealth): void {
    this.health = health;
    for (const c of this.clients) for (const l of c.healthListeners) l(health);
  }

  /** A record the schema refuses fails loudly: a state that does not read back must not go unseen. */
  decode(text: string): StateRecord<SharedTriggerState> {
    const decoded = decodeRecord(text, STATE_FORMAT, sharedStateSchema);
    if (!decoded.ok) throw new Error(`the state record does not read back: ${decoded.reason}, ${decoded.detail}`);
    return decoded.record;
  }
}

class ClusterClient implements StateStore<SharedTriggerState> {
  readonly kind = 'redis';
  readonly writerId: string;
  readonly leaseMs: number;
  readonly healthListeners = new Set<(health: StoreHealth) => void>();
  /** Lease calls made to the store (acquireLease, acquireLeases), each a round trip on Redis. */
  leaseCalls = 0;
  private readonly cluster: StateCluster;
  private readonly listeners = new Set<Listener>();

  constructor(cluster: StateCluster, writerId: string) {
    this.cluster = cluster;
    this.writerId = writerId;
    this.leaseMs = cluster.leaseMs;
    cluster.clients.add(this);
  }

  get health(): StoreHealth {
    return this.cluster.health;
  }

  async acquireLease(key: string): Promise<boolean> {
    this.leaseCalls++;
    return this.take(key);
  }

  /** One call for all, as Redis's script. */
  async acquireLeases(keys: readonly string[]): Promise<(boolean | undefined)[]> {
    this.leaseCalls++;
    return keys.map((key) => this.take(key));
  }

  async releaseLease(key: string): Promise<void> {
    if (this.cluster.leases.get(key)?.holder === this.writerId) this.cluster.leases.delete(key);
  }

  async publish(key: string, payload: SharedTriggerState, atMs: number): Promise<PublishResult> {
    this.up();
    const lease = this.cluster.leases.get(key);
    if (lease?.holder !== this.writerId || lease.untilMs <= this.cluster.now()) return { outcome: 'not-writer' };
    // The store's clock orders records, as Redis's TIME does in the publish script.
    const storedAtMs = this.cluster.now();
    const text = encodeRecord({
      format: STATE_FORMAT,
      scalerVersion: 'test',
      writerId: this.writerId,
      atMs,
      storedAtMs,
      payload,
    });
    this.cluster.records.set(key, text);
    this.cluster.expiries.set(key, this.cluster.now() + this.cluster.recordTtlMs);
    const record = this.cluster.decode(text);
    for (const c of this.cluster.clients) if (c !== this) for (const l of c.listeners) l(key, record);
    return { outcome: 'published', storedAtMs };
  }

  async read(key: string): Promise<StateRecord<SharedTriggerState> | undefined> {
    this.up();
    const { records, expiries, now } = this.cluster;
    if ((expiries.get(key) ?? Number.POSITIVE_INFINITY) <= now()) {
      records.delete(key);
      expiries.delete(key);
    }
    const text = records.get(key);
    return text === undefined ? undefined : this.cluster.decode(text);
  }

  subscribe(onRecord: Listener): () => void {
    this.listeners.add(onRecord);
    return () => this.listeners.delete(onRecord);
  }

  onHealthChange(listener: (health: StoreHealth) => void): () => void {
    this.healthListeners.add(listener);
    return () => this.healthListeners.delete(listener);
  }

  async close(): Promise<void> {
    for (const [key, lease] of this.cluster.leases) if (lease.holder === this.writerId) this.cluster.leases.delete(key);
    this.cluster.clients.delete(this);
  }

  private take(key: string): boolean {
    this.up();
    const { leases, now, leaseMs } = this.cluster;
    const lease = leases.get(key);
    if (lease !== undefined && lease.holder !== this.writerId && lease.untilMs > now()) return false;
    leases.set(key, { holder: this.writerId, untilMs: now() + leaseMs });
    return true;
  }

  private up(): void {
    if (this.cluster.health !== 'up') throw new Error('store down');
  }
}
