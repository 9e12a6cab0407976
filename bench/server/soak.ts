// The soak (`npm run bench:server -- --soak 3600`): KEDA's call pattern at a fixed rate over many
// triggers with streams open and Prometheus scraping, for a long time, one row per window. What it
// looks for is growth: a leak shows as a slope in RSS, heap, handles, file descriptors or p99 that
// the window-to-window noise does not explain. docs/reliability.md holds the last run's table.
import { readdirSync } from 'node:fs';
import type { LoadGenerator, ScalerProcess } from './children.ts';
import type { RunResult } from './loadgenProtocol.ts';
import { bucketsDiff, histogramBuckets, histogramQuantile, sampleProcess, sumMetric } from './procStats.ts';
import type { TriggerSpec } from './triggers.ts';

const REQUEST_SECONDS = 'keda_inference_scaler_grpc_request_duration_seconds';
const HEAP_USED = 'keda_inference_scaler_nodejs_heap_size_used_bytes';
const HANDLES = 'keda_inference_scaler_nodejs_active_handles_total';
/** prom-client's collector pauses, by kind (minor, major, incremental, weakcb). */
const GC_SECONDS = 'keda_inference_scaler_nodejs_gc_duration_seconds';
/** A pause this long (one of the histogram's bounds) shows in a window's p99. */
const LONG_PAUSE_SECONDS = 0.01;
/** Prometheus's usual scrape interval. */
const SCRAPE_EVERY_MS = 15_000;

export interface SoakWindow {
  /** Hours since the soak began, at the end of the window. */
  readonly hours: number;
  readonly achievedRps: number;
  readonly errors: number;
  /** Client-side latency p99 over the window (from the intended send time). */
  readonly p99Ms: number;
  /** The scaler's own handler p99 over the window, from its histogram. */
  readonly handlerP99Ms: number;
  readonly rssMb: number;
  readonly heapMb: number;
  readonly handles: number;
  readonly fds: number;
  /** Collector pauses of LONG_PAUSE_SECONDS or more in the window, every kind. */
  readonly longGcPauses: number;
  /** Seconds the collector paused the scaler in the window. */
  readonly gcSeconds: number;
  readonly scrapes: number;
}

export interface Trend {
  /** Least-squares slope, per hour. */
  readonly perHour: number;
  /** Its standard error, per hour. */
  readonly standardError: number;
  readonly mean: number;
  /** The slope is within 2 standard errors of 0, or moves the figure by under 5 % of its mean over the soak. */
  readonly flat: boolean;
}

/** Slope of `ys` over `xs` (hours) with its standard error, and whether it is flat within noise. */
export function trend(xs: readonly number[], ys: readonly number[]): Trend {
  const n = xs.length;
  const mean = ys.reduce((a, b) => a + b, 0) / n;
  if (n < 3) return { perHour: Number.NaN, standardError: Number.NaN, mean, flat: false };
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2;
    sxy += (xs[i]! - mx) * (ys[i]! - mean);
  }
  const perHour = sxy / sxx;
  let residuals = 0;
  for (let i = 0; i < n; i++) residuals += (ys[i]! - (mean + perHour * (xs[i]! - mx))) ** 2;
  const standardError = Math.sqrt(residuals / (n - 2) / sxx);
  const span = xs[n - 1]! - xs[0]!;
  const flat = Math.abs(perHour) <= 2 * standardError || Math.abs(perHour * span) <= 0.05 * Math.abs(mean);
  return { perHour, standardError, mean, flat };
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export interface SoakOptions {
  readonly loadgen: LoadGenerator;
  readonly scaler: ScalerProcess;
  readonly spec: TriggerSpec;
  readonly rate: number;
  readonly seconds: number;
  readonly windowSeconds: number;
  readonly log: (line: string) => void;
}

