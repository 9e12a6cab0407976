import { describe, expect, it } from 'vitest';
import { Throttle } from '../../src/telemetry/throttle.ts';

describe('Throttle: once per interval per kind', () => {
  it('lets a kind through once per interval, each kind on its own clock', () => {
    let nowMs = 0;
    const throttle = new Throttle(60_000, () => nowMs);
    expect(throttle.allows('a')).toBe(true);
    expect(throttle.allows('a')).toBe(false);
    expect(throttle.allows('b')).toBe(true);
    nowMs = 59_999;
    expect(throttle.allows('a')).toBe(false);
    nowMs = 60_000;
    expect(throttle.allows('a')).toBe(true);
    expect(throttle.allows('b')).toBe(true);
  });

  it('remembers at most 64 kinds: past them it starts over', () => {
    const throttle = new Throttle(60_000, () => 0);
    for (let i = 0; i < 64; i++) expect(throttle.allows(`k${i}`)).toBe(true);
    expect(throttle.allows('k0')).toBe(false);
    expect(throttle.allows('k64')).toBe(true); // the 65th: the others forgotten
    expect(throttle.allows('k0')).toBe(true);
  });
});
