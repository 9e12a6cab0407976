// Records as the store holds them (one JSON text each), and the checks that keep a record written by
// another version of the scaler, or anything else found under our keys, from reaching the model.
import { clip, redact } from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { StateStoreMetrics } from '../telemetry/metrics.ts';
import type { PayloadSchema, RejectReason, StateRecord } from './types.ts';

/** A record read back: the record, or why it cannot be used. Never thrown. */
export type Decoded<T> = { ok: true; record: StateRecord<T> } | { ok: false; reason: RejectReason; detail: string };

/** The record as JSON text; storedAtMs, when the caller is the store, first (the Redis store splices it in there). */
export function encodeRecord(record: StateRecord<unknown>): string {
  return JSON.stringify({
    ...(record.storedAtMs !== undefined && { storedAtMs: record.storedAtMs }),
    format: record.format,
    scalerVersion: record.scalerVersion,
    writerId: record.writerId,
    // After atMs: a replica tells its own records by `"writerId":…,"atMs":` (redis.ts).
    atMs: record.atMs,
    ...(record.clockOffsetMs !== undefined && { clockOffsetMs: Math.round(record.clockOffsetMs) }),
    payload: record.payload,
  });
}

/**
 * How far ahead of this replica's clock a record's time may be. The record's time is its
 * history's: one far ahead (a node's clock wrong, or a garbage time) would be taken for newer than
 * any state of a replica's own, and the model would count the gap as time still to come.
 */
export const MAX_CLOCK_AHEAD_MS = 60_000;

/**
 * How far ahead of this replica's clock a record's place in the order (storedAtMs, the store's
 * clock) may be: far enough for a store whose clock is off, not for a garbage time that would
 * outrank every record to come.
 */
export const MAX_STORED_AHEAD_MS = 24 * 60 * 60_000;

/**
 * Writers' clocks that differ from the reader's by less than this are read as they are: within
 * one reading (CACHE_TTL_MS), and a measurement's own error stays far below it.
 */
const CLOCK_SHIFT_MIN_MS = 1000;

/** The reader's clock against the store's, and how its payloads' times move to it. */
export interface ReaderClock<T> {
  /** The store's clock less this replica's. */
  readonly offsetMs: number;
  /** This replica's writerId: its own records are on its clock already. */
  readonly writerId: string;
  /** The payload with every time in it `ms` later. */
  readonly shift: (payload: T, ms: number) => T;
}

/**
 * How far the record's times are moved to the reader's clock: the writer's offset from the
 * store's clock less the reader's (a writer 30 s behind: +30 s); 0 where either is unknown, the
 * writer is the reader, or they differ by less than CLOCK_SHIFT_MIN_MS.
 */
function clockShiftMs<T>(writerId: string, writerOffsetMs: number | undefined, reader: ReaderClock<T> | undefined): number {
  if (reader === undefined || writerOffsetMs === undefined || writerId === reader.writerId) return 0;
  // A day or more off is no clock of a node but garbage: read as written, as without an offset.
  if (Math.abs(writerOffsetMs) > MAX_STORED_AHEAD_MS) return 0;
  const shift = Math.round(writerOffsetMs - reader.offsetMs);
  return Math.abs(shift) < CLOCK_SHIFT_MIN_MS ? 0 : shift;
}

