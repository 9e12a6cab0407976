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
    atMs: record.atMs,
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

export function decodeRecord<T>(text: string, format: number, schema: PayloadSchema<T>, nowMs = Date.now()): Decoded<T> {
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
  const { scalerVersion, writerId, atMs, storedAtMs } = envelope;
  if (
    typeof scalerVersion !== 'string' ||
    typeof writerId !== 'string' ||
    !finiteNumber(atMs) ||
    (storedAtMs !== undefined && !finiteNumber(storedAtMs))
  ) {
    return { ok: false, reason: 'envelope', detail: 'scalerVersion, writerId, atMs or storedAtMs missing or of the wrong type' };
  }
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
  const record = { format, scalerVersion, writerId, atMs, payload: parsed.data };
  return { ok: true, record: storedAtMs === undefined ? record : { ...record, storedAtMs } };
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
