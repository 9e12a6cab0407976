// npm run bench:decisions:settings
// Which ScaledObject settings (cooldownPeriod, HPA behavior) to recommend with this scaler: runs
// the model under each candidate on the built-in traces, seeds 1-3, objectives 60, 30 and 15 s,
// against KEDA's queue trigger (keda-queue), and prints one row per candidate and objective.
// The chosen one is RECOMMENDED_SCALED_OBJECT (recommended.ts); docs/model.md shows the output.
import { fileURLToPath } from 'node:url';
import type { ScalingRules } from './hpa.ts';
import { builtInTraceSpecs, loadTrace } from './matrix.ts';
import { modelPolicy } from './modelPolicy.ts';
import { kedaQueue } from './policies.ts';
import { RECOMMENDED_SCALED_OBJECT, type ScaledObjectSettings } from './recommended.ts';
import { OBJECTIVES, SEEDS } from './main.ts';
import { type Result, simulate } from './simulate.ts';

const up = (policies: ScalingRules['policies']): ScalingRules => ({
  stabilizationWindowSeconds: 0,
  selectPolicy: 'Max',
  policies,
});
const down = (
  windowS: number,
  policies: ScalingRules['policies'] = [{ type: 'Percent', value: 100, periodSeconds: 15 }],
): ScalingRules => ({
  stabilizationWindowSeconds: windowS,
  selectPolicy: 'Max',
  policies,
});
const UP_FOLLOW = up([{ type: 'Percent', value: 1000, periodSeconds: 15 }]);
const UP_DOUBLE_OR_8 = up([
  { type: 'Percent', value: 100, periodSeconds: 15 },
  { type: 'Pods', value: 8, periodSeconds: 15 },
]);
const HALF_PER_MINUTE = [{ type: 'Percent', value: 50, periodSeconds: 60 }] as const;

export const CANDIDATES: readonly { readonly name: string; readonly so: ScaledObjectSettings }[] = [
  { name: 'recommended: cooldown 30, up x11/15 s, down at once', so: RECOMMENDED_SCALED_OBJECT },
  { name: 'same, cooldown 0', so: { ...RECOMMENDED_SCALED_OBJECT, cooldownSeconds: 0 } },
  { name: 'same, pollingInterval 15', so: { ...RECOMMENDED_SCALED_OBJECT, pollingIntervalSeconds: 15 } },
  {
    name: 'up x2 or +8/15 s, down at once',
    so: { cooldownSeconds: 30, behavior: { scaleUp: UP_DOUBLE_OR_8, scaleDown: down(0) } },
  },
  { name: 'up x11/15 s, down window 30 s', so: { cooldownSeconds: 30, behavior: { scaleUp: UP_FOLLOW, scaleDown: down(30) } } },
  {
    name: 'up x2 or +8, down window 60 s, 50 %/min',
    so: { cooldownSeconds: 30, behavior: { scaleUp: UP_DOUBLE_OR_8, scaleDown: down(60, HALF_PER_MINUTE) } },
  },
  {
    name: 'up x2 or +8, down window 120 s, 50 %/min',
    so: { cooldownSeconds: 30, behavior: { scaleUp: UP_DOUBLE_OR_8, scaleDown: down(120, HALF_PER_MINUTE) } },
  },
  {
    name: 'up x2 or +8, down window 300 s (HPA default)',
    so: { cooldownSeconds: 30, behavior: { scaleUp: UP_DOUBLE_OR_8, scaleDown: down(300) } },
  },
];

interface Row {
  readonly candidate: string;
  readonly objectiveS: number;
  /** Model GPU-seconds against keda-queue's, summed over the traces and seeds, and on the Azure trace alone. */
  readonly gpuVsQueue: number;
  readonly azureGpuVsQueue: number | undefined;
  /** The model's share over the objective on the Azure trace (mean over seeds). */
  readonly azureOver: number | undefined;
  /** The model's share over the objective, mean over every trace and seed. */
  readonly meanOver: number;
  /** (trace, seed) runs where the model is no worse than keda-queue on GPU-s and on the share over the objective. */
  readonly noWorse: number;
  readonly runs: number;
}

