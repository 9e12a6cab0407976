// Seeded randomness, so every policy sees the same trace and the same cold starts.

/** mulberry32: small, fast, good enough for simulation. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function exponential(random: () => number, ratePerSecond: number): number {
  return -Math.log(1 - random()) / ratePerSecond;
}

export function normal(random: () => number): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Lognormal with the given median and 99th percentile. */
export function lognormalFromP50P99(p50: number, p99: number): { mu: number; sigma: number } {
  return { mu: Math.log(p50), sigma: Math.log(p99 / p50) / 2.3263478740408408 };
}

export function lognormal(random: () => number, mu: number, sigma: number): number {
  return Math.exp(mu + sigma * normal(random));
}