/** Runs the soak: back-to-back windows of load while /metrics is scraped every 15 s. */
export async function soak(options: SoakOptions): Promise<SoakWindow[]> {
  const { loadgen, scaler, spec, rate, log } = options;
  const windows: SoakWindow[] = [];
  const started = performance.now();
  const count = Math.max(1, Math.round(options.seconds / options.windowSeconds));
  for (let w = 0; w < count; w++) {
    const before = await scaler.scrape();
    let done = false;
    let scrapes = 0;
    const running = loadgen
      .send<RunResult>({ cmd: 'run', spec, rate, durationMs: options.windowSeconds * 1000 })
      .finally(() => (done = true));
    while (!done) {
      await Promise.race([running.catch(() => undefined), new Promise((r) => setTimeout(r, SCRAPE_EVERY_MS))]);
      if (done) break;
      await scaler.scrape();
      scrapes++;
    }
    const run = await running;
    const after = await scaler.scrape();
    const handled = bucketsDiff(histogramBuckets(before, REQUEST_SECONDS), histogramBuckets(after, REQUEST_SECONDS));
    const pauses = bucketsDiff(histogramBuckets(before, GC_SECONDS), histogramBuckets(after, GC_SECONDS));
    const row: SoakWindow = {
      hours: (performance.now() - started) / 3_600_000,
      achievedRps: run.achievedRps,
      errors: run.errors + run.streamErrors,
      p99Ms: run.latency.p99Ms,
      handlerP99Ms: histogramQuantile(handled, 0.99) * 1000,
      rssMb: sampleProcess(scaler.pid).rssMb,
      heapMb: sumMetric(after, HEAP_USED) / 2 ** 20,
      handles: sumMetric(after, HANDLES),
      fds: openFds(scaler.pid),
      longGcPauses: (pauses.get(Infinity) ?? 0) - (pauses.get(LONG_PAUSE_SECONDS) ?? 0),
      gcSeconds: sumMetric(after, `${GC_SECONDS}_sum`) - sumMetric(before, `${GC_SECONDS}_sum`),
      scrapes,
    };
    windows.push(row);
    log(`soak window ${w + 1}/${count}: ${soakRow(row)}`);
  }
  return windows;
}

function soakRow(w: SoakWindow): string {
  return [
    `${(w.hours * 60).toFixed(1)} min`,
    w.achievedRps.toFixed(0),
    String(w.errors),
    w.p99Ms.toFixed(2),
    w.handlerP99Ms.toFixed(3),
    w.rssMb.toFixed(1),
    w.heapMb.toFixed(1),
    String(w.handles),
    String(w.fds),
    String(w.longGcPauses),
    w.gcSeconds.toFixed(2),
  ].join(' | ');
}

/** The soak's table (Markdown) and the slope of each figure, for docs/reliability.md. */
export function soakTable(windows: readonly SoakWindow[]): string {
  const lines = [
    '| at | req/s | errors | p99 ms | handler p99 ms | RSS MB | heap MB | handles | fds | GC pauses >= 10 ms | GC s |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...windows.map((w) => `| ${soakRow(w)} |`),
  ];
  // The first window holds start-up (JIT, caches filling): the slope is taken from the second on.
  const steady = windows.length > 3 ? windows.slice(1) : windows;
  const xs = steady.map((w) => w.hours);
  const figures: [string, (w: SoakWindow) => number, number][] = [
    ['RSS MB', (w) => w.rssMb, 1],
    ['heap MB', (w) => w.heapMb, 1],
    ['handles', (w) => w.handles, 1],
    ['fds', (w) => w.fds, 1],
    ['p99 ms', (w) => w.p99Ms, 2],
    ['handler p99 ms', (w) => w.handlerP99Ms, 3],
  ];
  lines.push(
    '',
    '| figure (from the second window) | mean | slope per hour | ± 1 s.e. | flat within noise |',
    '|---|---|---|---|---|',
  );
  for (const [name, pick, digits] of figures) {
    const t = trend(xs, steady.map(pick));
    lines.push(
      `| ${name} | ${t.mean.toFixed(digits)} | ${t.perHour >= 0 ? '+' : ''}${t.perHour.toFixed(digits)} | ${t.standardError.toFixed(digits)} | ${t.flat ? 'yes' : 'NO'} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