async function rows(): Promise<{ rows: Row[]; queueAzureOver: Map<number, number>; queueMeanOver: Map<number, number> }> {
  const out: Row[] = [];
  const queue = new Map<string, Result>();
  const queueAzureOver = new Map<number, number>();
  const queueMeanOver = new Map<number, number>();
  const specs = builtInTraceSpecs();
  const traces = SEEDS.map((seed) => ({ seed, traces: specs.map((spec) => loadTrace(spec, seed)) }));
  for (const objectiveS of OBJECTIVES) {
    for (const { seed, traces: list } of traces) {
      for (const trace of list) {
        const r = await simulate(trace, kedaQueue(), seed, objectiveS);
        queue.set(`${objectiveS}|${seed}|${trace.name}`, r);
        queueMeanOver.set(objectiveS, (queueMeanOver.get(objectiveS) ?? 0) + r.overObjectiveShare);
        if (trace.name === 'azure-code-2023')
          queueAzureOver.set(objectiveS, (queueAzureOver.get(objectiveS) ?? 0) + r.overObjectiveShare / SEEDS.length);
      }
    }
    for (const { name, so } of CANDIDATES) {
      let gpu = 0;
      let queueGpu = 0;
      let azureGpu = 0;
      let azureQueueGpu = 0;
      let azureOver = 0;
      let azureRuns = 0;
      let over = 0;
      let noWorse = 0;
      let runs = 0;
      for (const { seed, traces: list } of traces) {
        for (const trace of list) {
          const m = await simulate(trace, modelPolicy({ drainSeconds: String(objectiveS) }, { so }), seed, objectiveS);
          const q = queue.get(`${objectiveS}|${seed}|${trace.name}`)!;
          gpu += m.gpuSeconds;
          queueGpu += q.gpuSeconds;
          over += m.overObjectiveShare;
          runs++;
          if (m.gpuSeconds <= q.gpuSeconds && m.overObjectiveShare <= q.overObjectiveShare) noWorse++;
          if (trace.name === 'azure-code-2023') {
            azureGpu += m.gpuSeconds;
            azureQueueGpu += q.gpuSeconds;
            azureOver += m.overObjectiveShare;
            azureRuns++;
          }
        }
      }
      out.push({
        candidate: name,
        objectiveS,
        gpuVsQueue: gpu / queueGpu - 1,
        azureGpuVsQueue: azureRuns > 0 ? azureGpu / azureQueueGpu - 1 : undefined,
        azureOver: azureRuns > 0 ? azureOver / azureRuns : undefined,
        meanOver: over / runs,
        noWorse,
        runs,
      });
    }
  }
  const all = SEEDS.length * traces[0]!.traces.length;
  for (const [k, v] of queueMeanOver) queueMeanOver.set(k, v / all);
  return { rows: out, queueAzureOver, queueMeanOver };
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(0)} %`;

async function main(): Promise<void> {
  const { rows: list, queueAzureOver, queueMeanOver } = await rows();
  console.log(
    `The model under each ScaledObject candidate against keda-queue; built-in traces, seeds ${SEEDS.join(', ')}; pollingInterval 30 s unless named.`,
  );
  console.log(
    "GPU-s: the model's sum over traces and seeds against keda-queue's. no worse: (trace, seed) runs where the model is no worse on GPU-s and on the share over the objective.\n",
  );
  console.log(
    '| candidate | objective | GPU-s, all traces | GPU-s, Azure | > objective, mean of traces (keda-queue) | > objective, Azure (keda-queue) | no worse than keda-queue |',
  );
  console.log('|:--|--:|--:|--:|--:|--:|--:|');
  for (const r of list) {
    const azureOver =
      r.azureOver === undefined
        ? 'n/a'
        : `${(r.azureOver * 100).toFixed(2)} % (${((queueAzureOver.get(r.objectiveS) ?? 0) * 100).toFixed(2)} %)`;
    const azureGpu = r.azureGpuVsQueue === undefined ? 'n/a' : pct(r.azureGpuVsQueue);
    const meanOver = `${(r.meanOver * 100).toFixed(2)} % (${((queueMeanOver.get(r.objectiveS) ?? 0) * 100).toFixed(2)} %)`;
    console.log(
      `| ${r.candidate} | ${r.objectiveS} s | ${pct(r.gpuVsQueue)} | ${azureGpu} | ${meanOver} | ${azureOver} | ${r.noWorse} / ${r.runs} |`,
    );
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
