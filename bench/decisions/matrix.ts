// The runs behind bench:decisions: every (trace, seed) is one job that replays the trace under each
// policy once, the model once per objective (its drainSeconds is the objective), and KEDA's queue
// trigger under every setting of KEDA_GRID, for keda-tuned (tuned.ts). Jobs run on worker threads.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type SimulatedSource, modelPolicy } from './modelPolicy.ts';
import { oracle } from './oracle.ts';
import {
  KEDA_GRID,
  KEDA_QUEUE_DEFAULT,
  type QueueSetting,
  alwaysOn,
  describeSetting,
  kedaQueue,
  kedaQueueGpu,
  kedaQueueTuned,
  kedaQueueWith,
} from './policies.ts';
import { type ColdStartSpec, type Policy, type Result, run, summarize } from './simulate.ts';
import {
  type Trace,
  chatMix,
  chatSteady,
  codeBursts,
  diurnal,
  loadAzureCsv,
  longGeneration,
  onOff,
  periodicBatch,
  poissonSteady,
  sessions,
  highRate,
} from './traces.ts';

export const AZURE_TRACE = fileURLToPath(new URL('../../../shared/data/azure-llm-2023-code.csv', import.meta.url));

/** The seeded synthetic family, by name (each about an hour long unless given a duration). */
export const SYNTHETIC: Readonly<Record<string, (seed: number, durationS?: number) => Trace>> = {
  'poisson-steady': poissonSteady,
  'on-off': onOff,
  diurnal,
  'periodic-batch': periodicBatch,
  'chat-steady': chatSteady,
  'chat-mix': chatMix,
  'code-bursts': codeBursts,
  sessions,
  'high-rate': highRate,
  'long-generation': longGeneration,
};

/** A trace to replay: a synthetic one by name (`hours` long, about one when absent), or a CSV in the Azure format. */
export type TraceSpec =
  { readonly synthetic: string; readonly hours?: number } | { readonly file: string; readonly name?: string };

/** The Azure code trace (when present) and the synthetic family, `hours` long (the Azure trace stays as recorded). */
export function builtInTraceSpecs(hours?: number): TraceSpec[] {
  const azure = process.env.AZURE_TRACE ?? AZURE_TRACE;
  const specs: TraceSpec[] = [];
  if (existsSync(azure)) specs.push({ file: azure, name: 'azure-code-2023' });
  else console.error(`note: ${azure} not found; set AZURE_TRACE to include the Azure trace`);
  return [...specs, ...Object.keys(SYNTHETIC).map((synthetic) => ({ synthetic, ...(hours !== undefined && { hours }) }))];
}

export function loadTrace(spec: TraceSpec, seed: number): Trace {
  if ('file' in spec) return loadAzureCsv(spec.file, spec.name);
  const make = SYNTHETIC[spec.synthetic];
  if (make === undefined) throw new Error(`unknown trace ${spec.synthetic}; known: ${Object.keys(SYNTHETIC).join(', ')}`);
  return spec.hours === undefined ? make(seed) : make(seed, spec.hours * 3600);
}

export interface Job {
  readonly trace: TraceSpec;
  readonly seed: number;
  readonly objectives: readonly number[];
  readonly ablation: boolean;
  /** Extra trigger metadata for the model (e.g. lateRequestCost). */
  readonly model?: Readonly<Record<string, string>>;
  /** Run KEDA_GRID too (for keda-tuned). */
  readonly grid: boolean;
  /** The cold starts' distribution (the production one when absent). */
  readonly coldStart?: ColdStartSpec;
  /** Requests one replica serves at once (CONCURRENCY when absent). */
  readonly slots?: number;
  /** What the model's source reports of the queue (the management API's RabbitMQ when absent). */
  readonly source?: SimulatedSource;
  /** Moments (seconds) to restart the scaler at, for the model-restarted policies (none when absent). */
  readonly restartAtS?: readonly number[];
}

/** One policy's figures on one trace, seed and objective; `setting` for KEDA grid rows. */
export interface Row extends Result {
  readonly objectiveS: number;
  readonly seed: number;
  readonly setting?: QueueSetting;
}

export const GRID_PREFIX = 'grid:';

/** The model with the objective as its drainSeconds, over the trigger metadata `model`. */
function modelAt(objectiveS: number, model: Readonly<Record<string, string>> = {}, source?: SimulatedSource): Policy {
  return modelPolicy({ ...model, drainSeconds: String(objectiveS) }, { source });
}

