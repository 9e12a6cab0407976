// Arrival traces: CSVs in the Azure LLM inference trace format (TIMESTAMP,ContextTokens,
// GeneratedTokens) and seeded synthetic ones. Service time per request comes from its tokens:
// prefill at PREFILL_TOKENS_PER_SECOND plus decode at DECODE_TOKENS_PER_SECOND per sequence,
// figures of a 13B-class model on one H100-class GPU running up to CONCURRENCY sequences at once.
import { readFileSync } from 'node:fs';
import type { Request } from './fleet.ts';
import { exponential, lognormal, rng } from './random.ts';

export const PREFILL_TOKENS_PER_SECOND = 4000;
export const DECODE_TOKENS_PER_SECOND = 25;
export const CONCURRENCY = 4;

export interface Trace {
  readonly name: string;
  /** Sorted by arrival. */
  readonly requests: readonly Request[];
}

export function serviceSeconds(contextTokens: number, generatedTokens: number): number {
  return contextTokens / PREFILL_TOKENS_PER_SECOND + generatedTokens / DECODE_TOKENS_PER_SECOND;
}

/** "2023-11-16 18:17:03.9799600" -> epoch seconds (UTC), keeping the sub-second digits. */
function parseTimestamp(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?/.exec(text.trim());
  if (m === null) throw new Error(`bad TIMESTAMP ${JSON.stringify(text)}`);
  const whole = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) / 1000;
  return whole + (m[7] ? Number(`0.${m[7]}`) : 0);
}

/** Parses a CSV in the Azure trace format (CRLF tolerated); times start at 0. */
export function parseAzureCsv(name: string, text: string): Trace {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0]?.split(',').map((h) => h.trim()) ?? [];
  const col = (key: string) => {
    const i = header.indexOf(key);
    if (i < 0) throw new Error(`${name}: no ${key} column (want TIMESTAMP,ContextTokens,GeneratedTokens)`);
    return i;
  };
  const [ti, ci, gi] = [col('TIMESTAMP'), col('ContextTokens'), col('GeneratedTokens')];
  const rows = lines.slice(1).map((line) => {
    const cells = line.split(',');
    return { at: parseTimestamp(cells[ti] ?? ''), service: serviceSeconds(Number(cells[ci]), Number(cells[gi])) };
  });
  rows.sort((a, b) => a.at - b.at);
  const t0 = rows[0]?.at ?? 0;
  return { name, requests: rows.map((r) => ({ arrivalS: r.at - t0, serviceS: r.service })) };
}

export function loadAzureCsv(path: string, name = path.replace(/^.*\//, '').replace(/\.csv$/, '')): Trace {
  return parseAzureCsv(name, readFileSync(path, 'utf8'));
}

/** Token counts shaped like the Azure code trace (context median ~1500, output median ~13). */
function syntheticService(random: () => number): number {
  const context = Math.min(8000, lognormal(random, Math.log(1500), 0.8));
  const generated = Math.min(2000, Math.max(1, lognormal(random, Math.log(13), 1.2)));
  return serviceSeconds(context, generated);
}

/** Non-homogeneous Poisson arrivals by thinning: rate(t) <= maxRate. */
function poisson(seed: number, durationS: number, maxRate: number, rate: (t: number) => number): Request[] {
  const random = rng(seed);
  const out: Request[] = [];
  for (let t = exponential(random, maxRate); t < durationS; t += exponential(random, maxRate)) {
    if (random() * maxRate < rate(t)) out.push({ arrivalS: t, serviceS: syntheticService(random) });
  }
  return out;
}

export function poissonSteady(seed: number, durationS = 3600, rate = 3): Trace {
  return { name: 'poisson-steady', requests: poisson(seed, durationS, rate, () => rate) };
}

/** Bursts of 60-180 s at 8/s, separated by silences of 120-600 s. */
export function onOff(seed: number, durationS = 3600): Trace {
  const random = rng(seed ^ 0x5bd1e995);
  const on: [number, number][] = [];
  for (let t = 30; t < durationS; ) {
    const len = 60 + 120 * random();
    on.push([t, t + len]);
    t += len + 120 + 480 * random();
  }
  const rate = (t: number) => (on.some(([a, b]) => t >= a && t < b) ? 8 : 0);
  return { name: 'on-off', requests: poisson(seed, durationS, 8, rate) };
}

/** A day squeezed into an hour: from 0.1/s up to 6/s and back. */
export function diurnal(seed: number, durationS = 3600): Trace {
  const rate = (t: number) => 0.1 + 5.9 * Math.sin((Math.PI * t) / durationS) ** 2;
  return { name: 'diurnal', requests: poisson(seed, durationS, 6, rate) };
}

/** 300 requests within 10 s, every 10 minutes. */
export function periodicBatch(seed: number, durationS = 3600, everyS = 600, size = 300): Trace {
  const random = rng(seed ^ 0x1b873593);
  const out: Request[] = [];
  for (let start = 60; start < durationS; start += everyS) {
    for (let i = 0; i < size; i++) out.push({ arrivalS: start + 10 * random(), serviceS: syntheticService(random) });
  }
  out.sort((a, b) => a.arrivalS - b.arrivalS);
  return { name: 'periodic-batch', requests: out };
}
