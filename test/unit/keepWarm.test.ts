import { describe, expect, it } from 'vitest';
import { coldStartCost, keepWarmCost, keepWarmWindow, predictGap } from '../../src/model/keepWarm.ts';

describe('coldStartCost: K = C + C·max(1, C/T)', () => {
  it.each([
    // C, T, K
    { C: 60, T: 60, K: 120 }, // within the objective: loading C + waiting C = 2C
    { C: 60, T: 120, K: 120 }, // a lax objective never makes the wait cheaper than once
    { C: 30, T: 60, K: 60 },
    { C: 60, T: 30, K: 180 }, // 2C + (C/T)·(C − T) = 120 + 2·30
    { C: 60, T: 15, K: 300 }, // 120 + 4·45
    { C: 40, T: 10, K: 200 }, // 80 + 4·30
    { C: 0, T: 15, K: 0 }, // no cold start, nothing to save
  ])('C $C s, objective $T s: K = $K s', ({ C, T, K }) => {
    expect(coldStartCost(C, T)).toBeCloseTo(K, 9);
  });
});

describe('keepWarmCost: Σ (gap <= w ? gap : w + K)', () => {
  const gaps = [10, 50, 400];
  it.each([
    // w, K, cost
    { w: 0, K: 120, cost: 3 * 120 },
    { w: 10, K: 120, cost: 10 + (10 + 120) * 2 },
    { w: 50, K: 120, cost: 10 + 50 + (50 + 120) },
    { w: 400, K: 120, cost: 10 + 50 + 400 },
    { w: 50, K: 300, cost: 10 + 50 + (50 + 300) },
  ])('gaps 10, 50, 400 s; w $w s, K $K s: $cost', ({ w, K, cost }) => {
    expect(keepWarmCost(gaps, w, K)).toBe(cost);
  });
});

describe('keepWarmWindow', () => {
  it.each([
    // setting, gaps, K, window, source
    { setting: 45, gaps: [10, 10, 10], K: 120, seconds: 45, source: 'fixed' }, // keepWarm: <seconds> overrides
    { setting: 'auto', gaps: [], K: 120, seconds: 120, source: 'break-even' }, // ski rental: rent until the rent paid K
    { setting: 'auto', gaps: [100, 200], K: 300, seconds: 300, source: 'break-even' },
    { setting: 'auto', gaps: [20, 25, 30], K: 120, seconds: 30, source: 'learned' }, // bridge every short gap
    { setting: 'auto', gaps: [900, 1300, 2000], K: 120, seconds: 0, source: 'learned' }, // long gaps: go at once
    // Gaps of 150 s: not worth bridging when a cold start costs 120, worth it when it costs 300.
    { setting: 'auto', gaps: [150, 150, 150, 900], K: 120, seconds: 0, source: 'learned' },
    { setting: 'auto', gaps: [150, 150, 150, 900], K: 300, seconds: 150, source: 'learned' },
  ] as const)('$setting, gaps $gaps, K $K s: $seconds s ($source)', ({ setting, gaps, K, seconds, source }) => {
    expect(keepWarmWindow(setting, gaps, K)).toEqual({ seconds, source });
  });
});

describe('predictGap (prewarm)', () => {
  it.each([
    // gaps, C, expected gap, give up after
    { gaps: [590], C: 60, next: undefined }, // one gap predicts nothing
    { gaps: [590, 600], C: 60, next: { expectedGapSeconds: 590, giveUpAfterSeconds: 660 } }, // two within 15 %
    { gaps: [100, 590, 600], C: 60, next: { expectedGapSeconds: 590, giveUpAfterSeconds: 660 } }, // only the last two count
    { gaps: [400, 600], C: 60, next: undefined }, // irregular
    { gaps: [600, 400], C: 60, next: undefined },
  ])('gaps $gaps, C $C s: $next', ({ gaps, C, next }) => {
    expect(predictGap(gaps, C)).toEqual(next);
  });
});
