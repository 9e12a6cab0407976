// Reading a process from the outside: CPU time and resident memory from /proc (Linux), and
// counters from a Prometheus text exposition.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every mainstream Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcSample {
  /** user + system CPU seconds used so far. */
  readonly cpuSeconds: number;
  readonly rssMb: number;
  /** performance.now() when sampled. */
  readonly atMs: number;
}

/** utime + stime (seconds) from the text of /proc/<pid>/stat. The command name may hold spaces and parens. */
export function parseStatCpuSeconds(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unexpected /proc stat line: ${stat.slice(0, 80)}`);
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

/** VmRSS (MB) from the text of /proc/<pid>/status. */
export function parseStatusRssMb(status: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (match === null) throw new Error('no VmRSS in /proc status');
  return Number(match[1]) / 1024;
}

export function sampleProcess(pid: number): ProcSample {
  return {
    cpuSeconds: parseStatCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8')),
    rssMb: parseStatusRssMb(readFileSync(`/proc/${pid}/status`, 'utf8')),
    atMs: performance.now(),
  };
}

/** CPU use between two samples, in cores (1.0 = one core busy all the time). */
export function cpuCores(before: ProcSample, after: ProcSample): number {
  const wallSeconds = (after.atMs - before.atMs) / 1000;
  return wallSeconds > 0 ? (after.cpuSeconds - before.cpuSeconds) / wallSeconds : Number.NaN;
}

/** Sum of every series of one metric (all label sets) in a Prometheus text exposition. */
export function sumMetric(exposition: string, name: string): number {
  let total = 0;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(name)) continue;
    const next = line.charAt(name.length);
    if (next !== '{' && next !== ' ') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) total += value;
  }
  return total;
}

/** Label values of `label` across the series of one metric. */
export function labelValues(exposition: string, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`${label}="([^"]*)"`);
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const m = re.exec(line);
    if (m === null) continue;
    out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** Cumulative bucket counts (le -> count) of a histogram, summed over all its label sets. */
export function histogramBuckets(exposition: string, name: string): Map<number, number> {
  const buckets = new Map<number, number>();
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}_bucket{`)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return buckets;
}

/** after - before, bucket by bucket (the observations made between two scrapes). */
export function bucketsDiff(before: Map<number, number>, after: Map<number, number>): Map<number, number> {
  return new Map([...after].map(([le, count]) => [le, count - (before.get(le) ?? 0)]));
}

/**
 * Quantile q (0..1) of cumulative buckets, interpolated linearly inside the bucket as
 * Prometheus' histogram_quantile does; the highest finite bound when it falls in +Inf.
 */
export function histogramQuantile(buckets: Map<number, number>, q: number): number {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted[sorted.length - 1]?.[1] ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (bound === Infinity) return prevBound;
      return prevBound + ((bound - prevBound) * (rank - prevCount)) / Math.max(1, count - prevCount);
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}
