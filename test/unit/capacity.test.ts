import { describe, expect, it } from 'vitest';
import { erlangB, lateProbability, pricedReplicas } from '../../src/model/capacity.ts';

describe('lateProbability (Erlang C)', () => {
  it.each([
    // c, a, S, t, P(wait > t)
    { c: 2, a: 1, S: 1, t: 0, p: 1 / 3 }, // M/M/2 at ρ = 0.5: C = 1/3
    { c: 1, a: 0.5, S: 1, t: 0, p: 0.5 }, // M/M/1: P(wait) = ρ
    { c: 1, a: 0.5, S: 2, t: 2, p: 0.5 * Math.exp(-0.5) }, // times exp(−(c − a)·t / S)
    { c: 10, a: 0, S: 1, t: 0, p: 0 }, // no load
  ])('c $c, a $a, S $S, t $t: $p', ({ c, a, S, t, p }) => {
    expect(lateProbability(c, a, S, t)).toBeCloseTo(p, 9);
  });

  it('is 1 for a fleet short of the load', () => {
    expect(lateProbability(4, 8, 1, 15)).toBe(1);
    expect(lateProbability(5, 5, 1, 15)).toBe(1);
  });

  it('falls as slots are added', () => {
    const ps = [20, 22, 24, 28, 32].map((c) => lateProbability(c, 18.4, 46, 15));
    for (let i = 1; i < ps.length; i++) expect(ps[i]).toBeLessThan(ps[i - 1]!);
  });
});

describe('pricedReplicas', () => {
  const load = { slotsPerReplica: 4, lateRequestCost: 10 };
  it.each([
    // λ, S, T, X: n. The fleet is stable (n·k > λ·S), then grows while a replica costs less than the late requests it saves.
    { lambda: 3, S: 1.6, T: 15, X: 10, n: 2 }, // 4.8 slots: two replicas, none late
    { lambda: 5.5, S: 7.4, T: 15, X: 10, n: 11 }, // 40.7 slots: 44 leave 0.06 % late, 5.5 · 0.0006 · 10 = 0.03 GPU-s/s, less than a 12th replica
    { lambda: 5.5, S: 7.4, T: 15, X: 1000, n: 12 }, // late requests dear: the 12th replica pays
    { lambda: 0.4, S: 46, T: 15, X: 10, n: 6 }, // minute-long requests, 15 s objective: the square-root margin
    { lambda: 0.4, S: 46, T: 15, X: 0, n: 5 }, // late requests free: the smallest stable fleet
    { lambda: 0, S: 46, T: 15, X: 10, n: 0 },
  ])('λ $lambda, S $S s, T $T s, cost $X: $n', ({ lambda, S, T, X, n }) => {
    expect(pricedReplicas({ ...load, arrivalRate: lambda, serviceSeconds: S, objectiveSeconds: T, lateRequestCost: X })).toBe(n);
  });
});

// Found by review: the work of one decision grew with the load and the slots, not the fleet a
// trigger may run: a throughputPerReplica of 1e-8 held the event loop for seconds. These return
// at once now; before, each ran past the test's timeout.
describe('bounded work', () => {
  it('prices no count past the limit: a load that needs more gets its first stable count', () => {
    const load = { slotsPerReplica: 4, objectiveSeconds: 15, lateRequestCost: 10 };
    // λ 5/s, S 5e8 s (μ 1e-8 per replica of 4 slots): 6.25e8 replicas at the least.
    expect(pricedReplicas({ ...load, arrivalRate: 5, serviceSeconds: 5e8 }, 100)).toBe(625_000_001);
    // 1e6 requests a second of 0.4 s with maxReplicas 100: the same, and the bounds cut it to 100.
    expect(pricedReplicas({ ...load, arrivalRate: 1e6, serviceSeconds: 0.4 }, 100)).toBe(100_001);
  });

  it('stops the Erlang sum once the wait it gives is nil: a replica of a billion slots costs what the load does', () => {
    expect(lateProbability(1e9, 10, 1, 15)).toBe(0);
    expect(
      pricedReplicas({ slotsPerReplica: 1e9, objectiveSeconds: 15, lateRequestCost: 10, arrivalRate: 5, serviceSeconds: 2 }),
    ).toBe(1);
  });
});

// Found by review: a replica said to hold 1e13 messages made one decision take a second, 1e16 for
// ever (i + 1 === i). The trigger schema bounds the setting now; this is the model's own bound.
describe('a load no fleet carries', () => {
  it('is staffed by the square-root rule, not summed slot by slot', () => {
    const load = { arrivalRate: 1, objectiveSeconds: 15, lateRequestCost: 10 };
    expect(pricedReplicas({ ...load, serviceSeconds: 1e16, slotsPerReplica: 1e16 }, 100)).toBe(2);
    expect(pricedReplicas({ ...load, serviceSeconds: 4e8, slotsPerReplica: 1e6 }, 1000)).toBe(401);
  });
});

// Found by review: with a learned k (an average: 1.3 in flight per consumer) each count's B went
// on from the one before by fractional steps, and the count was a replica off the cheapest one.
describe('slots of a fractional k', () => {
  /** The cheapest stable count by brute force, on round(n·k) whole slots. */
  function cheapest(lambda: number, S: number, k: number, T: number, X: number): number {
    let best = 0;
    let bestCost = Infinity;
    for (let n = 1; n <= 200; n++) {
      const c = Math.round(n * k);
      if (c <= lambda * S) continue;
      const cost = n + X * lambda * lateProbability(c, lambda * S, S, T);
      if (cost < bestCost) [best, bestCost] = [n, cost];
    }
    return best;
  }
  it.each([
    [0.5, 1, 1.3, 1, 10],
    [0.5, 5, 1.3, 2, 10],
    [1, 3, 1.3, 5, 10],
    [1, 5, 1.3, 2, 10],
    [5.5, 7.4, 3.98, 15, 10],
    [0.4, 46, 4.2, 15, 100],
  ])('λ %d, S %d s, k %d, T %d s, cost %d: the cheapest count', (lambda, S, k, T, X) => {
    const load = { arrivalRate: lambda, serviceSeconds: S, slotsPerReplica: k, objectiveSeconds: T, lateRequestCost: X };
    expect(pricedReplicas(load, 200)).toBe(cheapest(lambda, S, k, T, X));
  });
});

/** Erlang B by its recursion from 0, every step: the reference. */
function erlangBFromZero(c: number, a: number): number {
  let b = 1;
  for (let i = 1; i <= c; i++) b = (a * b) / (i + a * b);
  return b;
}

// Found by review: the recursion ran a = λ·S steps from 0, and with messagesPerReplica 10^6 on a
// thousand replicas that was 8 s of the event loop at every evaluation.
describe('erlangB started below a large load', () => {
  it.each([
    [1_700, 1_650],
    [2_100, 2_000],
    [10_150, 10_000],
    [100_200, 100_000],
    [1_000_500, 1_000_000],
    [999_000, 1_000_000],
  ])('c %i, a %i: as the full recursion gives it', (c, a) => {
    const full = erlangBFromZero(c, a);
    expect(Math.abs(erlangB(c, a) - full)).toBeLessThanOrEqual(1e-12 * full + 1e-300);
  });

  it('prices a million-message replica on a thousand replicas: the first stable fleet, nobody late past it', () => {
    const load = { arrivalRate: 990, serviceSeconds: 1e6, slotsPerReplica: 1e6, objectiveSeconds: 15, lateRequestCost: 10 };
    expect(pricedReplicas(load, 1000)).toBe(991);
  });
});
