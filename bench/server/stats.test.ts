import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { shippedNodeArgs } from '../../test/support/process.ts';
import { parseFlags } from './flags.ts';
import {
  bucketsDiff,
  histogramBuckets,
  histogramQuantile,
  labelValues,
  parseStatCpuSeconds,
  parseStatusRssMb,
  sumMetric,
} from './procStats.ts';
import { median } from './report.ts';
import { Samples, percentile, rateSteps, summarize } from './stats.ts';

describe('percentile (nearest rank)', () => {
  const sorted = Float64Array.from({ length: 1000 }, (_, i) => i + 1); // 1..1000
  it.each([
    [50, 500],
    [99, 990],
    [99.9, 999],
    [100, 1000],
    [0, 1],
  ])('p%s of 1..1000 is %s', (p, expected) => {
    expect(percentile(sorted, p)).toBe(expected);
  });
  it('is NaN for no samples', () => expect(percentile([], 50)).toBeNaN());
  it('takes the single sample for any p', () => expect(percentile([7], 99.9)).toBe(7));
});

describe('summarize', () => {
  it('sorts a copy and reports percentiles, max and mean', () => {
    const samples = [5, 1, 4, 2, 3];
    const s = summarize(samples);
    expect(s).toMatchObject({ count: 5, p50Ms: 3, p99Ms: 5, maxMs: 5, meanMs: 3 });
    expect(samples).toEqual([5, 1, 4, 2, 3]);
  });
});

describe('Samples', () => {
  it('grows past its first buffer and keeps every value', () => {
    const s = new Samples();
    for (let i = 0; i < 5000; i++) s.push(i);
    expect(s.length).toBe(5000);
    expect(s.values()[4999]).toBe(4999);
  });
});

describe('rateSteps', () => {
  it('multiplies from the start up to the maximum, rounded to 100/s', () => {
    expect(rateSteps(2000, 1.5, 12_000)).toEqual([2000, 3000, 4500, 6800, 10100]);
  });
  it('gives the start alone when it is the maximum', () => expect(rateSteps(500, 2, 500)).toEqual([500]));
});

describe('median', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });
});

describe('/proc parsing', () => {
  it('reads utime + stime from a stat line whose name holds spaces and parens', () => {
    const stat = '1234 (node (main) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 300 1000 200';
    expect(parseStatCpuSeconds(stat)).toBe(3);
  });
  it('reads VmRSS in MB', () => {
    expect(parseStatusRssMb('Name:\tnode\nVmRSS:\t  102400 kB\nThreads: 7\n')).toBe(100);
  });
});

describe('Prometheus text', () => {
  const text = [
    '# HELP keda_inference_scaler_source_queries_total Queries',
    '# TYPE keda_inference_scaler_source_queries_total counter',
    'keda_inference_scaler_source_queries_total{kind="rabbitmq",result="ok"} 120',
    'keda_inference_scaler_source_queries_total{kind="rabbitmq",result="error"} 3',
    'keda_inference_scaler_source_queries_total_other 99',
    'keda_inference_scaler_cached_sources 100',
  ].join('\n');
  it('sums every series of one metric and no other', () => {
    expect(sumMetric(text, 'keda_inference_scaler_source_queries_total')).toBe(123);
    expect(sumMetric(text, 'keda_inference_scaler_cached_sources')).toBe(100);
  });
  it('groups values by a label', () => {
    expect(labelValues(text, 'keda_inference_scaler_source_queries_total', 'result')).toEqual(
      new Map([
        ['ok', 120],
        ['error', 3],
      ]),
    );
  });
});

describe('flags', () => {
  it('defaults to the issue targets', () => {
    expect(parseFlags([])).toMatchObject({
      triggers: 1000,
      queues: 100,
      streams: 1000,
      rate: 2000,
      memoryTriggers: 10_000,
      wakeTries: 50,
    });
  });
  it('reads numbers and the JSON path', () => {
    expect(parseFlags(['--triggers', '10', '--queues', '2', '--json', 'out.json'])).toMatchObject({
      triggers: 10,
      queues: 2,
      json: 'out.json',
    });
  });
  it('runs the scaler as it ships: compiled, with the node flags of npm start and of the image', () => {
    const shipped = shippedNodeArgs();
    expect(shipped).toContain('--max-semi-space-size=4');
    expect(shipped).toContain('--no-allocation-site-pretenuring');
    expect(shipped).toContain('--heap-growing-percent=30');
    expect(shipped).toContain('--initial-old-space-size=64');
    // npm start and the image read the same file; npm start execs node, so that a SIGTERM sent to
    // npm reaches the scaler (a shell in between dies and leaves it running).
    const start = (
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }
    ).scripts.start;
    expect(start).toBe('exec node $(cat node.flags) src/main.ts');
    expect(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8')).toMatch(
      /^ENTRYPOINT .*\$\(cat node\.flags\) dist\/main\.js/m,
    );
    expect(parseFlags([])).toMatchObject({ compiled: true, nodeArgs: shipped });
    expect(parseFlags(['--source', '--node-args='])).toMatchObject({ compiled: false, nodeArgs: [] });
    expect(parseFlags(['--node-args=--max-old-space-size=128 --trace-gc']).nodeArgs).toEqual([
      '--max-old-space-size=128',
      '--trace-gc',
    ]);
  });
  it('rejects a bad number, naming the flag', () => {
    expect(() => parseFlags(['--rate', 'fast'])).toThrow(/--rate: got "fast"/);
    expect(() => parseFlags(['--queues', '20', '--triggers', '10'])).toThrow(/--queues/);
  });
});

describe('histograms from the scaler /metrics', () => {
  const scrape = (a: number, b: number, c: number) =>
    [
      `h_bucket{le="0.001",method="IsActive"} ${a}`,
      `h_bucket{le="0.005",method="IsActive"} ${b}`,
      `h_bucket{le="+Inf",method="IsActive"} ${c}`,
      `h_bucket{le="0.001",method="GetMetrics"} ${a}`,
      `h_bucket{le="0.005",method="GetMetrics"} ${b}`,
      `h_bucket{le="+Inf",method="GetMetrics"} ${c}`,
      'h_sum 1',
    ].join('\n');
  it('sums label sets, diffs two scrapes and interpolates inside a bucket', () => {
    const diff = bucketsDiff(histogramBuckets(scrape(10, 10, 10), 'h'), histogramBuckets(scrape(60, 110, 110), 'h'));
    expect(diff).toEqual(
      new Map([
        [0.001, 100],
        [0.005, 200],
        [Infinity, 200],
      ]),
    );
    expect(histogramQuantile(diff, 0.5)).toBeCloseTo(0.001);
    expect(histogramQuantile(diff, 0.25)).toBeCloseTo(0.0005);
    expect(histogramQuantile(diff, 0.75)).toBeCloseTo(0.003);
  });
  it('answers the highest finite bound for a rank in +Inf, NaN with no observations', () => {
    expect(
      histogramQuantile(
        new Map([
          [0.001, 1],
          [Infinity, 10],
        ]),
        0.99,
      ),
    ).toBe(0.001);
    expect(histogramQuantile(new Map([[Infinity, 0]]), 0.5)).toBeNaN();
  });
});
