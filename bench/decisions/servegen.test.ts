import { describe, expect, it } from 'vitest';
import { rng } from './random.ts';
import {
  type Dataset,
  azureCsv,
  busySlots,
  drawTokens,
  gamma,
  generate,
  hourRate,
  parseDataset,
  parsePdf,
  parseWindows,
  weibull,
} from './servegen.ts';
import { parseAzureCsv } from './traces.ts';

const WINDOWS = parseWindows(
  ['72000,0.5,3.1,Weibull,0.5,2.0', '72600,0,0,,0,0', '73200,1.0,1.1,Gamma,0.8,1.2', '75600,9,1,Weibull,1,1'].join('\n'),
);
const DATASET: Dataset = parseDataset(
  JSON.stringify({
    '72000': { input_tokens: '{100: 0.5, 300: 0.5}', output_tokens: '{10: 0.25, 50: 0.75}' },
    '73200': { input_tokens: '{2000: 1.0}', output_tokens: '{500: 1.0}' },
  }),
);

describe('servegen: ServeGen statistics to hours of one client', () => {
  it('reads the windows: rate and the gaps fitted, none while idle', () => {
    expect(WINDOWS[0]).toEqual({ startS: 72000, ratePerSecond: 0.5, gaps: { family: 'Weibull', shape: 0.5 } });
    expect(WINDOWS[1]).toEqual({ startS: 72600, ratePerSecond: 0 });
    expect(WINDOWS[2]!.gaps).toEqual({ family: 'Gamma', shape: 0.8 });
  });

  it('draws tokens from a PDF as stored ("{224: 0.0003, ...}", unsorted, not normalized)', () => {
    const cdf = parsePdf('{50: 2, 10: 1, 30: 1}');
    expect(cdf.tokens).toEqual([10, 30, 50]);
    expect(cdf.cumulative).toEqual([0.25, 0.5, 1]);
    expect([0, 0.25, 0.26, 0.5, 0.51, 0.999].map((u) => drawTokens(cdf, u))).toEqual([10, 10, 30, 30, 50, 50]);
  });

  it('samples Gamma and Weibull gaps with their means (seeded)', () => {
    const mean = (draw: () => number) => Array.from({ length: 20_000 }, draw).reduce((a, b) => a + b, 0) / 20_000;
    const random = rng(1);
    // E[Gamma(k, 1)] = k, below 1 too; E[Weibull(k, 1)] = Γ(1 + 1/k): 1 at k = 1, 2 at k = 0.5.
    expect(mean(() => gamma(random, 0.3))).toBeCloseTo(0.3, 1);
    expect(mean(() => gamma(random, 2.5))).toBeCloseTo(2.5, 1);
    expect(mean(() => weibull(random, 1))).toBeCloseTo(1, 1);
    expect(mean(() => weibull(random, 0.5)) / 2).toBeCloseTo(1, 1);
  });

  it("generates each window's round(rate x 600) requests inside it, times from the hour's start", () => {
    const requests = generate(WINDOWS, DATASET, 72000, 3600);
    const first = requests.filter((r) => r.atS < 600);
    const third = requests.filter((r) => r.atS >= 1200 && r.atS < 1800);
    // The last gap ends the window, so a window holds n - 1 or n of them.
    expect(first.length).toBeGreaterThanOrEqual(299);
    expect(first.length).toBeLessThanOrEqual(300);
    expect(third.length).toBeGreaterThanOrEqual(599);
    expect(requests.filter((r) => r.atS >= 600 && r.atS < 1200)).toEqual([]);
    // The window past the hour (75600) is left out.
    expect(requests.length).toBe(first.length + third.length);
    expect(new Set(first.map((r) => r.contextTokens))).toEqual(new Set([100, 300]));
    expect(new Set(third.map((r) => `${r.contextTokens}/${r.generatedTokens}`))).toEqual(new Set(['2000/500']));
    expect(generate(WINDOWS, DATASET, 72000, 3600)).toEqual(requests);
    expect(generate(WINDOWS, DATASET, 72000, 3600, 8)).not.toEqual(requests);
  });

  it('chooses by the hour mean rate (0.5-5 a second) and the offered load (1-60 busy slots)', () => {
    expect(hourRate(WINDOWS, 72000, 3600)).toBeCloseTo(0.5, 6);
    expect(hourRate(WINDOWS, 75600, 3600)).toBeUndefined();
    expect(hourRate(WINDOWS, 0, 3600)).toBeUndefined();
    const load = (n: number, generatedTokens: number) =>
      busySlots(
        Array.from({ length: n }, (_, i) => ({ atS: i, contextTokens: 0, generatedTokens })),
        3600,
      );
    // 3600 requests of 1 s (25 tokens at 25 a second): 1 busy slot.
    expect(load(3600, 25)).toBeCloseTo(1, 6);
    expect(load(3599, 25)).toBeUndefined();
    expect(load(3600, 1500)).toBeCloseTo(60, 6);
    expect(load(3600, 1501)).toBeUndefined();
  });

  it('writes the Azure format that bench:decisions replays, to the microsecond', () => {
    const requests = generate(WINDOWS, DATASET, 72000, 3600);
    const trace = parseAzureCsv('client', azureCsv(requests));
    expect(trace.requests).toHaveLength(requests.length);
    const t0 = requests[0]!.atS;
    requests.forEach((r, i) => expect(trace.requests[i]!.arrivalS).toBeCloseTo(r.atS - t0, 5));
  });
});