export function decodeRecord<T>(
  text: string,
  format: number,
  schema: PayloadSchema<T>,
  nowMs = Date.now(),
  reader?: ReaderClock<T>,
): Decoded<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: 'unreadable', detail: `not JSON (${(err as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'envelope', detail: 'not an object' };
  const envelope = value as Record<string, unknown>;
  if (typeof envelope.format !== 'number') return { ok: false, reason: 'envelope', detail: 'no format number' };
  // Before the other fields: a later format may have changed them all.
  if (envelope.format !== format) {
    return {
      ok: false,
      reason: 'format',
      // Any JSON may stand there: String() of {"toString": 1} throws.
      detail: `format ${envelope.format} (this scaler reads ${format}), written by ${typeof envelope.scalerVersion === 'string' ? clip(envelope.scalerVersion, 64) : 'an unknown version'}`,
    };
  }
  const { scalerVersion, writerId, atMs: writtenAtMs, storedAtMs, clockOffsetMs } = envelope;
  if (
    typeof scalerVersion !== 'string' ||
    typeof writerId !== 'string' ||
    !finiteNumber(writtenAtMs) ||
    (storedAtMs !== undefined && !finiteNumber(storedAtMs)) ||
    (clockOffsetMs !== undefined && !finiteNumber(clockOffsetMs))
  ) {
    return {
      ok: false,
      reason: 'envelope',
      detail: 'scalerVersion, writerId, atMs, storedAtMs or clockOffsetMs missing or of the wrong type',
    };
  }
  const shiftMs = clockShiftMs(writerId, clockOffsetMs, reader);
  // On this replica's clock: a writer whose clock is off, and says by how much, is read as it meant.
  const atMs = writtenAtMs + shiftMs;
  if (atMs > nowMs + MAX_CLOCK_AHEAD_MS) {
    return {
      ok: false,
      reason: 'clock',
      detail: `written ${Math.round((atMs - nowMs) / 1000)} s ahead of this replica's clock by ${writerId}`,
    };
  }
  if (storedAtMs !== undefined && storedAtMs > nowMs + MAX_STORED_AHEAD_MS) {
    return {
      ok: false,
      reason: 'clock',
      detail: `stored ${Math.round((storedAtMs - nowMs) / 1000)} s ahead of this replica's clock`,
    };
  }
  let parsed: ReturnType<PayloadSchema<T>['safeParse']>;
  try {
    parsed = schema.safeParse(envelope.payload);
  } catch (err) {
    parsed = { success: false, error: { message: err instanceof Error ? err.message : String(err) } };
  }
  if (!parsed.success) return { ok: false, reason: 'payload', detail: parsed.error.message };
  const payload = shiftMs === 0 || reader === undefined ? parsed.data : reader.shift(parsed.data, shiftMs);
  // On the reader's clock throughout: the writer's offset is not passed on.
  return {
    ok: true,
    record: {
      format,
      scalerVersion,
      writerId,
      atMs,
      ...(storedAtMs !== undefined && { storedAtMs }),
      payload,
    },
  };
}

function finiteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Keys remembered as warned before the memory is cleared: the warnings stay bounded, however many keys go bad. */
const WARNED_KEYS = 10_000;

/**
 * Counts every rejected record and warns once per key and reason: a bad record is read again at
 * every refresh, and one line per read would flood the log.
 */
export class Rejections {
  private readonly warned = new Set<string>();
  private readonly logger: Logger;
  private readonly metrics: StateStoreMetrics;

  constructor(logger: Logger, metrics: StateStoreMetrics) {
    this.logger = logger;
    this.metrics = metrics;
  }

  reject(key: string, reason: RejectReason, detail: string): void {
    this.metrics.recordsRejected.inc({ reason });
    const id = `${reason}\n${key}`;
    if (this.warned.has(id)) return;
    if (this.warned.size >= WARNED_KEYS) this.warned.clear();
    this.warned.add(id);
    this.logger.warn({ key, reason, detail: clip(redact(detail), 300) }, MESSAGES[reason]);
  }
}

const MESSAGES: Record<RejectReason, string> = {
  unreadable: 'state record ignored: not a record this scaler wrote',
  envelope: 'state record ignored: not a record this scaler wrote',
  format: 'state record ignored: written by a scaler with another state format',
  payload: 'state record ignored: its payload fails validation',
  'too-large': 'state record not published: over the bound per record',
  oversized: 'state record ignored: larger than any record this scaler writes',
  lease: 'state lease key holds what no scaler writes',
  clock: "state record ignored: written ahead of this replica's clock (are the nodes' clocks synchronized?)",
};
