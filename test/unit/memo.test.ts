import { describe, expect, it } from 'vitest';
import type { TriggerRef } from '../../src/trigger/types.ts';
import { RefMemo } from '../../src/trigger/memo.ts';

const limits = (maxEntries: number, maxChars = 1e9, maxEntryChars = 1e9) => ({ maxEntries, maxChars, maxEntryChars });
const ref = (metadata: Record<string, string>, name = 'so', namespace = 'ns'): TriggerRef => ({ name, namespace, metadata });

describe('RefMemo', () => {
  it('finds an entry whatever order the metadata keys come in, and only for the same namespace and name', () => {
    const memo = new RefMemo<string>(limits(100));
    memo.set(ref({ a: '1', b: '2', c: '3' }), 'abc');
    expect(memo.get(ref({ c: '3', a: '1', b: '2' }))).toBe('abc');
    expect(memo.get(ref({ a: '1', b: '2', c: '3' }, 'other'))).toBeUndefined();
    expect(memo.get(ref({ a: '1', b: '2', c: '3' }, 'so', 'other'))).toBeUndefined();
  });

  it('misses on a changed value, an extra key or a missing key', () => {
    const memo = new RefMemo<string>(limits(100));
    memo.set(ref({ a: '1', b: '2' }), 'ab');
    expect(memo.get(ref({ a: '1', b: '3' }))).toBeUndefined();
    expect(memo.get(ref({ a: '1', b: '2', c: '' }))).toBeUndefined();
    expect(memo.get(ref({ a: '1' }))).toBeUndefined();
    expect(memo.get(ref({}))).toBeUndefined();
  });

  it('does not take a key of Object.prototype for a stored one', () => {
    const memo = new RefMemo<string>(limits(100));
    memo.set(ref({ a: '1' }), 'a');
    expect(memo.get(ref({ a: '1', constructor: 'x' }))).toBeUndefined();
    memo.set(ref({ toString: 'y' }), 'toString');
    expect(memo.get(ref({ toString: 'y' }))).toBe('toString');
    expect(memo.get(ref({ valueOf: 'y' }))).toBeUndefined();
  });

  it('keeps several metadata sets per ScaledObject (one per trigger), newest first, at most eight', () => {
    const memo = new RefMemo<number>(limits(100));
    for (let i = 0; i < 9; i++) memo.set(ref({ queue: `q${i}` }), i);
    expect(memo.size).toBe(8);
    expect(memo.get(ref({ queue: 'q0' }))).toBeUndefined();
    for (let i = 1; i < 9; i++) expect(memo.get(ref({ queue: `q${i}` }))).toBe(i);
  });

  it('starts over when full, so its memory stays bounded', () => {
    const memo = new RefMemo<number>(limits(3));
    for (let i = 0; i < 3; i++) memo.set(ref({ a: '1' }, `so${i}`), i);
    expect(memo.size).toBe(3);
    memo.set(ref({ a: '1' }, 'so3'), 3);
    expect(memo.size).toBe(1);
    expect(memo.get(ref({ a: '1' }, 'so0'))).toBeUndefined();
    expect(memo.get(ref({ a: '1' }, 'so3'))).toBe(3);
  });

  it('keeps its own copy of the metadata (a caller that changes its object later changes nothing)', () => {
    const memo = new RefMemo<string>(limits(100));
    const metadata = { a: '1' };
    memo.set(ref(metadata), 'a');
    metadata.a = '2';
    expect(memo.get(ref({ a: '1' }))).toBe('a');
    expect(memo.get(ref({ a: '2' }))).toBeUndefined();
  });

  // Found by the metadata fuzzer: 20,000 entries of 100 KB values, or of 1,000 keys, held gigabytes.
  it('keeps at most maxChars characters in all, starting over when the next entry would pass it', () => {
    // Each entry: name "s<i>" + namespace "ns" + 64 for its one key + key "a" + a 20-character value = 89.
    const memo = new RefMemo<number>(limits(100, 4 * 89));
    for (let i = 0; i < 4; i++) memo.set(ref({ a: String(i).padStart(20, '0') }, `s${i}`), i);
    expect([memo.size, memo.keptChars]).toEqual([4, 4 * 89]);
    memo.set(ref({ a: 'x'.repeat(20) }, 's4'), 4);
    expect([memo.size, memo.keptChars]).toEqual([1, 89]);
    expect(memo.get(ref({ a: 'x'.repeat(20) }, 's4'))).toBe(4);
    expect(memo.get(ref({ a: '0'.padStart(20, '0') }, 's0'))).toBeUndefined();
  });

  it('never keeps metadata longer than maxEntryChars, and counts out what it drops', () => {
    const memo = new RefMemo<number>(limits(100, 1e9, 1000));
    memo.set(ref({ a: 'x'.repeat(100 * 1024) }), 1);
    expect([memo.size, memo.keptChars]).toEqual([0, 0]);
    expect(memo.get(ref({ a: 'x'.repeat(100 * 1024) }))).toBeUndefined();
    for (let i = 0; i < 9; i++) memo.set(ref({ queue: `q${i}` }), i);
    expect([memo.size, memo.keptChars]).toEqual([8, 8 * (2 + 2 + 64 + 5 + 2)]);
  });

  it('counts each key, not only its characters: 1,000 keys of short values are not cheap', () => {
    const memo = new RefMemo<number>(limits(100, 1e9, 64 * 1024));
    const many = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, 'v']));
    memo.set(ref(many), 1);
    expect(memo.size).toBe(0);
  });
});
