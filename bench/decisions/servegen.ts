// Held-out traces from ServeGen's published statistics (Alibaba Cloud Model Studio; Xiang et al.,
// 2025; github.com/alibaba/ServeGen, Apache-2.0): per client and 10-minute window of a day, the
// request rate, the distribution fitted to the gaps between requests (Weibull or Gamma) and the
// input and output token distributions. The data stays outside the project so that it keeps
// judging; this turns a local checkout into hours of one client's traffic in the Azure CSV format
// that `bench:decisions -- --trace` replays, the way ServeGen's own generator does (each window:
// round(rate x 600) gaps from its distribution, scaled to fill the window; tokens from the
// window's distributions), with clients chosen by a rule fixed before any run (docs/model.md).
//
//   npm run bench:servegen -- --checkout ../ServeGen --out /tmp/servegen [--hour 20] [--category language|reason]
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { normal, rng } from './random.ts';
import { CONCURRENCY, serviceSeconds } from './traces.ts';

const WINDOW_SECONDS = 600;
/** The rule: clients averaging this many requests a second over the hour... */
const MIN_RATE = 0.5;
const MAX_RATE = 5;
/** ...whose offered load is at least one busy slot and at most what 20 replicas of 4 serve at 75 %. */
const MIN_BUSY_SLOTS = 1;
const MAX_BUSY_SLOTS = 60;
const SEED = 7;

/** One 10-minute window of a client's trace CSV: start, rate, and the gaps' fitted distribution. */
export interface Window {
  readonly startS: number;
  readonly ratePerSecond: number;
  readonly gaps?: { readonly family: 'Weibull' | 'Gamma'; readonly shape: number };
}

/** chunk-N-trace.csv: `start,rate,cv,family,shape,scale` per window (family empty while idle). */
export function parseWindows(text: string): Window[] {
  return text
    .split(/\r?\n/)
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [start, rate, , family, shape] = line.split(',');
      const base = { startS: Number(start), ratePerSecond: Number(rate) };
      return family === 'Weibull' || family === 'Gamma' ? { ...base, gaps: { family, shape: Number(shape) } } : base;
    });
}

/** A token distribution as ServeGen stores it ("{224: 0.0003, 225: 0.0008, ...}"), as a CDF. */
export interface TokenCdf {
  readonly tokens: readonly number[];
  readonly cumulative: readonly number[];
}

export function parsePdf(text: string): TokenCdf {
  const pairs = text
    .replace(/[{}]/g, '')
    .split(',')
    .filter((p) => p.trim() !== '')
    .map((p) => p.split(':').map(Number) as [number, number])
    .sort((a, b) => a[0] - b[0]);
  const total = pairs.reduce((sum, [, p]) => sum + p, 0);
  let running = 0;
  return { tokens: pairs.map(([t]) => t), cumulative: pairs.map(([, p]) => (running += p) / total) };
}

