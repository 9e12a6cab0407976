// Printing the benchmark's figures (a plain-text table) and the JSON summary.
import type { RunResult } from './loadgenProtocol.ts';
import type { WakeResult } from './wake.ts';

export interface Measured {
  readonly run: RunResult;
  readonly cpuCores: number;
  readonly rssMb: number;
  /** Scaler only. */
  readonly brokerQueriesPerInterval?: number;
  readonly brokerQueriesPerSecond?: number;
  readonly distinctSources?: number;
  /** Scaler only: from its request-duration histogram (bucket-interpolated). */
  readonly handlerP50Ms?: number;
  readonly handlerP99Ms?: number;
}

export interface SearchStep {
  readonly offeredRps: number;
  readonly achievedRps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly cpuCores: number;
  readonly passed: boolean;
}

const f = (v: number | undefined, digits = 2) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits));

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One row per figure, one column per (repeat, server). */
export function fixedRateTable(pairs: readonly { scaler: Measured; floor: Measured }[]): string {
  const cols = pairs.flatMap((p, i) => [
    { head: pairs.length > 1 ? `scaler #${i + 1}` : 'scaler', m: p.scaler },
    { head: pairs.length > 1 ? `floor #${i + 1}` : 'floor', m: p.floor },
  ]);
  const rows: [string, (m: Measured) => string][] = [
    ['offered req/s', (m) => f(m.run.offeredRps, 0)],
    ['achieved req/s', (m) => f(m.run.achievedRps, 0)],
    ['latency p50 ms', (m) => f(m.run.latency.p50Ms, 3)],
    ['latency p99 ms', (m) => f(m.run.latency.p99Ms, 3)],
    ['latency p99.9 ms', (m) => f(m.run.latency.p999Ms, 3)],
    ['latency max ms', (m) => f(m.run.latency.maxMs, 1)],
    ['send lag p99 ms', (m) => f(m.run.sendLag.p99Ms, 3)],
    ['in-handler p50 ms', (m) => f(m.handlerP50Ms, 3)],
    ['in-handler p99 ms', (m) => f(m.handlerP99Ms, 3)],
    ['errors', (m) => `${m.run.errors}${Object.keys(m.run.errorCodes).length ? ` ${JSON.stringify(m.run.errorCodes)}` : ''}`],
    ['stream errors', (m) => String(m.run.streamErrors)],
    ['broker queries/s', (m) => f(m.brokerQueriesPerSecond, 1)],
    ['broker queries/interval', (m) => f(m.brokerQueriesPerInterval, 1)],
    ['distinct sources', (m) => (m.distinctSources === undefined ? '-' : String(m.distinctSources))],
    ['server RSS MB', (m) => f(m.rssMb, 1)],
    ['server CPU cores', (m) => f(m.cpuCores, 2)],
    ['loadgen CPU cores', (m) => f(m.run.loadgenCpuCores, 2)],
    ['loadgen loop delay p99 ms', (m) => f(m.run.loadgenLoopDelayP99Ms, 2)],
    ['loadgen longest GC ms', (m) => f(m.run.loadgenGcMaxMs, 2)],
  ];
  const width = Math.max(...rows.map(([n]) => n.length)) + 2;
  const colWidth = Math.max(12, ...cols.map((c) => c.head.length + 2));
  const lines = [''.padEnd(width) + cols.map((c) => c.head.padStart(colWidth)).join('')];
  for (const [name, cell] of rows) lines.push(name.padEnd(width) + cols.map((c) => cell(c.m).padStart(colWidth)).join(''));
  return lines.join('\n');
}

export function searchTable(name: string, steps: readonly SearchStep[]): string {
  const lines = [`${name}: offered -> achieved req/s, p50 / p99 ms, errors, server CPU cores`];
  for (const s of steps) {
    lines.push(
      `  ${String(s.offeredRps).padStart(6)} -> ${f(s.achievedRps, 0).padStart(6)}   ${f(s.p50Ms, 2).padStart(7)} / ${f(s.p99Ms, 2).padStart(8)}   ${String(s.errors).padStart(5)}   ${f(s.cpuCores, 2)}   ${s.passed ? 'ok' : 'FAIL'}`,
    );
  }
  const best = [...steps].filter((s) => s.passed).pop();
  lines.push(`  highest rate taken: ${best ? `${f(best.achievedRps, 0)} req/s` : 'none of the steps'}`);
  return lines.join('\n');
}

export function wakeLine(wake: WakeResult): string {
  return `wake latency over ${wake.tries} tries: p50 ${f(wake.latency.p50Ms, 0)} ms, p99 ${f(wake.latency.p99Ms, 0)} ms, max ${f(
    wake.latency.maxMs,
    0,
  )} ms, failures ${wake.failures}`;
}
