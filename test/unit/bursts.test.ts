import { describe, expect, it } from 'vitest';
import { type Burst, burstFloor, burstNeed, lateWith, prewarmSize, trackBursts } from '../../src/model/bursts.ts';

describe('burstNeed: n = A_T · S / (k · (T + S))', () => {
  it.each([
    // arrived within T, S, k, T, n
    { A: 400, S: 1.6, k: 4, T: 15, n: (400 * 1.6) / (4 * 16.6) }, // a code burst: about 10 replicas
    { A: 400, S: 1.6, k: 4, T: 60, n: (400 * 1.6) / (4 * 61.6) }, // the same with a minute to start it: about 3
    { A: 0, S: 1.6, k: 4, T: 15, n: 0 },
  ])('A $A, S $S, k $k, T $T: $n', ({ A, S, k, T, n }) => {
    expect(burstNeed(A, S, k, T)).toBeCloseTo(n, 9);
  });
});

describe('trackBursts', () => {
  it('follows an episode from its rise and closes it when the need falls below half its peak', () => {
    let state = { episode: undefined, bursts: [] as readonly Burst[] } as Parameters<typeof trackBursts>[0];
    const needs = [0, 1, 3, 6, 8, 5, 4, 3.9, 1, 0];
    needs.forEach((need, i) => {
      state = trackBursts(state, need, need * 10, i * 1000);
    });
    expect(state.episode).toBeUndefined();
    expect(state.bursts).toEqual([{ atMs: 2000, need: 8, size: 80 }]);
  });

  it('keeps the same state object when nothing changes (no copy per call)', () => {
    const state = { episode: undefined, bursts: [] };
    expect(trackBursts(state, 1, 10, 0)).toBe(state);
  });
});

describe('burstFloor: n minimizing n + cost · late(n) / span', () => {
  // Three bursts in 10 minutes, each needing 6 replicas and bringing 300 requests.
  const bursts: Burst[] = [0, 200, 400].map((s) => ({ atMs: s * 1000, need: 6, size: 300 }));
  it.each([
    // late-request cost, floor
    { X: 0, floor: 0 }, // late requests free: keep nothing warm
    { X: 1, floor: 0 }, // 900 late requests over 600 s at 1 GPU-s each: 1.5/s, less than one replica's 1/s per replica saved... 6 replicas save 1.5
    { X: 10, floor: 6 }, // 15 GPU-s/s of late requests: the whole burst's fleet pays
  ])('late cost $X: floor $floor', ({ X, floor }) => {
    expect(burstFloor(bursts, 600_000, X)).toBe(floor);
  });

  it('counts the requests left late by a fleet short of a burst', () => {
    expect(lateWith(bursts, 3)).toBe(3 * 300 * 0.5);
    expect(lateWith(bursts, 6)).toBe(0);
  });

  it('keeps nothing warm before the first burst', () => {
    expect(burstFloor([], 0, 10)).toBe(0);
  });
});

describe('prewarmSize: n minimizing n · C + cost · mean late(n) over the last bursts', () => {
  const batch = (need: number, size: number): Burst => ({ atMs: 0, need, size });
  it.each([
    // bursts, C, late cost, n
    { bursts: [], C: 40, X: 10, n: undefined }, // no burst seen: nothing to size from
    { bursts: [batch(6.4, 300)], C: 40, X: 10, n: 7 }, // 300 requests: each replica short leaves 47 late, worth 470 > 40
    { bursts: [batch(6.4, 300)], C: 40, X: 0, n: 0 }, // late requests free: a prewarm does not pay
    { bursts: [batch(6.4, 300)], C: 40, X: 0.1, n: 0 }, // 4.7 GPU-s saved per replica < 40
    { bursts: [batch(2, 20)], C: 40, X: 10, n: 2 }, // 10 late per replica short, 100 > 40
    // Only the last three bursts: an old large one does not size the next.
    { bursts: [batch(12, 600), batch(3, 150), batch(3, 150), batch(3, 150)], C: 40, X: 10, n: 3 },
    // Mixed sizes: the mean late requests of the three.
    { bursts: [batch(2, 100), batch(4, 200), batch(6, 300)], C: 40, X: 10, n: 6 },
  ])('$bursts.length bursts, C $C s, late cost $X: $n', ({ bursts, C, X, n }) => {
    expect(prewarmSize(bursts, C, X)).toBe(n);
  });
});
