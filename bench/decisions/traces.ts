// Arrival traces: CSVs in the Azure LLM inference trace format (TIMESTAMP,ContextTokens,
// GeneratedTokens) and seeded synthetic ones. Service time per request comes from its tokens:
// prefill at PREFILL_TOKENS_PER_SECOND plus decode at DECODE_TOKENS_PER_SECOND per sequence,
// figures of a 13B-class model on one H100-class GPU running up to CONCURRENCY sequences at once.
import { readFileSync } from 'node:fs';
import type { Request } from './fleet.ts';
import { exponential, lognormal, normal, rng } from './random.ts';

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

/**
 * "2023-11-16 18:17:03.9799600" (the Azure trace's), or ISO 8601 with a "T", and "Z" or a "+hh:mm"
 * offset -> epoch seconds, keeping the sub-second digits. Without an offset the time is UTC. A date
 * or time that does not exist (month 13, second 99) is refused, not rolled over.
 */
function parseTimestamp(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*([zZ]|[+-]\d{2}(?::?\d{2})?)?$/.exec(text.trim());
  if (m === null) throw new Error(`TIMESTAMP ${JSON.stringify(text)}: want YYYY-MM-DD HH:MM:SS[.fraction][Z|+hh:mm]`);
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]));
  const whole = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!);
  const back = new Date(whole);
  if (back.getUTCMonth() !== month! - 1 || back.getUTCDate() !== day! || hour! > 23 || minute! > 59 || second! > 59)
    throw new Error(`TIMESTAMP ${JSON.stringify(text)}: no such date or time`);
  const offset = m[8] === undefined || /^[zZ]$/.test(m[8]) ? 0 : offsetMinutes(m[8], text);
  return (whole - offset * 60_000) / 1000 + (m[7] ? Number(`0.${m[7]}`) : 0);
}

