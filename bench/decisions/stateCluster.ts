// A Redis-like state store for the simulator: one per run, shared by every simulated scaler process
// (each with its own client: its writer id, leases and subscription), on the simulated clock.
// Records are held as Redis holds them, JSON text, and read back through the codec and the payload's
// schema, so what a process reads is what a real store would give it.
import { decodeRecord, encodeRecord } from '../../src/state/codec.ts';
import { STATE_FORMAT, type SharedTriggerState, sharedStateSchema } from '../../src/state/payload.ts';
import type { PublishResult, StateRecord, StateStore } from '../../src/state/types.ts';

type Listener = (key: string, record: StateRecord<SharedTriggerState>) => void;

export class StateCluster {
  readonly leaseMs: number;
  readonly now: () => number;
  readonly leases = new Map<string, { holder: string; untilMs: number }>();
  readonly records = new Map<string, string>();
  readonly listeners = new Map<string, Set<Listener>>();

  constructor(now: () => number, leaseMs = 3000) {
    this.now = now;
    this.leaseMs = leaseMs;
  }

  /** A scaler process's connection to the store. */
  client(writerId: string): StateStore<SharedTriggerState> {
    return new ClusterClient(this, writerId);
  }

  /** A record the schema refuses fails the run: the simulator must not hide a state that does not read back. */
  decode(text: string): StateRecord<SharedTriggerState> {
    const decoded = decodeRecord(text, STATE_FORMAT, sharedStateSchema);
    if (!decoded.ok) throw new Error(`the state record does not read back: ${decoded.reason}, ${decoded.detail}`);
    return decoded.record;
  }
}

class ClusterClient implements StateStore<SharedTriggerState> {
  readonly kind = 'redis';
  readonly health = 'up';
  readonly writerId: string;
  readonly leaseMs: number;
  private readonly cluster: StateCluster;
  private readonly listeners = new Set<Listener>();

  constructor(cluster: StateCluster, writerId: string) {
    this.cluster = cluster;
    this.writerId = writerId;
    this.leaseMs = cluster.leaseMs;
    cluster.listeners.set(writerId, this.listeners);
  }

  async acquireLease(key: string): Promise<boolean> {
    const { leases, now, leaseMs } = this.cluster;
    const lease = leases.get(key);
    if (lease !== undefined && lease.holder !== this.writerId && lease.untilMs > now()) return false;
    leases.set(key, { holder: this.writerId, untilMs: now() + leaseMs });
    return true;
  }

  async releaseLease(key: string): Promise<void> {
    if (this.cluster.leases.get(key)?.holder === this.writerId) this.cluster.leases.delete(key);
  }

  async publish(key: string, payload: SharedTriggerState, atMs: number): Promise<PublishResult> {
    const lease = this.cluster.leases.get(key);
    if (lease?.holder !== this.writerId || lease.untilMs <= this.cluster.now()) return 'not-writer';
    const text = encodeRecord({ format: STATE_FORMAT, scalerVersion: 'bench', writerId: this.writerId, atMs, payload });
    this.cluster.records.set(key, text);
    const record = this.cluster.decode(text);
    for (const [id, others] of this.cluster.listeners) if (id !== this.writerId) for (const l of others) l(key, record);
    return 'published';
  }

  async read(key: string): Promise<StateRecord<SharedTriggerState> | undefined> {
    const text = this.cluster.records.get(key);
    return text === undefined ? undefined : this.cluster.decode(text);
  }

  subscribe(onRecord: Listener): () => void {
    this.listeners.add(onRecord);
    return () => this.listeners.delete(onRecord);
  }

  onHealthChange(): () => void {
    return () => undefined;
  }

  async close(): Promise<void> {
    for (const [key, lease] of this.cluster.leases) if (lease.holder === this.writerId) this.cluster.leases.delete(key);
    this.cluster.listeners.delete(this.writerId);
  }
}
