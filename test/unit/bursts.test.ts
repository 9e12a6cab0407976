import { describe, expect, it } from 'vitest';
import {
  type Burst,
  type LatePricing,
  burstFloor,
  burstNeed,
  burstRate,
  lateWith,
  prewarmSize,
  trackBursts,
} from '../../src/model/bursts.ts';

/** Every request past the warm replicas late (a cold start past T + any arrival's offset). */
const ALL_LATE: LatePricing = { objectiveSeconds: 15, share: () => 1 };

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
    expect(state.bursts).toEqual([{ atMs: 2000, need: 8, size: 80, riseSeconds: 2 }]);
  });

  it('records the rise to the peak, never negative when the episode began on a clock ahead', () => {
    const begun = trackBursts({ episode: undefined, bursts: [] }, 3, 30, 5000);
    expect(trackBursts(begun, 5, 50, 9000).episode?.riseSeconds).toBe(4);
    expect(trackBursts(begun, 5, 50, 3000).episode?.riseSeconds).toBe(0);
  });

  it('keeps the same state object when nothing changes (no copy per call)', () => {
    const state = { episode: undefined, bursts: [] };
    expect(trackBursts(state, 1, 10, 0)).toBe(state);
  });
});

describe('burstFloor: n minimizing n + cost · (bursts a second expected) · mean late(n)', () => {
  // Three bursts, each needing 6 replicas and bringing 300 requests, expected at 0.0081 a second
  // (burstRate's, 200 s after the last of three 200 s apart, over the next 90 s): a fleet of n
  // leaves 300 (1 - n/6) of a burst late.
  const bursts: Burst[] = [0, 200, 400].map((s) => ({ atMs: s * 1000, need: 6, size: 300 }));
  it.each([
    // late-request cost, floor
    { X: 0, floor: 0 }, // late requests free: keep nothing warm
    { X: 1, floor: 0 }, // 2.4 GPU-s a second of late requests at most, against 6 for the whole fleet
    { X: 10, floor: 6 }, // 24 GPU-s a second of late requests: the whole burst's fleet pays
  ])('late cost $X: floor $floor', ({ X, floor }) => {
    expect(burstFloor(bursts, X, 0.0081, 100, ALL_LATE)).toBe(floor);
  });

  it('keeps the fleet while the next burst of a cluster is due, not through the long gap after it', () => {
    // Clusters of three bursts 30 s apart, every 10 minutes (the Azure code trace's bursts come so):
    // burstRate's 0.0081 a second 5 s after a burst, 0.0033 a second 100 s after (below).
    const clustered = [0, 30, 60, 600, 630, 660, 1200, 1230, 1260].map((s) => ({ atMs: s * 1000, need: 6, size: 300 }));
    expect(burstFloor(clustered, 3, 0.0081, 100, ALL_LATE)).toBe(6);
    expect(burstFloor(clustered, 3, 0.0033, 100, ALL_LATE)).toBe(0);
  });

  it('counts the requests left late by a fleet short of a burst', () => {
    expect(lateWith(bursts, 3, ALL_LATE)).toBe(3 * 300 * 0.5);
    expect(lateWith(bursts, 6, ALL_LATE)).toBe(0);
  });

  it('looks no further than maxReplicas: a burst of 10^8 replicas (a counter that jumped) is priced up to the cap', () => {
    const huge: Burst[] = [{ atMs: 0, need: 1e8, size: 4e8 }];
    expect(burstFloor(huge, 10, 0.05, 50, ALL_LATE)).toBe(50);
    expect(prewarmSize(huge, 20, 10, 50, ALL_LATE)).toBe(50);
    // The cap, not the need, bounds the search: the old loop went to 10^8 (1.3 s) on every decision.
    expect(burstFloor(bursts, 10, 0.0081, 4, ALL_LATE)).toBe(4);
  });

  it('keeps nothing warm when none of a burst would be late, however large', () => {
    const onTime: LatePricing = { objectiveSeconds: 15, share: () => 0 };
    expect(burstFloor([{ atMs: 0, need: 1e8, size: 4e8 }], 10, 0.05, 100_000, onTime)).toBe(0);
  });

  it('keeps nothing warm before the first burst', () => {
    expect(burstFloor([], 10, 0.01, 100, ALL_LATE)).toBe(0);
  });
});

