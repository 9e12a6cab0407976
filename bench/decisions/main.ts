// npm run bench:decisions [-- --trace FILE.csv ...] [--json FILE] [--seed N] [--objective SECONDS] [--ablation]
// Replays traces through every policy and prints GPU-seconds, cold starts, queue waits and the
// share of requests that waited longer than the objective. The objective is also the model's
// drainSeconds (the product's latency objective); KEDA's triggers have no such knob.
// --ablation adds 'keda-queue-tuned' (KEDA's queue trigger with the model's ScaledObject
// settings), to separate what the model wins from what the cooldown and HPA behavior win.
//
// The built-in set includes the Azure LLM inference trace 2023 (code), from Microsoft's
// AzurePublicDataset, CC-BY 4.0: Patel et al., "Splitwise: Efficient generative LLM inference
// using phase splitting", ISCA 2024.
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { modelPolicy } from './modelPolicy.ts';
import { oracle } from './oracle.ts';
import { alwaysOn, kedaQueue, kedaQueueGpu, kedaQueueTuned } from './policies.ts';
import { OBJECTIVE_S, type Policy, type Result, simulate } from './simulate.ts';
import { CONCURRENCY, DECODE_TOKENS_PER_SECOND, PREFILL_TOKENS_PER_SECOND, type Trace, diurnal, loadAzureCsv, onOff, periodicBatch, poissonSteady } from './traces.ts';

export const AZURE_TRACE = fileURLToPath(new URL('../../../shared/data/azure-llm-2023-code.csv', import.meta.url));

/** The five policies of the comparison; with `ablation`, also keda-queue-tuned. */
export function policies(objectiveS = OBJECTIVE_S, ablation = false): Policy[] {
  return [
    kedaQueue(),
    kedaQueueGpu(),
    ...(ablation ? [kedaQueueTuned()] : []),
    modelPolicy({ drainSeconds: String(objectiveS) }),
    alwaysOn(),
    oracle(),
  ];
}

export function builtInTraces(seed: number): Trace[] {
  const traces: Trace[] = [];
  const azure = process.env.AZURE_TRACE ?? AZURE_TRACE;
  if (existsSync(azure)) traces.push(loadAzureCsv(azure, 'azure-code-2023'));
  else console.error(`note: ${azure} not found; set AZURE_TRACE to include the Azure trace`);
  traces.push(poissonSteady(seed), onOff(seed), diurnal(seed), periodicBatch(seed));
  return traces;
}

export interface Args {
  readonly traces: readonly string[];
  readonly json: string | undefined;
  readonly seed: number;
  readonly objectiveS: number;
  readonly ablation: boolean;
}

const USAGE = 'usage: main.ts [--trace FILE.csv]... [--json FILE] [--seed N] [--objective SECONDS] [--ablation]';

export function parseArgs(argv: readonly string[]): Args {
  const traces: string[] = [];
  let json: string | undefined;
  let seed = 1;
  let objectiveS = OBJECTIVE_S;
  let ablation = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value; ${USAGE}`);
      return v;
    };
    const number = (check: (n: number) => boolean, allowed: string) => {
      const v = value();
      const n = v.trim() === '' ? Number.NaN : Number(v);
      if (!check(n)) throw new Error(`${a} ${JSON.stringify(v)}: want ${allowed}`);
      return n;
    };
    if (a === '--trace') traces.push(value());
    else if (a === '--json') json = value();
    else if (a === '--seed') seed = number(Number.isSafeInteger, 'an integer');
    else if (a === '--objective') objectiveS = number((n) => Number.isFinite(n) && n > 0, 'a number of seconds > 0');
    else if (a === '--ablation') ablation = true;
    else throw new Error(`unknown argument ${a}; ${USAGE}`);
  }
  return { traces, json, seed, objectiveS, ablation };
}

function table(results: readonly Result[], objectiveS: number): string {
  const head = ['trace', 'policy', 'GPU-s', 'cold starts', 'wait p50 s', 'wait p95 s', 'wait p99 s', `> ${objectiveS} s`];
  const rows = results.map((r) => [
    r.trace,
    r.policy,
    String(r.gpuSeconds),
    String(r.coldStarts),
    r.waitP50.toFixed(1),
    r.waitP95.toFixed(1),
    r.waitP99.toFixed(1),
    `${(r.overObjectiveShare * 100).toFixed(2)} %`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** (c) against (a) and (e), per trace; and against keda-queue-tuned when it ran. */
function verdicts(results: readonly Result[]): string[] {
  const out: string[] = [];
  for (const trace of new Set(results.map((r) => r.trace))) {
    const get = (p: string) => results.find((r) => r.trace === trace && r.policy === p);
    const [a, c, e, t] = [get('keda-queue'), get('model'), get('oracle'), get('keda-queue-tuned')];
    if (t && c) {
      out.push(
        `${trace}: model vs keda-queue-tuned (same ScaledObject settings): GPU-s ${pct(c.gpuSeconds / t.gpuSeconds - 1)}, cold starts ${t.coldStarts} -> ${c.coldStarts}, ` +
          `wait p95 ${t.waitP95.toFixed(1)} -> ${c.waitP95.toFixed(1)} s, over-objective share ${(t.overObjectiveShare * 100).toFixed(2)} % -> ${(c.overObjectiveShare * 100).toFixed(2)} %`,
      );
    }
    if (!a || !c || !e) continue;
    const gpu = 1 - c.gpuSeconds / a.gpuSeconds;
    const ok = c.gpuSeconds <= a.gpuSeconds && c.overObjectiveShare <= a.overObjectiveShare;
    out.push(
      `${trace}: model vs keda-queue: GPU-s ${pct(-gpu)}, over-objective share ${(a.overObjectiveShare * 100).toFixed(2)} % -> ${(c.overObjectiveShare * 100).toFixed(2)} %` +
        ` (${ok ? 'no worse on both' : 'WORSE on one'}); vs oracle: GPU-s ${pct(c.gpuSeconds / e.gpuSeconds - 1)}, over-objective ${pts(c.overObjectiveShare - e.overObjectiveShare)}`,
    );
  }
  return out;
}

function pts(x: number): string {
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} pts`;
}

function pct(x: number): string {
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
}

async function main(): Promise<void> {
  const { traces: files, json, seed, objectiveS, ablation } = parseArgs(process.argv.slice(2));
  const traces = files.length > 0 ? files.map((f) => loadAzureCsv(f)) : builtInTraces(seed);
  const list = policies(objectiveS, ablation);
  const results: Result[] = [];
  for (const trace of traces) {
    for (const policy of list) results.push(await simulate(trace, policy, seed, objectiveS));
  }
  console.log(
    `Service time = ContextTokens / ${PREFILL_TOKENS_PER_SECOND} tok/s + GeneratedTokens / ${DECODE_TOKENS_PER_SECOND} tok/s; ${CONCURRENCY} requests per replica; ` +
      `cold start lognormal (p50 23 s, p99 52 s); objective ${objectiveS} s (the model's drainSeconds); seed ${seed}.`,
  );
  for (const p of list) console.log(`  ${p.name}: ${p.setup}`);
  console.log('');
  console.log(table(results, objectiveS));
  console.log('');
  for (const v of verdicts(results)) console.log(v);
  if (traces.some((t) => t.name === 'azure-code-2023')) {
    console.log('\nAzure trace: Azure LLM inference trace 2023 (code), AzurePublicDataset, CC-BY 4.0; Patel et al., "Splitwise", ISCA 2024.');
  }
  if (json !== undefined) writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
