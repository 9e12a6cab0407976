import { describe, expect, it } from 'vitest';
import { RATE_FLOOR_PER_SECOND, RATE_TIME_CONSTANT_SECONDS, type RateState, updateRates } from '../../src/model/rates.ts';

describe('updateRates', () => {
  it('lets a rate that decays reach 0, so the figures of a queue gone idle stop changing', () => {
    let state: RateState = updateRates(undefined, { backlog: 0, arrivalRatePerSecond: 50 }, 0);
    const seen: number[] = [];
    for (let atMs = 10_000; atMs <= 20 * 60_000; atMs += 10_000) {
      state = updateRates(state, { backlog: 0, arrivalRatePerSecond: 0 }, atMs);
      seen.push(state.arrivalRatePerSecond!);
    }
    // 50/s falls by e^(-10/30) per 10 s reading, and is 0 from the first step below the floor on.
    const stepsToFloor = Math.ceil(Math.log(50 / RATE_FLOOR_PER_SECOND) / (10 / RATE_TIME_CONSTANT_SECONDS));
    expect(seen.findIndex((rate) => rate === 0)).toBe(stepsToFloor - 1);
    expect(seen.slice(stepsToFloor - 1).every((rate) => rate === 0)).toBe(true);
    expect(seen[stepsToFloor - 2]).toBeGreaterThanOrEqual(RATE_FLOOR_PER_SECOND);
  });

  it('keeps a slow rate above the floor as it is', () => {
    const slow = 2 * RATE_FLOOR_PER_SECOND;
    const state = updateRates(
      updateRates(undefined, { backlog: 0, arrivalRatePerSecond: slow }, 0),
      { backlog: 0, arrivalRatePerSecond: slow },
      10_000,
    );
    expect(state.arrivalRatePerSecond).toBeCloseTo(slow, 12);
  });

  it('takes no counter sample across a change of what the counters count (a Kafka topic joining the sum)', () => {
    let state = updateRates(undefined, { backlog: 0, arrivedTotal: 1000, servedTotal: 1000, counterBasis: 'a' }, 0);
    state = updateRates(state, { backlog: 0, arrivedTotal: 1100, servedTotal: 1100, counterBasis: 'a' }, 10_000);
    const before = state.arrivalRatePerSecond!;
    const served = state.serviceRatePerSecond!;
    expect(before).toBeCloseTo(10, 6);
    expect(served).toBeCloseTo(10, 6);
    // 4e8 messages of an old topic join the sums: no arrivals, no completions.
    state = updateRates(state, { backlog: 0, arrivedTotal: 4e8 + 1200, servedTotal: 4e8 + 1200, counterBasis: 'b' }, 20_000);
    expect(state.arrivalRatePerSecond).toBe(before);
    expect(state.serviceRatePerSecond).toBe(served);
    expect(state.counterBasis).toBe('b');
    // Then the new sums compare with each other.
    state = updateRates(state, { backlog: 0, arrivedTotal: 4e8 + 1300, servedTotal: 4e8 + 1300, counterBasis: 'b' }, 30_000);
    expect(state.arrivalRatePerSecond).toBeCloseTo(10, 6);
    // Without a basis (or one the reading before lacked) counters compare as before.
    const plain = updateRates(
      updateRates(undefined, { backlog: 0, arrivedTotal: 0 }, 0),
      { backlog: 0, arrivedTotal: 50 },
      10_000,
    );
    expect(plain.arrivalRatePerSecond).toBe(5);
  });
});
