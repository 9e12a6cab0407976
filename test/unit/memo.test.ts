import { describe, expect, it } from 'vitest';
import type { TriggerRef } from '../../src/trigger/types.ts';
import { RefMemo } from '../../src/trigger/memo.ts';

const ref = (metadata: Record<string, string>, name = 'so', namespace = 'ns'): TriggerRef => ({ name, namespace, metadata });

describe('RefMemo', () => {
  it('finds an entry whatever order the metadata keys come in, and only for the same namespace and name', () => {
    const memo = new RefMemo<string>(100);
    memo.set(ref({ a: '1', b: '2', c: '3' }), 'abc');
    expect(memo.get(ref({ c: '3', a: '1', b: '2' }))).toBe('abc');
    expect(memo.get(ref({ a: '1', b: '2', c: '3' }, 'other'))).toBeUndefined();
    expect(memo.get(ref({ a: '1', b: '2', c: '3' }, 'so', 'other'))).toBeUndefined();
  });

  it('misses on a changed value, an extra key or a missing key', () => {
    const memo = new RefMemo<string>(100);
    memo.set(ref({ a: '1', b: '2' }), 'ab');
    expect(memo.get(ref({ a: '1', b: '3' }))).toBeUndefined();
    expect(memo.get(ref({ a: '1', b: '2', c: '' }))).toBeUndefined();
    expect(memo.get(ref({ a: '1' }))).toBeUndefined();
    expect(memo.get(ref({}))).toBeUndefined();
  });

  it('does not take a key of Object.prototype for a stored one', () => {
    const memo = new RefMemo<string>(100);
    memo.set(ref({ a: '1' }), 'a');
    expect(memo.get(ref({ a: '1', constructor: 'x' }))).toBeUndefined();
    memo.set(ref({ toString: 'y' }), 'toString');
    expect(memo.get(ref({ toString: 'y' }))).toBe('toString');
    expect(memo.get(ref({ valueOf: 'y' }))).toBeUndefined();
  });

  it('keeps several metadata sets per ScaledObject (one per trigger), newest first, at most eight', () => {
    const memo = new RefMemo<number>(100);
    for (let i = 0; i < 9; i++) memo.set(ref({ queue: `q${i}` }), i);
    expect(memo.size).toBe(8);
    expect(memo.get(ref({ queue: 'q0' }))).toBeUndefined();
    for (let i = 1; i < 9; i++) expect(memo.get(ref({ queue: `q${i}` }))).toBe(i);
  });

  it('starts over when full, so its memory stays bounded', () => {
    const memo = new RefMemo<number>(3);
    for (let i = 0; i < 3; i++) memo.set(ref({ a: '1' }, `so${i}`), i);
    expect(memo.size).toBe(3);
    memo.set(ref({ a: '1' }, 'so3'), 3);
    expect(memo.size).toBe(1);
    expect(memo.get(ref({ a: '1' }, 'so0'))).toBeUndefined();
    expect(memo.get(ref({ a: '1' }, 'so3'))).toBe(3);
  });

  it('starts over when the characters it holds would pass its budget (200 KB refs under new names)', () => {
    const memo = new RefMemo<number>(100, 1000);
    const padded = (i: number) => ref({ padding: 'x'.repeat(393) }, `so${i}`); // 7 + 393 = 400 characters
    memo.set(padded(0), 0);
    memo.set(padded(1), 1);
    expect(memo.heldChars).toBe(800);
    memo.set(padded(2), 2);
    expect(memo.size).toBe(1);
    expect(memo.heldChars).toBe(400);
    expect(memo.get(padded(0))).toBeUndefined();
    expect(memo.get(padded(2))).toBe(2);
  });

  it('does not keep one entry larger than its whole budget, and drops nothing for it', () => {
    const memo = new RefMemo<number>(100, 1000);
    memo.set(ref({ a: '1' }), 1);
    memo.set(ref({ padding: 'x'.repeat(2000) }, 'big'), 2);
    expect(memo.get(ref({ padding: 'x'.repeat(2000) }, 'big'))).toBeUndefined();
    expect(memo.get(ref({ a: '1' }))).toBe(1);
    expect(memo.heldChars).toBe(2);
  });

  it('counts the characters of an entry that ages out of its ScaledObject list as freed', () => {
    const memo = new RefMemo<number>(100, 10_000);
    for (let i = 0; i < 9; i++) memo.set(ref({ queue: `q${i}` }), i);
    expect(memo.heldChars).toBe(8 * 'queueq0'.length);
  });

  it('keeps its own copy of the metadata (a caller that changes its object later changes nothing)', () => {
    const memo = new RefMemo<string>(100);
    const metadata = { a: '1' };
    memo.set(ref(metadata), 'a');
    metadata.a = '2';
    expect(memo.get(ref({ a: '1' }))).toBe('a');
    expect(memo.get(ref({ a: '2' }))).toBeUndefined();
  });
});