/** The restart policies' names: the scaler replaced at the job's moments, its state in memory or in a store. */
export const RESTARTED = { memory: 'model-restarted', store: 'model-restarted-store' } as const;

export function isRestarted(policy: string): boolean {
  return policy === RESTARTED.memory || policy === RESTARTED.store;
}

/** The model restarted at `atS`, forgetting (memory) or reading back what it published (store). */
function restartedAt(
  objectiveS: number,
  atS: readonly number[],
  model: Readonly<Record<string, string>> = {},
  source?: SimulatedSource,
): Policy[] {
  return (['memory', 'store'] as const).map((kind) =>
    modelPolicy(
      { ...model, drainSeconds: String(objectiveS) },
      { source, name: RESTARTED[kind], restart: { atS, store: kind === 'store' } },
    ),
  );
}

/** The policies whose drainSeconds is the objective: the model, and with restarts its restarted twins. */
function modelPolicies(
  objectiveS: number,
  model: Readonly<Record<string, string>> = {},
  source?: SimulatedSource,
  restartAtS: readonly number[] = [],
): Policy[] {
  return [
    modelAt(objectiveS, model, source),
    ...(restartAtS.length > 0 ? restartedAt(objectiveS, restartAtS, model, source) : []),
  ];
}

/** The policies of the comparison (keda-tuned is picked from KEDA's grid afterwards); with `ablation`, also keda-queue-tuned. */
export function policies(
  objectiveS = 60,
  ablation = false,
  model: Readonly<Record<string, string>> = {},
  source?: SimulatedSource,
  restartAtS: readonly number[] = [],
): Policy[] {
  return [
    kedaQueue(),
    kedaQueueGpu(),
    ...(ablation ? [kedaQueueTuned()] : []),
    ...modelPolicies(objectiveS, model, source, restartAtS),
    alwaysOn(),
    oracle(),
  ];
}

export async function runJob(job: Job): Promise<Row[]> {
  const trace = loadTrace(job.trace, job.seed);
  const rows: Row[] = [];
  const add = async (policy: Parameters<typeof run>[1], objectives: readonly number[], setting?: QueueSetting) => {
    const outcome = await run(trace, policy, job.seed, job.coldStart, job.slots);
    for (const objectiveS of objectives)
      rows.push({ ...summarize(outcome, objectiveS), objectiveS, seed: job.seed, ...(setting && { setting }) });
  };
  // The report's policies, in its order; the model's once per objective (its drainSeconds).
  for (const policy of policies(job.objectives[0], job.ablation, job.model, job.source, job.restartAtS)) {
    if (policy.name === 'model') {
      for (const objectiveS of job.objectives) {
        for (const each of modelPolicies(objectiveS, job.model, job.source, job.restartAtS)) await add(each, [objectiveS]);
      }
    } else if (!isRestarted(policy.name)) {
      await add(policy, job.objectives, policy.name === 'keda-queue' ? KEDA_QUEUE_DEFAULT : undefined);
    }
  }
  if (job.grid) {
    for (const setting of KEDA_GRID) {
      if (describeSetting(setting) === describeSetting(KEDA_QUEUE_DEFAULT)) continue;
      await add(kedaQueueWith(setting, `${GRID_PREFIX}${describeSetting(setting)}`), job.objectives, setting);
    }
  }
  return rows;
}

/** Runs the jobs on up to `threads` worker threads (1: in this thread), in the order given. */
export async function runJobs(jobs: readonly Job[], threads = Math.min(availableParallelism(), jobs.length)): Promise<Row[][]> {
  if (threads <= 1) {
    const out: Row[][] = [];
    for (const job of jobs) out.push(await runJob(job));
    return out;
  }
  const out = new Array<Row[]>(jobs.length);
  let next = 0;
  const workerUrl = new URL('./worker.ts', import.meta.url);
  await Promise.all(
    Array.from({ length: threads }, async () => {
      const worker = new Worker(workerUrl);
      try {
        while (next < jobs.length) {
          const i = next++;
          out[i] = await new Promise<Row[]>((resolve, reject) => {
            worker.once('message', resolve);
            worker.once('error', reject);
            worker.postMessage(jobs[i]);
          });
          worker.removeAllListeners('error');
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
  return out;
}
