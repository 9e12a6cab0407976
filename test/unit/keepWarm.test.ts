import { describe, expect, it } from 'vitest';
import { covers, keepWarmCost, keepWarmWindow, predictGap } from '../../src/model/keepWarm.ts';

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

describe('keepWarmCost with a cost per gap', () => {
  it('prices each gap not bridged by its own cold start', () => {
    // w = 50: the 10 s and 50 s gaps are bridged; the 400 s one costs 50 + its K, 1000.
    expect(keepWarmCost([10, 50, 400], 50, [60, 60, 1000])).toBe(10 + 50 + 50 + 1000);
  });
});

describe('keepWarmWindow', () => {
  it.each([
    // setting, gaps, K (one for all, or per gap), break-even, window, source
    { setting: 45, gaps: [10, 10, 10], K: 120, breakEven: 120, seconds: 45, source: 'fixed' }, // keepWarm: <seconds> overrides
    { setting: 'auto', gaps: [], K: 60, breakEven: 60, seconds: 60, source: 'break-even' }, // ski rental: rent until the rent paid K
    // From the first gap on, learned: one longer than K goes at once, one shorter is bridged and K past it.
    { setting: 'auto', gaps: [600], K: 300, breakEven: 300, seconds: 0, source: 'learned' },
    { setting: 'auto', gaps: [100], K: 300, breakEven: 300, seconds: 400, source: 'learned' },
    { setting: 'auto', gaps: [100, 200], K: 300, breakEven: 300, seconds: 500, source: 'learned' },
    // Every short gap is worth bridging: the longest, then the break-even past it (nothing is known beyond).
    { setting: 'auto', gaps: [20, 25, 30], K: 120, breakEven: 120, seconds: 150, source: 'learned' },
    { setting: 'auto', gaps: [900, 1300, 2000], K: 120, breakEven: 120, seconds: 0, source: 'learned' }, // long gaps: go at once
    // Gaps of 150 s: not worth bridging when a cold start costs 60, worth it when it costs 300.
    { setting: 'auto', gaps: [150, 150, 150, 900], K: 60, breakEven: 60, seconds: 0, source: 'learned' },
    { setting: 'auto', gaps: [150, 150, 150, 900], K: 300, breakEven: 300, seconds: 150, source: 'learned' },
    // A cost per gap: the 150 s gaps whose wakes left many requests late are worth bridging, the 900 s one is not.
    { setting: 'auto', gaps: [150, 150, 150, 900], K: [1060, 1060, 1060, 70], breakEven: 800, seconds: 150, source: 'learned' },
  ] as const)('$setting, gaps $gaps, K $K: $seconds s ($source)', ({ setting, gaps, K, breakEven, seconds, source }) => {
    expect(keepWarmWindow(setting, gaps, K, breakEven)).toEqual({ seconds, source });
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

describe('covers: a gap the prewarm would have caught', () => {
  // Expected after 590 s, given up 660 s after the idle period began; objective 15 s.
  const next = { expectedGapSeconds: 590, giveUpAfterSeconds: 660 };
  it.each([
    // gap, caught
    { gap: 590, caught: true },
    { gap: 575, caught: true }, // up to T early: the first requests wait for the prewarmed replicas, within T
    { gap: 574, caught: false }, // earlier: they wait longer than T
    { gap: 660, caught: true },
    { gap: 661, caught: false }, // the prewarmed replicas are gone
    { gap: 100, caught: false },
  ])('gap $gap s: $caught', ({ gap, caught }) => {
    expect(covers(next, gap, 15)).toBe(caught);
  });
});
