// Pure helpers of the load benchmark: latency percentiles and the open-loop send schedule.
// Kept free of I/O so they are unit-tested (bench/server/stats.test.ts).

/** Nearest-rank percentile (p in [0, 100]) of an ascending array; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (p <= 0) return sorted[0]!;
  if (p >= 100) return sorted[sorted.length - 1]!;
  // The epsilon keeps float noise (99.9 / 100 * 1000 = 999.0000000000001) from moving the rank.
  const rank = Math.ceil((p / 100) * sorted.length - 1e-9);
  return sorted[Math.max(0, rank - 1)]!;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

/** Percentiles of latency samples in ms (the input is not modified). */
export function summarize(samplesMs: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samplesMs).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    p999Ms: percentile(sorted, 99.9),
    maxMs: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
    meanMs: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

/** Growable array of samples (ms) without per-sample allocation. */
export class Samples {
  private data = new Float64Array(1024);
  private n = 0;

  push(value: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = value;
  }

  get length(): number {
    return this.n;
  }

  values(): Float64Array {
    return this.data.subarray(0, this.n);
  }
}

/** Steps of the highest-rate search: start, start*factor, ... up to max (rounded to 100/s). */
export function rateSteps(start: number, factor: number, max: number): number[] {
  const steps: number[] = [];
  for (let r = start; r <= max; r *= factor) {
    const rounded = Math.max(100, Math.round(r / 100) * 100);
    if (steps[steps.length - 1] !== rounded) steps.push(rounded);
  }
  return steps;
}
