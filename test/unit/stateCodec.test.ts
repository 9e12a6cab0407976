import { Registry } from 'prom-client';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Rejections, decodeRecord, encodeRecord } from '../../src/state/codec.ts';
import type { PayloadSchema, StateRecord } from '../../src/state/types.ts';
import { StateStoreMetrics } from '../../src/telemetry/metrics.ts';

const payload = z.object({ idleGapsSeconds: z.array(z.number()), lastDesiredReplicas: z.number().int().optional() });
type Payload = z.infer<typeof payload>;
// A zod schema is a PayloadSchema as it is: the store needs no adapter.
const schema: PayloadSchema<Payload> = payload;

const record: StateRecord<Payload> = {
  format: 3,
  scalerVersion: '0.1.0',
  writerId: 'pod-a-1f2e3d',
  atMs: 1_760_000_000_000,
  payload: { idleGapsSeconds: [12.5, 40], lastDesiredReplicas: 4 },
};

function captured(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe('decodeRecord', () => {
  it('reads back what encodeRecord wrote', () => {
    expect(decodeRecord(encodeRecord(record), 3, schema)).toEqual({ ok: true, record });
  });

  it("reads the store's time, written first as the Redis store splices it in", () => {
    const stored = { ...record, storedAtMs: 1_760_000_000_450 };
    expect(encodeRecord(stored)).toMatch(/^\{"storedAtMs":1760000000450,"format":3,/);
    expect(decodeRecord(encodeRecord(stored), 3, schema)).toEqual({ ok: true, record: stored });
  });

  it.each([
    ['text that is not JSON', 'kis', 'unreadable'],
    ['a JSON array', '[1,2]', 'envelope'],
    ['a JSON number', '42', 'envelope'],
    ['null', 'null', 'envelope'],
    ['an object without a format', JSON.stringify({ payload: {} }), 'envelope'],
    ['a format that is not a number', JSON.stringify({ ...record, format: '3' }), 'envelope'],
    [
      'a record of another format (another scaler version)',
      JSON.stringify({ ...record, format: 4, scalerVersion: '0.2.0' }),
      'format',
    ],
    ['a record without a writer', JSON.stringify({ ...record, writerId: undefined }), 'envelope'],
    ['a time that is not finite', JSON.stringify({ ...record, atMs: 'soon' }), 'envelope'],
    ["a store's time that is no number", JSON.stringify({ ...record, storedAtMs: '1760000000450' }), 'envelope'],
    ["a store's time of null", JSON.stringify({ ...record, storedAtMs: null }), 'envelope'],
    ['a payload that fails the schema', JSON.stringify({ ...record, payload: { idleGapsSeconds: 'many' } }), 'payload'],
    // Found by review: the version of another format was turned into text by String(), which throws on this.
    [
      'another format whose version is no string',
      JSON.stringify({ ...record, format: 4, scalerVersion: { toString: 1 } }),
      'format',
    ],
    ['another format without a version', JSON.stringify({ ...record, format: 4, scalerVersion: undefined }), 'format'],
    [
      'a payload with a fraction where an integer goes',
      JSON.stringify({ ...record, payload: { idleGapsSeconds: [], lastDesiredReplicas: 1.5 } }),
      'payload',
    ],
  ])('rejects %s as %s, without throwing', (_name, text, reason) => {
    const decoded = decodeRecord(text, 3, schema);
    expect(decoded).toMatchObject({ ok: false, reason });
  });

  describe("a writer's clock against the reader's, both measured against the store's", () => {
    // The payload's times, as a payload's shift moves them: here its idle gaps stand for times.
    // undefined: a reader that has not read the store's clock yet (the store passes no ReaderClock).
    const reader = (offsetMs: number | undefined) =>
      offsetMs === undefined
        ? undefined
        : {
            offsetMs,
            writerId: 'pod-b-000000',
            shift: (p: Payload, ms: number): Payload => ({ ...p, idleGapsSeconds: p.idleGapsSeconds.map((t) => t + ms) }),
          };
    const writtenBehind = encodeRecord({ ...record, clockOffsetMs: 30_000 });

    it('writes the offset after atMs, where a replica tells its own records', () => {
      expect(writtenBehind).toContain(`"writerId":"${record.writerId}","atMs":${record.atMs},"clockOffsetMs":30000,"payload":`);
    });

    it.each([
      ['a writer 30 s behind, a reader on the store clock', 30_000, 0, 30_000],
      ['a writer 30 s behind, a reader 10 s behind', 30_000, 10_000, 20_000],
      ['a writer on the store clock, a reader 5 s ahead', 0, -5_000, 5_000],
      ['a writer 2 minutes ahead (refused before it said so)', -120_000, 0, -120_000],
      ['clocks within a second of each other: read as written', 30_000, 29_200, 0],
      ['a reader that has not read the store clock yet', 30_000, undefined, 0],
    ])('%s: times moved by the difference', (_name, writerOffsetMs, readerOffsetMs, movedMs) => {
      const text = encodeRecord({ ...record, atMs: record.atMs - writerOffsetMs, clockOffsetMs: writerOffsetMs });
      const decoded = decodeRecord(text, 3, schema, record.atMs + 10_000, reader(readerOffsetMs));
      expect(decoded).toEqual({
        ok: true,
        record: {
          ...record,
          atMs: record.atMs - writerOffsetMs + movedMs,
          payload: { ...record.payload, idleGapsSeconds: record.payload.idleGapsSeconds.map((t) => t + movedMs) },
        },
      });
    });

    it('reads records of writers that said nothing of their clock as written', () => {
      expect(decodeRecord(encodeRecord(record), 3, schema, record.atMs, reader(45_000))).toEqual({ ok: true, record });
    });

    it('reads its own records as written, whatever its offset now (they are on its clock)', () => {
      const own = encodeRecord({ ...record, writerId: 'pod-b-000000', clockOffsetMs: 30_000 });
      const decoded = decodeRecord(own, 3, schema, record.atMs, reader(0));
      expect(decoded.ok && decoded.record.atMs).toBe(record.atMs);
    });

    it("checks the clock on the reader's time: a writer a minute behind the store and ahead of it says so", () => {
      const ahead = encodeRecord({ ...record, atMs: record.atMs + 600_000, clockOffsetMs: -600_000 });
      expect(decodeRecord(ahead, 3, schema, record.atMs, reader(0)).ok).toBe(true);
      expect(decodeRecord(ahead, 3, schema, record.atMs, reader(undefined))).toMatchObject({ ok: false, reason: 'clock' });
    });

    it.each([
      ['no number', '"30000"'],
      ['null', 'null'],
    ])('rejects an offset that is %s as envelope', (_name, value) => {
      const text = writtenBehind.replace('"clockOffsetMs":30000', `"clockOffsetMs":${value}`);
      expect(decodeRecord(text, 3, schema, record.atMs, reader(0))).toMatchObject({ ok: false, reason: 'envelope' });
    });

    it('reads a record whose offset is past a day (garbage, no clock of a node) as written, as one without', () => {
      const text = writtenBehind.replace('"clockOffsetMs":30000', `"clockOffsetMs":${25 * 3600_000}`);
      expect(decodeRecord(text, 3, schema, record.atMs, reader(0))).toEqual({ ok: true, record });
    });

    it('moves times by whole milliseconds, whatever fractions the offsets carry', () => {
      const text = encodeRecord({ ...record, clockOffsetMs: 30_000.4 });
      const decoded = decodeRecord(text, 3, schema, record.atMs + 60_000, reader(-0.3));
      expect(decoded.ok && decoded.record.atMs).toBe(record.atMs + 30_000);
    });
  });

  it("rejects a record written more than a minute ahead of this replica's clock (it would outrank every record after it)", () => {
    const now = record.atMs;
    expect(decodeRecord(encodeRecord({ ...record, atMs: now + 30_000 }), 3, schema, now).ok).toBe(true);
    const ahead = decodeRecord(encodeRecord({ ...record, atMs: now + 600_000 }), 3, schema, now);
    expect(ahead).toMatchObject({ ok: false, reason: 'clock' });
    expect(ahead.ok === false && ahead.detail).toBe(`written 600 s ahead of this replica's clock by ${record.writerId}`);
    expect(decodeRecord(encodeRecord({ ...record, atMs: 1e300 }), 3, schema, now)).toMatchObject({ ok: false, reason: 'clock' });
  });

  it('names both formats and the writing version when it rejects another format', () => {
    const decoded = decodeRecord(JSON.stringify({ ...record, format: 4, scalerVersion: '0.2.0' }), 3, schema);
    expect(decoded.ok === false && decoded.detail).toBe('format 4 (this scaler reads 3), written by 0.2.0');
  });

  it('rejects the record when the schema itself throws', () => {
    const throwing: PayloadSchema<Payload> = {
      safeParse: () => {
        throw new Error('schema bug');
      },
    };
    expect(decodeRecord(encodeRecord(record), 3, throwing)).toEqual({ ok: false, reason: 'payload', detail: 'schema bug' });
  });
});

describe('Rejections', () => {
  it('counts every rejection and warns once per key and reason', async () => {
    const registry = new Registry();
    const metrics = new StateStoreMetrics(registry);
    const { logger, lines } = captured();
    const rejections = new Rejections(logger, metrics);
    for (let i = 0; i < 5; i++) rejections.reject('ns/so/abc', 'format', 'format 4');
    rejections.reject('ns/so/abc', 'payload', 'bad');
    rejections.reject('ns/other/def', 'format', 'format 4');
    expect(lines.map((l) => [l.key, l.reason])).toEqual([
      ['ns/so/abc', 'format'],
      ['ns/so/abc', 'payload'],
      ['ns/other/def', 'format'],
    ]);
    expect(lines[0]).toMatchObject({ level: 40, msg: 'state record ignored: written by a scaler with another state format' });
    const text = await registry.metrics();
    expect(text).toContain('keda_inference_scaler_state_records_rejected_total{reason="format"} 6');
    expect(text).toContain('keda_inference_scaler_state_records_rejected_total{reason="payload"} 1');
  });

  it('masks a password that a detail carries', () => {
    const { logger, lines } = captured();
    new Rejections(logger, new StateStoreMetrics(new Registry())).reject('k', 'payload', 'saw redis://:s3cret@host in it');
    expect(JSON.stringify(lines)).not.toContain('s3cret');
  });
});
