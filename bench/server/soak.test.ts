import { describe, expect, it } from 'vitest';
import { trend } from './soak.ts';

describe('soak trend', () => {
  const hours = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
  it.each([
    // Noise around a level: flat.
    { name: 'noise', ys: [100, 103, 98, 101, 99, 102, 97, 100, 101, 99], flat: true },
    // 40 MB an hour of steady growth over 1 % noise: a leak.
    { name: 'leak', ys: hours.map((h, i) => 100 + 40 * h + (i % 2 ? 1 : -1)), flat: false },
    // A clear but tiny slope: under 5 % of the mean over the soak, flat.
    { name: 'tiny', ys: hours.map((h) => 1000 + 10 * h), flat: true },
  ])('$name: flat $flat', ({ ys, flat }) => {
    expect(trend(hours, ys).flat).toBe(flat);
  });

  it('recovers the slope and a standard error of 0 for a straight line', () => {
    const t = trend(
      hours,
      hours.map((h) => 50 + 12 * h),
    );
    expect(t.perHour).toBeCloseTo(12, 9);
    expect(t.standardError).toBeCloseTo(0, 9);
    expect(t.mean).toBeCloseTo(50 + 12 * 0.55, 9);
  });

  it('says nothing from fewer than 3 windows', () => {
    expect(trend([0.1, 0.2], [1, 2]).flat).toBe(false);
  });
});