export function drawTokens(cdf: TokenCdf, u: number): number {
  let lo = 0;
  let hi = cdf.tokens.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf.cumulative[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return cdf.tokens[lo]!;
}

/** Gamma(shape, 1): Marsaglia and Tsang, boosted below shape 1. */
export function gamma(random: () => number, shape: number): number {
  if (shape < 1) return gamma(random, shape + 1) * Math.pow(1 - random(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - random();
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Weibull(shape, 1), by inversion. */
export function weibull(random: () => number, shape: number): number {
  return Math.pow(-Math.log(1 - random()), 1 / shape);
}

export interface Generated {
  readonly atS: number;
  readonly contextTokens: number;
  readonly generatedTokens: number;
}

/** Window start (seconds of the day) -> its input and output token distributions. */
export type Dataset = ReadonlyMap<number, { readonly input: TokenCdf; readonly output: TokenCdf }>;

/** chunk-N-dataset.json: per window start, `input_tokens` and `output_tokens` as PDFs. */
export function parseDataset(text: string): Dataset {
  const raw = JSON.parse(text) as Record<string, { input_tokens: string; output_tokens: string }>;
  return new Map(
    Object.entries(raw).map(([start, d]) => [
      Number(start),
      { input: parsePdf(d.input_tokens), output: parsePdf(d.output_tokens) },
    ]),
  );
}

/** The client's requests from `fromS` for `seconds` (times from 0), as ServeGen generates them. */
export function generate(windows: readonly Window[], dataset: Dataset, fromS: number, seconds: number, seed = SEED): Generated[] {
  const random = rng(seed);
  const starts = [...dataset.keys()];
  const out: Generated[] = [];
  for (const w of windows) {
    if (w.startS < fromS || w.startS >= fromS + seconds || w.gaps === undefined || !(w.ratePerSecond > 0)) continue;
    const n = Math.round(w.ratePerSecond * WINDOW_SECONDS);
    const gaps = Array.from({ length: n }, () =>
      w.gaps!.family === 'Gamma' ? gamma(random, w.gaps!.shape) : weibull(random, w.gaps!.shape),
    );
    const scale = WINDOW_SECONDS / gaps.reduce((sum, g) => sum + g, 0);
    // The window's token distributions, else the nearest window's.
    const nearest = starts.reduce((best, s) => (Math.abs(s - w.startS) < Math.abs(best - w.startS) ? s : best), starts[0]!);
    const tokens = dataset.get(nearest)!;
    let t = w.startS;
    for (const gap of gaps) {
      t += gap * scale;
      if (t >= w.startS + WINDOW_SECONDS) break;
      out.push({
        atS: t - fromS,
        contextTokens: drawTokens(tokens.input, random()),
        generatedTokens: drawTokens(tokens.output, random()),
      });
    }
  }
  return out;
}

/** The rule's first half, on the windows alone: the hour's mean rate, when within the bounds. */
export function hourRate(windows: readonly Window[], fromS: number, seconds: number): number | undefined {
  const inHour = windows.filter((w) => w.startS >= fromS && w.startS < fromS + seconds);
  if (inHour.length === 0) return undefined;
  const mean = inHour.reduce((sum, w) => sum + w.ratePerSecond, 0) / inHour.length;
  return mean >= MIN_RATE && mean <= MAX_RATE ? mean : undefined;
}

/** The rule's second half, on the requests generated: the offered load in busy slots, when within the bounds. */
export function busySlots(requests: readonly Generated[], seconds: number): number | undefined {
  const work = requests.reduce((sum, r) => sum + serviceSeconds(r.contextTokens, r.generatedTokens), 0);
  const busy = work / seconds;
  return busy >= MIN_BUSY_SLOTS && busy <= MAX_BUSY_SLOTS ? busy : undefined;
}

/** The Azure trace format, from 2024-01-01 00:00:00 UTC. */
export function azureCsv(requests: readonly Generated[]): string {
  const base = Date.UTC(2024, 0, 1);
  const stamp = (s: number) => {
    const iso = new Date(base + Math.floor(s * 1000)).toISOString();
    const micros = String(Math.floor((s * 1e6) % 1e6)).padStart(6, '0');
    return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${micros}`;
  };
  return (
    [
      'TIMESTAMP,ContextTokens,GeneratedTokens',
      ...requests.map((r) => `${stamp(r.atS)},${r.contextTokens},${r.generatedTokens}`),
    ].join('\n') + '\n'
  );
}

function main(): void {
  const { values } = parseArgs({
    options: {
      checkout: { type: 'string' },
      out: { type: 'string', default: '.' },
      hour: { type: 'string', default: '20' },
      category: { type: 'string', default: 'language' },
    },
  });
  if (values.checkout === undefined) throw new Error('--checkout DIR: a local clone of ServeGen');
  const hour = Number(values.hour);
  if (!Number.isInteger(hour) || hour < 0 || hour > 23) throw new Error(`--hour ${JSON.stringify(values.hour)}: want 0-23`);
  const fromS = hour * 3600;
  const root = join(values.checkout, 'data', values.category);
  if (!existsSync(root))
    throw new Error(`--checkout ${JSON.stringify(values.checkout)}: no data/${values.category}/ in it (a clone of ServeGen?)`);
  mkdirSync(values.out, { recursive: true });
  for (const model of readdirSync(root).sort()) {
    for (const file of readdirSync(join(root, model)).sort()) {
      const client = /^chunk-(\d+)-trace\.csv$/.exec(file)?.[1];
      if (client === undefined) continue;
      const windows = parseWindows(readFileSync(join(root, model, file), 'utf8'));
      const rate = hourRate(windows, fromS, 3600);
      if (rate === undefined) continue;
      let dataset: Dataset;
      try {
        dataset = parseDataset(readFileSync(join(root, model, `chunk-${client}-dataset.json`), 'utf8'));
      } catch {
        console.error(`${model} ${client}: no readable dataset (a large-file pointer?), left out`);
        continue;
      }
      const requests = generate(windows, dataset, fromS, 3600);
      const busy = busySlots(requests, 3600);
      if (busy === undefined) continue;
      const name = `sg-${model}-${client}.csv`;
      writeFileSync(join(values.out, name), azureCsv(requests));
      console.log(
        `${name}: ${requests.length} requests, ${rate.toFixed(2)}/s, ${busy.toFixed(1)} busy slots (${(busy / CONCURRENCY).toFixed(1)} replicas of ${CONCURRENCY})`,
      );
    }
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main();
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
