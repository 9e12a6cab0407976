// The embedded store: one process, nothing shared, nothing to run. It is always the writer of every
// key, and keeps each key's latest record by reference (no copy, no encoding) until it expires.
import type { StateStoreMetrics } from '../telemetry/metrics.ts';
import type { PublishResult, StateRecord, StateStore, StoreHealth } from './types.ts';

export interface MemoryStateStoreOptions {
  readonly writerId: string;
  readonly scalerVersion: string;
  /** The payload format written into records. */
  readonly format: number;
  readonly leaseMs: number;
  /** A record not published again for this long is gone. */
  readonly recordTtlMs: number;
  readonly metrics: StateStoreMetrics;
  readonly now?: () => number;
}

interface Entry<T> {
  readonly record: StateRecord<T>;
  readonly expiresAtMs: number;
}

export class MemoryStateStore<T> implements StateStore<T> {
  readonly kind = 'memory';
  readonly health: StoreHealth = 'up';
  readonly writerId: string;
  readonly leaseMs: number;
  private readonly options: MemoryStateStoreOptions;
  private readonly now: () => number;
  private readonly records = new Map<string, Entry<T>>();
  private lastSweepMs = 0;

  constructor(options: MemoryStateStoreOptions) {
    this.options = options;
    this.writerId = options.writerId;
    this.leaseMs = options.leaseMs;
    this.now = options.now ?? Date.now;
    options.metrics.up.set(1);
    // Every key with a record is this process's to write.
    options.metrics.observeLeases(() => this.records.size);
  }

  /** Always true: no other process could hold it. */
  async acquireLease(): Promise<boolean> {
    return true;
  }

  async acquireLeases(keys: readonly string[]): Promise<boolean[]> {
    return keys.map(() => true);
  }

  /** Nothing to give up: there is no other process to take over. */
  async releaseLease(): Promise<void> {}

  async publish(key: string, payload: T, atMs: number): Promise<PublishResult> {
    const nowMs = this.now();
    this.sweep(nowMs);
    const { writerId } = this;
    const { format, scalerVersion, recordTtlMs } = this.options;
    const record = { format, scalerVersion, writerId, atMs, storedAtMs: nowMs, payload };
    this.records.set(key, { record, expiresAtMs: nowMs + recordTtlMs });
    return { outcome: 'published', storedAtMs: nowMs };
  }

  async read(key: string): Promise<StateRecord<T> | undefined> {
    const entry = this.records.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= this.now()) {
      this.records.delete(key);
      return undefined;
    }
    return entry.record;
  }

  /** No other replica publishes: onRecord is never called. */
  subscribe(): () => void {
    return () => {};
  }

  /** Health never changes: listener is never called. */
  onHealthChange(): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    this.records.clear();
  }

  /** Drops expired records now and then, so keys no one asks about do not pile up. */
  private sweep(nowMs: number): void {
    if (nowMs - this.lastSweepMs < this.options.recordTtlMs / 10) return;
    this.lastSweepMs = nowMs;
    for (const [key, entry] of this.records) {
      if (entry.expiresAtMs <= nowMs) this.records.delete(key);
    }
  }
}
