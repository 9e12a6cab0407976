// Top self-time functions of a V8 .cpuprofile (from `node --cpu-prof`, e.g. `bench:server
// --profile DIR`): `node bench/server/profileSummary.ts FILE [N]`.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface SelfTime {
  readonly fn: string;
  readonly where: string;
  readonly samples: number;
  readonly share: number;
}

/** Self samples per function (name + file:line), largest first. */
export function selfTimes(profile: CpuProfile): SelfTime[] {
  const bySite = new Map<string, { fn: string; where: string; samples: number }>();
  let total = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    total += hits;
    const { functionName, url, lineNumber } = node.callFrame;
    const path = url.replace(/^file:\/\//, '');
    // Our code as src/ (bench:server's compiled copy runs from a temporary dist/), dependencies
    // as node_modules/<package>/..., Node's own modules as node:...
    const file = path.includes('/node_modules/')
      ? path.replace(/^.*\/node_modules\//, 'node_modules/')
      : path.replace(/^.*\/(src|bench|dist)\//, (_, dir: string) => `${dir === 'dist' ? 'src' : dir}/`);
    const where = file ? `${file}:${lineNumber + 1}` : '';
    const key = `${functionName}|${where}`;
    const entry = bySite.get(key) ?? { fn: functionName || '(anonymous)', where, samples: 0 };
    entry.samples += hits;
    bySite.set(key, entry);
  }
  return [...bySite.values()].map((e) => ({ ...e, share: total ? e.samples / total : 0 })).sort((a, b) => b.samples - a.samples);
}

/** Self share per area: our code (src/), each dependency under node_modules, Node internals, idle/GC. */
export function byArea(rows: readonly SelfTime[]): Map<string, number> {
  const areas = new Map<string, number>();
  for (const r of rows) {
    let area = 'node internals (native)';
    if (r.where.startsWith('src/')) area = r.where.split(':')[0]!;
    else if (r.where.startsWith('node:')) area = `node:${r.where.replace(/^node:(internal\/)?/, '').replace(/[/:].*$/, '')}`;
    else if (r.where.startsWith('node_modules/'))
      area = r.where
        .split('/')
        .slice(0, r.where.split('/')[1]!.startsWith('@') ? 3 : 2)
        .join('/');
    else if (r.fn === '(idle)' || r.fn === '(garbage collector)' || r.fn === '(program)') area = r.fn;
    areas.set(area, (areas.get(area) ?? 0) + r.share);
  }
  return new Map([...areas].sort((a, b) => b[1] - a[1]));
}

if (import.meta.main) {
  const [file, n, ...rest] = process.argv.slice(2);
  if (file === undefined || rest.length > 0 || (n !== undefined && !/^[1-9]\d*$/.test(n))) {
    process.stderr.write('usage: node bench/server/profileSummary.ts FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const rows = selfTimes(profile);
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  const idle = rows.filter((r) => r.fn === '(idle)').reduce((sum, r) => sum + r.share, 0);
  process.stdout.write(
    `${file}: ${seconds.toFixed(1)} s profiled, ${(seconds * (1 - idle)).toFixed(1)} s busy\n\nself time by area (share, seconds):\n`,
  );
  for (const [area, share] of byArea(rows))
    if (share >= 0.005)
      process.stdout.write(
        `  ${(share * 100).toFixed(1).padStart(5)}%  ${(share * seconds).toFixed(2).padStart(6)} s  ${area}\n`,
      );
  process.stdout.write(`\ntop functions by self time:\n`);
  for (const r of rows.slice(0, Number(n ?? 30))) {
    process.stdout.write(`  ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.fn}  ${r.where}\n`);
  }
}