describe('lateWith: the requests past the warm replicas, each late by the share for when it arrived', () => {
  // One burst of 300 requests needing 6 replicas, that rose for `rise` seconds; T = 15. The share
  // here is what arrived in the first 5 s (late), the rest on time.
  const firstFive: LatePricing = { objectiveSeconds: 15, share: (offset) => (offset < 5 ? 1 : 0) };
  const burst = (rise?: number): Burst => ({ atMs: 0, need: 6, size: 300, ...(rise !== undefined && { riseSeconds: rise }) });
  it.each([
    // The excess arrived evenly over the last (1 − n/6) of the rise; averaged at 4 midpoints.
    { why: 'all at once (a history without the rise): all of the excess', rise: undefined, n: 0, late: 300 },
    { why: 'all at once: the excess past 3 warm', rise: 0, n: 3, late: 150 },
    // Rise 12 s: offsets 1.5, 4.5, 7.5, 10.5: two of four points in the first 5 s.
    { why: 'over 12 s, none warm: half', rise: 12, n: 0, late: 300 * 0.5 },
    // A rise past T is taken as T (15 s): offsets 1.875, 5.625, ...: one of four.
    { why: 'over a minute: taken as T', rise: 60, n: 0, late: 300 * 0.25 },
    // 3 warm start the first half (arrived in 0-7.5 s); the excess arrived 7.5-15 s: none in the first 5 s.
    { why: 'over 15 s, 3 warm: the excess arrived after the first 5 s', rise: 15, n: 3, late: 0 },
  ])('$why', ({ rise, n, late }) => {
    expect(lateWith([burst(rise)], n, firstFive)).toBeCloseTo(late, 9);
  });

  it('keeps fewer warm for a burst that rises slowly, whose tail the replicas it asks for serve in time', () => {
    const spread: LatePricing = { objectiveSeconds: 30, share: (offset) => Math.min(1, Math.max(0, (10 - offset) / 10)) };
    const sudden = [0, 200, 400].map((s) => ({ atMs: s * 1000, need: 6, size: 300, riseSeconds: 0 }));
    const slow = sudden.map((b) => ({ ...b, riseSeconds: 30 }));
    expect(burstFloor(sudden, 10, 0.0081, 100, spread)).toBe(6);
    expect(burstFloor(slow, 10, 0.0081, 100, spread)).toBeLessThan(6);
  });
});

describe('burstRate: the bursts a second to expect over the next window, from the gaps between them', () => {
  const at = (...starts: number[]): Burst[] => starts.map((s) => ({ atMs: s * 1000, need: 6, size: 300 }));
  const clustered = at(0, 30, 60, 600, 630, 660, 1200, 1230, 1260); // gaps 30, 30, 540, 30, 30, 540, 30, 30
  it.each([
    // A gap to learn from is none: the bursts' average rate, over at least 300 s.
    { why: 'one burst: the average', bursts: at(0), nowMs: 100_000, rate: 1 / 300 },
    // 5 s after a burst of a cluster: 6 of the 8 gaps end within the next 90 s, shrunk by 2 gaps' worth of the average (9 / 1265 s).
    { why: 'just after a burst of a cluster', bursts: clustered, nowMs: 1_265_000, rate: (6 + 2 * (9 / 1265) * 90) / (90 * 10) },
    // 100 s after: only the two 540 s gaps are that long, and neither ends within the next 90 s.
    { why: 'past the cluster', bursts: clustered, nowMs: 1_360_000, rate: (2 * (9 / 1360) * 90) / (90 * 4) },
    // Longer than any gap seen: nothing is known, the average.
    { why: 'past every gap seen', bursts: clustered, nowMs: 1_900_000, rate: 9 / 1900 },
  ])('$why', ({ bursts, nowMs, rate }) => {
    expect(burstRate(bursts, nowMs, 90)).toBeCloseTo(rate, 12);
  });

  it('is 0 over a window of 0 s (a cold start of 0), not 0/0', () => {
    expect(burstRate(clustered, 1_265_000, 0)).toBe(0);
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
    expect(prewarmSize(bursts, C, X, 100, ALL_LATE)).toBe(n);
  });
});