/** "+01:00", "-0530" or "+05" -> minutes east of UTC; hours past 23 or minutes past 59 refused. */
function offsetMinutes(offset: string, timestamp: string): number {
  const digits = offset.replace(':', '');
  const [hours, minutes] = [Number(digits.slice(1, 3)), Number(digits.slice(3, 5) || '0')];
  if (hours > 23 || minutes > 59) throw new Error(`TIMESTAMP ${JSON.stringify(timestamp)}: no such offset`);
  return (digits.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
}

/** A token count: a whole number from 0 to a million (no model's context or output is longer). */
function parseTokens(column: string, text: string | undefined): number {
  const value = Number(text?.trim());
  if (text === undefined || text.trim() === '' || !Number.isInteger(value) || value < 0 || value > 1_000_000)
    throw new Error(`${column} ${JSON.stringify(text ?? '')}: want a whole number of tokens from 0 to 1000000`);
  return value;
}

/** One CSV line's fields, quotes as RFC 4180 has them ("a, b" one field, "" a quote within one). */
export function csvFields(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  if (quoted) throw new Error('a quote is not closed');
  fields.push(field);
  return fields;
}

/** The fields with empty ones at the end left out down to `keep` (a trailing comma on the header or the rows). */
function withoutTrailingEmpty(fields: string[], keep = 1): string[] {
  while (fields.length > keep && fields.at(-1)!.trim() === '') fields.pop();
  return fields;
}

/**
 * Parses a CSV in the Azure trace format (TIMESTAMP,ContextTokens,GeneratedTokens, in any order,
 * other columns left alone; CRLF, a BOM and quoted fields tolerated); times start at 0. A row that
 * cannot be read stops it with the file's name, the line and what is wrong: one bad cell read as
 * 0 or NaN changed every policy's figures without a word.
 */
export function parseAzureCsv(name: string, text: string, source = name): Trace {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const first = lines.findIndex((l) => l.trim() !== '');
  const at = (i: number, err: unknown) => new Error(`${source}:${i + 1}: ${(err as Error).message}`);
  let header: string[] = [];
  try {
    header = first < 0 ? [] : withoutTrailingEmpty(csvFields(lines[first]!)).map((h) => h.trim());
  } catch (err) {
    throw at(first, err);
  }
  const col = (key: string) => {
    const i = header.indexOf(key);
    if (i < 0) throw at(first, new Error(`no ${key} column (want TIMESTAMP,ContextTokens,GeneratedTokens)`));
    return i;
  };
  const [ti, ci, gi] = [col('TIMESTAMP'), col('ContextTokens'), col('GeneratedTokens')];
  const rows: { at: number; service: number }[] = [];
  for (let i = first + 1; i < lines.length; i++) {
    if (lines[i]!.trim() === '') continue;
    try {
      const cells = withoutTrailingEmpty(csvFields(lines[i]!), header.length);
      if (cells.length !== header.length) throw new Error(`${cells.length} fields where the header has ${header.length}`);
      const service = serviceSeconds(parseTokens('ContextTokens', cells[ci]), parseTokens('GeneratedTokens', cells[gi]));
      rows.push({ at: parseTimestamp(cells[ti]!), service });
    } catch (err) {
      throw at(i, err);
    }
  }
  if (rows.length === 0) throw new Error(`${source}: no requests (a header and no rows)`);
  rows.sort((a, b) => a.at - b.at);
  const t0 = rows[0]!.at;
  return { name, requests: rows.map((r) => ({ arrivalS: r.at - t0, serviceS: r.service })) };
}

export function loadAzureCsv(path: string, name = path.replace(/^.*\//, '').replace(/\.csv$/, '')): Trace {
  return parseAzureCsv(name, readFileSync(path, 'utf8'), path);
}

/** Token counts: lognormal context and output lengths, each capped. */
interface TokenShape {
  readonly contextMedian: number;
  readonly contextSigma: number;
  readonly contextMax: number;
  readonly generatedMedian: number;
  readonly generatedSigma: number;
  readonly generatedMax: number;
}

/** Code completion, shaped like the Azure code trace: context median ~1500, output median ~13 (about 1 s). */
const CODE_TOKENS: TokenShape = {
  contextMedian: 1500,
  contextSigma: 0.8,
  contextMax: 8000,
  generatedMedian: 13,
  generatedSigma: 1.2,
  generatedMax: 2000,
};
/** Conversation: context median 1,020, output median 129 (about 5 s; a tail of 20-40 s). */
const CHAT_TOKENS: TokenShape = {
  contextMedian: 1020,
  contextSigma: 0.8,
  contextMax: 8000,
  generatedMedian: 129,
  generatedSigma: 0.8,
  generatedMax: 1000,
};
/** Long generations (reports, agents): output median 1,000 tokens, about 40 s; up to 2 minutes. */
const LONG_TOKENS: TokenShape = {
  contextMedian: 2000,
  contextSigma: 0.6,
  contextMax: 16000,
  generatedMedian: 1000,
  generatedSigma: 0.5,
  generatedMax: 3000,
};

function tokenService(random: () => number, shape: TokenShape): number {
  const context = Math.min(shape.contextMax, lognormal(random, Math.log(shape.contextMedian), shape.contextSigma));
  const generated = Math.min(
    shape.generatedMax,
    Math.max(1, lognormal(random, Math.log(shape.generatedMedian), shape.generatedSigma)),
  );
  return serviceSeconds(context, generated);
}

function syntheticService(random: () => number): number {
  return tokenService(random, CODE_TOKENS);
}

/** Non-homogeneous Poisson arrivals by thinning: rate(t) <= maxRate. */
function poisson(
  seed: number,
  durationS: number,
  maxRate: number,
  rate: (t: number) => number,
  shape: TokenShape = CODE_TOKENS,
): Request[] {
  const random = rng(seed);
  const out: Request[] = [];
  for (let t = exponential(random, maxRate); t < durationS; t += exponential(random, maxRate)) {
    if (random() * maxRate < rate(t)) out.push({ arrivalS: t, serviceS: tokenService(random, shape) });
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
  for (let t = 30; t < durationS;) {
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

/**
 * A random level per minute, lognormal around 1 with log-sd `sigma` and correlation `rho` from one
 * minute to the next (AR(1) in log space), linear between minute marks: traffic that drifts.
 */
function drift(random: () => number, durationS: number, sigma: number, rho: number): (t: number) => number {
  const minutes = Math.ceil(durationS / 60) + 2;
  const levels: number[] = [];
  let x = sigma * normal(random);
  for (let i = 0; i < minutes; i++) {
    levels.push(Math.exp(x - (sigma * sigma) / 2));
    x = rho * x + Math.sqrt(1 - rho * rho) * sigma * normal(random);
  }
  return (t) => {
    const m = Math.max(0, t / 60);
    const i = Math.floor(m);
    return levels[i]! + (levels[i + 1]! - levels[i]!) * (m - i);
  };
}

/**
 * Conversational chat, never idle: built from the published statistics of a production chat
 * service (19,366 requests in 58 minutes, about 5.5 req/s, per-minute count coefficient of
 * variation 0.25, longest gap a few seconds; context median 1,020 tokens, output median 129), so
 * service times are several seconds and the fleet is large.
 */
export function chatSteady(seed: number, durationS = 3480, rate = 5.5): Trace {
  const random = rng(seed ^ 0x27d4eb2f);
  const level = drift(random, durationS, 0.3, 0.6);
  const max = rate * 4;
  return {
    name: 'chat-steady',
    requests: poisson(seed ^ 0x165667b1, durationS, max, (t) => Math.min(max, rate * level(t)), CHAT_TOKENS),
  };
}

/**
 * Chat whose request mix drifts: over tens of minutes the share of long conversations rises and
 * falls (output median ×0.5 to ×2 around 129 tokens) while the rate moves the other way, so the
 * offered load stays about level and a service time learned an hour ago is wrong now.
 */
export function chatMix(seed: number, durationS = 3480, rate = 5.5): Trace {
  const random = rng(seed ^ 0x4cf5ad43);
  const level = drift(random, durationS, 0.15, 0.6);
  const steps = Math.ceil(durationS / 300) + 2;
  const mix: number[] = [];
  let x = 0.35 * normal(random);
  for (let i = 0; i < steps; i++) {
    mix.push(x);
    x = 0.7 * x + Math.sqrt(1 - 0.49) * 0.35 * normal(random);
  }
  const mixAt = (t: number) => {
    const m = t / 300;
    const i = Math.floor(m);
    return mix[i]! + (mix[i + 1]! - mix[i]!) * (m - i);
  };
  const serviceRandom = rng(seed ^ 0x165667b1);
  const arrivals = poisson(seed ^ 0x3c6ef372, durationS, rate * 8, (t) =>
    Math.min(rate * 8, rate * level(t) * Math.exp(-mixAt(t))),
  );
  return {
    name: 'chat-mix',
    requests: arrivals.map((r) => ({
      arrivalS: r.arrivalS,
      serviceS: tokenService(serviceRandom, {
        ...CHAT_TOKENS,
        generatedMedian: CHAT_TOKENS.generatedMedian * Math.exp(mixAt(r.arrivalS)),
      }),
    })),
  };
}

/**
 * Code completion in bursts, like the Azure code trace: bursts of 150-500 requests within 5-20 s,
 * gaps of 30 s to several minutes (exponential, mean 150 s) with a trickle of 0.05 req/s between.
 */
export function codeBursts(seed: number, durationS = 3600): Trace {
  const random = rng(seed ^ 0x7feb352d);
  const out: Request[] = [];
  for (let start = 20 + 60 * random(); start < durationS; start += 30 + exponential(random, 1 / 150)) {
    const size = Math.round(150 + 350 * random());
    const length = 5 + 15 * random();
    for (let i = 0; i < size; i++) out.push({ arrivalS: start + length * random(), serviceS: tokenService(random, CODE_TOKENS) });
  }
  for (let t = exponential(random, 0.05); t < durationS; t += exponential(random, 0.05))
    out.push({ arrivalS: t, serviceS: tokenService(random, CODE_TOKENS) });
  out.sort((a, b) => a.arrivalS - b.arrivalS);
  return { name: 'code-bursts', requests: out.filter((r) => r.arrivalS < durationS) };
}

/**
 * An internal assistant: sessions of 5-40 chat requests spread over 2-10 minutes, starting at
 * random (one every 5 minutes on average), so about 0.1 req/s with idle gaps of seconds to many
 * minutes and no regular period.
 */
export function sessions(seed: number, durationS = 3600): Trace {
  const random = rng(seed ^ 0x2c1b3c6d);
  const out: Request[] = [];
  for (let start = exponential(random, 1 / 300); start < durationS; start += exponential(random, 1 / 300)) {
    const count = 5 + Math.floor(36 * random());
    const length = 120 + 480 * random();
    for (let i = 0; i < count; i++)
      out.push({ arrivalS: start + length * random(), serviceS: tokenService(random, CHAT_TOKENS) });
  }
  out.sort((a, b) => a.arrivalS - b.arrivalS);
  return { name: 'sessions', requests: out.filter((r) => r.arrivalS < durationS) };
}

/** High rate: 20 req/s of short completions, drifting by about 15 % from minute to minute. */
export function highRate(seed: number, durationS = 3600, rate = 20): Trace {
  const random = rng(seed ^ 0x297a2d39);
  const level = drift(random, durationS, 0.15, 0.8);
  const max = rate * 3;
  return {
    name: 'high-rate',
    requests: poisson(seed ^ 0x5f356495, durationS, max, (t) => Math.min(max, rate * level(t)), CODE_TOKENS),
  };
}

/** Minute-long generations at 0.4 req/s, drifting: few requests, each holding a slot for about a minute. */
export function longGeneration(seed: number, durationS = 3600, rate = 0.4): Trace {
  const random = rng(seed ^ 0x68e31da4);
  const level = drift(random, durationS, 0.3, 0.8);
  const max = rate * 4;
  return {
    name: 'long-generation',
    requests: poisson(seed ^ 0x1b56c4e9, durationS, max, (t) => Math.min(max, rate * level(t)), LONG_TOKENS),
  };
}
