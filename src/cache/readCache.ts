// One read per source identity per interval, however many triggers and calls ask: fresh values
// are served from memory, concurrent callers share the in-flight query, and every query has a
// deadline. Failures are remembered for the same interval, so a broker that is down is not
// hammered by every caller; they are never turned into a value.
import { SourceTimeout, SourceUnavailable, ScalerError, errorMessage } from '../errors.ts';
import type { Source, SourceReading } from '../sources/source.ts';

export interface Observation {
  readonly reading: SourceReading;
  /** When the query that produced the reading finished (clock ms). */
  readonly atMs: number;
  /** The order readings finished in, over every source of the cache: a clock stepped back does not reorder it. */
  readonly seq: number;
}

export interface ReadCacheOptions {
  /** How long a reading (or an error) is served before the source is asked again. */
  readonly ttlMs: number;
  /** Deadline of one source query. */
  readonly timeoutMs: number;
  readonly now?: () => number;
  /** Called after every real query (not cache hits), for metrics. */
  readonly onQuery?: (source: Source, durationMs: number, error: unknown) => void;
  /** Called with every fresh reading, in order, once per query: the hook for rate estimation. */
  readonly onReading?: (source: Source, observation: Observation) => void;
  /** Entries not asked for during this long are dropped. */
  readonly idleEvictMs?: number;
  /** When a query may start (the server's LoopAdmission); absent, at once. */
  readonly admission?: ReadAdmission;
}

/** Paces the start of source queries. */
export interface ReadAdmission {
  /** Undefined when a query may start now, else a promise of when it may; its deadline starts then. */
  admit(): Promise<void> | undefined;
  /** A query admitted earlier has settled. */
  done(): void;
}

type Settled = { ok: true; value: Observation } | { ok: false; error: unknown };

interface Entry {
  settled?: Settled;
  settledAtMs: number;
  inflight?: Promise<Observation>;
  lastAskedMs: number;
}

export class ReadCache {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private queries = 0;
  /** Readings settled so far: each one's seq. */
  private readings = 0;
  private lastSweepMs = 0;

  private readonly options: ReadCacheOptions;

  constructor(options: ReadCacheOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** Total real source queries made so far. */
  get queryCount(): number {
    return this.queries;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The reading of `source` when one at most maxAgeMs old is held, else undefined (then read):
   * the warm path, with no query and no promise. Counts as asked (idle eviction).
   */
  fresh(source: Source, maxAgeMs = this.options.ttlMs): Observation | undefined {
    const now = this.now();
    this.sweep(now);
    const entry = this.entries.get(source.identity);
    if (entry === undefined) return undefined;
    entry.lastAskedMs = now;
    const settled = entry.settled;
    return settled?.ok === true && youngerThan(entry, now, maxAgeMs) ? settled.value : undefined;
  }

  /** Latest reading of `source`, at most maxAgeMs old; rejects with the source's error. */
  read(source: Source, maxAgeMs = this.options.ttlMs): Promise<Observation> {
    const now = this.now();
    this.sweep(now);
    let entry = this.entries.get(source.identity);
    if (entry === undefined) {
      entry = { settledAtMs: -Infinity, lastAskedMs: now };
      this.entries.set(source.identity, entry);
    }
    entry.lastAskedMs = now;
    const settled = entry.settled;
    if (settled !== undefined && youngerThan(entry, now, maxAgeMs)) {
      return settled.ok ? Promise.resolve(settled.value) : Promise.reject(settled.error);
    }
    if (entry.inflight === undefined) {
      const inflight = this.query(source, entry);
      entry.inflight = inflight;
      // Cleared here too: a source that throws as it is called settles its query before the line
      // above sets it, and that flight would then stand for good, the source never read again.
      const landed = () => {
        if (entry.inflight === inflight) entry.inflight = undefined;
      };
      inflight.then(landed, landed);
    }
    return entry.inflight;
  }

  private async query(source: Source, entry: Entry): Promise<Observation> {
    const { admission } = this.options;
    const admitted = admission?.admit();
    if (admitted !== undefined) await admitted;
    try {
      return await this.queryNow(source, entry);
    } finally {
      admission?.done();
    }
  }

  private async queryNow(source: Source, entry: Entry): Promise<Observation> {
    this.queries++;
    // Timed on the monotonic clock: the wall clock (this.now, which dates the readings) may step
    // back mid-read, and a negative latency lowers the histogram's _sum (found by review).
    const started = performance.now();
    const controller = new AbortController();
    const timeoutMs = this.options.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new SourceTimeout(`${source.label}: no answer within ${timeoutMs} ms`);
        controller.abort(err);
        reject(err);
      }, timeoutMs);
    });
    let settled: Settled;
    try {
      const reading = await Promise.race([source.read(controller.signal), deadline]);
      settled = { ok: true, value: { reading, atMs: this.now(), seq: ++this.readings } };
    } catch (err) {
      settled = { ok: false, error: asScalerError(source, err) };
    } finally {
      clearTimeout(timer);
    }
    const finished = this.now();
    entry.settled = settled;
    entry.settledAtMs = finished;
    entry.inflight = undefined;
    this.options.onQuery?.(source, performance.now() - started, settled.ok ? undefined : settled.error);
    if (!settled.ok) throw settled.error;
    this.options.onReading?.(source, settled.value);
    return settled.value;
  }

  private sweep(now: number): void {
    const idle = this.options.idleEvictMs ?? 10 * 60_000;
    // A clock stepped back since the last sweep sweeps now, not once it has caught up.
    const since = now - this.lastSweepMs;
    if (since >= 0 && since < idle / 4) return;
    this.lastSweepMs = now;
    for (const [key, entry] of this.entries) {
      if (entry.inflight === undefined && now - entry.lastAskedMs > idle) this.entries.delete(key);
    }
  }
}

/** Errors that are not already typed become UNAVAILABLE, labelled with the source. */
function asScalerError(source: Source, err: unknown): ScalerError {
  if (err instanceof ScalerError) return err;
  return new SourceUnavailable(`${source.label}: ${errorMessage(err)}`);
}

/**
 * Whether the entry settled less than `maxAgeMs` ago. Settled "in the future" (the wall clock
 * stepped back: an NTP step, a VM restored) it is stale, not fresh until the clock catches up: a
 * reading an hour old would otherwise answer for an hour, an empty queue's for a busy one.
 */
function youngerThan(entry: Entry, now: number, maxAgeMs: number): boolean {
  const age = now - entry.settledAtMs;
  return age >= 0 && age < maxAgeMs;
}
