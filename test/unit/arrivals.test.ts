import { describe, expect, it } from 'vitest';
import {
  type RateMark,
  arrivalsWithin,
  countRises,
  fallen,
  markArrivals,
  markRates,
  queueHeadAgeSeconds,
  rateTrend,
  recentRateFloor,
  risen,
  steadyArrivalRate,
  watchRises,
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

describe('recentRateFloor: the rate the arrival counter vouches for over the last T / 2 to T', () => {
  /** Counter marks every 2 s over the last 16 s, the counter at each given by `total(t)`; now is 0. */
  const marksOf = (total: (t: number) => number) =>
    [-16, -14, -12, -10, -8, -6, -4, -2].map((t) => ({ atMs: t * 1000, total: total(t) }));
  // [what, arrivals counted up to t (t <= 0), shortest window s, floor]
  it.each<[string, (t: number) => number, number, number | undefined]>([
    // 8 s of 8 a second after a few a minute: 64 arrived in the 8 s window, (64 − 3·8) / 8 = 5.
    ['a step to 8 a second 8 s ago', (t) => (t < -8 ? 0 : 8 * (t + 8)), 7.5, 5],
    // 4 a second for 16 s: the longest window counts the most, (64 − 24) / 16 = 2.5.
    ['a steady 4 a second', (t) => 4 * (t + 16), 7.5, 2.5],
    // 20 arrivals 1 s ago: within every window of 8 s or more; (20 − 3·sqrt(20)) / 8 at best.
    ['a cluster of 20 in the last second, spread over the window', (t) => (t < -1 ? 0 : 20), 7.5, (20 - 3 * Math.sqrt(20)) / 8],
    ['no window that old', (t) => t, 20, undefined],
  ])('%s', (_what, total, shortest, floor) => {
    const result = recentRateFloor(marksOf(total), total(0), 0, shortest);
    if (floor === undefined) expect(result).toBeUndefined();
    else expect(result).toBeCloseTo(floor, 9);
  });

  it('counts nothing from a counter that went back (a window of none)', () => {
    expect(recentRateFloor([{ atMs: -10_000, total: 500 }], 20, 0, 5)).toBe(0);
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

describe('risen and watchRises: which rises of the 30 s rate last a cold start', () => {
  it.each([
    // steady 6: its noise sqrt(6 / 60) = 0.316, a rise past 6.95.
    [6, 6.9, false],
    [6, 7, true],
    [0.4, 0.64, false], // 0.4 + 3 sqrt(0.4 / 60) = 0.645
    [0.4, 0.65, true],
    [0, 0.001, true],
  ])('steady %d, 30 s rate %d: risen %s', (steady, fast, expected) => {
    expect(risen(fast, steady)).toBe(expected);
  });

  it.each([
    // steady 6: a fall past 6 − 3 · 0.316 = 5.05.
    [6, 5.1, false],
    [6, 5, true],
    [0.4, 0.16, false], // 0.4 − 3 sqrt(0.4 / 60) = 0.155
    [0.4, 0.15, true],
    [0, 0, false],
  ])('steady %d, 30 s rate %d: fallen %s', (steady, fast, expected) => {
    expect(fallen(fast, steady)).toBe(expected);
  });

  /** A rise at 0 s (6 to 7), then the 30 s rate `after` a cold start (40 s) later. */
  const once = (lasting: number | undefined, after: number) => {
    const watched = watchRises(lasting === undefined ? undefined : { lasting }, 7, 6, 40, 0);
    expect(watched.probe).toEqual({ atMs: 0, level: 6 + 3 * Math.sqrt(6 / 60) });
    // Not done before the cold start is over, and no second probe meanwhile.
    expect(watchRises(watched, 8, 6, 40, 39_000)).toBe(watched);
    return watchRises(watched, after, 6, 40, 40_000);
  };

  it.each([
    // [what, share before, the 30 s rate a cold start later, share after]
    ['a rise that lasted, first seen', undefined, 7.5, 1],
    ['a rise that was gone, first seen', undefined, 6.2, 0.7],
    ['a second rise gone: below half', 0.7, 6.2, 0.49],
    ['a rise that lasted after two gone', 0.49, 7.5, 0.643],
  ] as const)('%s: %d -> %d', (_what, before, after, share) => {
    const done = once(before, after);
    expect(done.lasting).toBeCloseTo(share, 9);
    // A rate still risen starts the next watch at once.
    expect(done.probe).toEqual(after > 6.95 ? { atMs: 40_000, level: 6 + 3 * Math.sqrt(6 / 60) } : undefined);
  });

  it('watches nothing while the rate has not risen, and keeps the same state', () => {
    const watch = { lasting: 0.7 };
    expect(watchRises(watch, 6.5, 6, 40, 0)).toBe(watch);
    expect(watchRises(undefined, undefined, 6, 40, 0)).toEqual({ probe: undefined, lasting: undefined });
  });
});

describe('queueHeadAgeSeconds: how long the oldest waiting message has waited at most', () => {
  // The arrival counter read 0 at 0 s, 200 at 15 s and 400 at 30 s; now, at 45 s, 600.
  const marks = [
    { atMs: 0, total: 0 },
    { atMs: 15_000, total: 200 },
    { atMs: 30_000, total: 400 },
  ];
  it.each([
    // waiting, age: the oldest is arrival 600 − waiting + 1, after the latest mark that counted no more
    // than 600 − waiting
    { waiting: 0, age: 15 },
    { waiting: 150, age: 15 }, // the 451st came after the mark of 30 s
    { waiting: 200, age: 15 }, // the 401st: the mark of 30 s counted the 400 before it
    { waiting: 201, age: 30 }, // the 400th: the mark of 30 s counted it, the one of 15 s did not
    { waiting: 600, age: 45 },
    { waiting: 601, age: undefined }, // older than any mark: about T or more
  ])('$waiting waiting: $age s', ({ waiting, age }) => {
    expect(queueHeadAgeSeconds(marks, 600, waiting, 45_000)).toBe(age);
  });
});
