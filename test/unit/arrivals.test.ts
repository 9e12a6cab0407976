import { describe, expect, it } from 'vitest';
import {
  type RateMark,
  arrivalsWithin,
  countRises,
  markArrivals,
  markRates,
  rateTrend,
  steadyArrivalRate,
} from '../../src/model/arrivals.ts';

describe('steadyArrivalRate', () => {
  it('averages over about 100 arrivals: slowly at low rates, within 30 s at high ones', () => {
    // From 0.4 to 0.8 per second, 30 s later: τ = 100 / 0.8 = 125 s.
    expect(steadyArrivalRate(0.4, 0.8, 30)).toBeCloseTo(0.4 + (1 - Math.exp(-30 / 125)) * 0.4, 9);
    // At 10 per second τ is its floor, 30 s.
    expect(steadyArrivalRate(10, 12, 30)).toBeCloseTo(10 + (1 - Math.exp(-1)) * 2, 9);
  });

  it('follows a rate that rises from nothing at the new rate’s pace', () => {
    // From 0.01 to 5 per second: τ = 100 / 5 = 30 s, not 100 / 0.01.
    expect(steadyArrivalRate(0.01, 5, 30)).toBeGreaterThan(3);
  });

  it('starts at the first rate, and keeps its value while the rate is unknown', () => {
    expect(steadyArrivalRate(undefined, 2, 1)).toBe(2);
    expect(steadyArrivalRate(2, undefined, 1)).toBe(2);
  });
});

describe('markArrivals and arrivalsWithin', () => {
  it('counts the arrivals within about the last T seconds', () => {
    let marks;
    for (let t = 0; t <= 100; t++) marks = markArrivals(marks, 10 * t, t * 1000, 15);
    // Marks are T/8 apart; the oldest at or before now − T.
    expect(marks![0]!.atMs).toBeLessThanOrEqual(85_000);
    const within = arrivalsWithin(marks!, 1000);
    expect(within).toBeGreaterThanOrEqual(150);
    expect(within).toBeLessThanOrEqual(150 + (10 * 15) / 8 + 10);
  });

  it('starts over when the counter goes back (a topic recreated)', () => {
    const marks = markArrivals(markArrivals(undefined, 500, 0, 15), 20, 1000, 15);
    expect(marks).toEqual([{ atMs: 1000, total: 20 }]);
    expect(arrivalsWithin(marks, 26)).toBe(6);
    expect(arrivalsWithin([], 10)).toBe(0);
  });
});

describe('countRises: the arrival count of a source without one', () => {
  it.each([
    // [what, backlogs read one after another, count]
    ['the first backlog counts as arrived', [12], 12],
    ['each rise adds, falls add nothing', [0, 5, 3, 10, 10, 0, 4], 5 + 7 + 4],
    ['a negative backlog reads as 0', [-3, 2], 2],
  ] as const)('%s', (_what, backlogs, total) => {
    let state: ReturnType<typeof countRises> | undefined;
    for (const b of backlogs) state = countRises(state, b);
    expect(state!.total).toBe(total);
    expect(state!.backlog).toBe(Math.max(0, backlogs.at(-1)!));
  });

  it('keeps the same state while the backlog holds (no new object per reading)', () => {
    const state = countRises(undefined, 7);
    expect(countRises(state, 7)).toBe(state);
  });
});

describe('markRates and rateTrend: what the 30 s rate lags behind a climbing rate', () => {
  /** The rate r(t) sampled every second for `seconds`: the trail at the end. */
  const trailOf = (seconds: number, r: (t: number) => number) => {
    let trail: readonly RateMark[] = [];
    for (let t = 0; t <= seconds; t++) trail = markRates(trail, r(t), t * 1000);
    return trail;
  };

  it('keeps a sample every 5 s over the last 40 s', () => {
    const trail = trailOf(120, () => 1);
    expect(trail.map((m) => m.atMs / 1000)).toEqual([80, 85, 90, 95, 100, 105, 110, 115, 120]);
    expect(markRates(trail, undefined, 120_000)).toBe(trail);
  });

  // sd = sqrt(rate / 60), the 30 s average's Poisson noise; the trend is 30 s of the slope less one sd, at most 3 sd.
  it.each<[string, (t: number) => number, number, number]>([
    ['a rate that holds', () => 6, 6, 0],
    ['a rate that falls', (t: number) => 6 - t / 100, 5.4, 0],
    ['a rise within its noise', (t: number) => 6 + t / 600, 6.1, 0],
    // slope 1/60 per s: 0.5 in 30 s, less sd 0.342: 0.158.
    ['a ramp of one request a second per minute', (t: number) => 6 + t / 60, 7, 0.5 - Math.sqrt(7 / 60)],
    // slope 0.5 per s: 15 in 30 s; at most 3 sd.
    ['a surge', (t: number) => 1 + t / 2, 31, 3 * Math.sqrt(31 / 60)],
  ])('%s: %d at 60 s, trend %d', (_what, r, rate, trend) => {
    const trail = trailOf(60, r);
    expect(r(60)).toBeCloseTo(rate, 9);
    expect(rateTrend(trail, rate, 60_000)).toBeCloseTo(trend, 6);
  });

  it('says nothing before a sample is 25 s old, nor without a rate', () => {
    const trail = trailOf(20, (t) => 1 + t);
    expect(rateTrend(trail, 21, 20_000)).toBe(0);
    expect(
      rateTrend(
        trailOf(60, (t) => 1 + t),
        undefined,
        60_000,
      ),
    ).toBe(0);
  });
});
