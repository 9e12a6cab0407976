// The runs behind bench:decisions: every (trace, seed) is one job that replays the trace under each
// policy once, the model once per objective (its drainSeconds is the objective), and KEDA's queue
// trigger under every setting of keda-tuned's grid (kedaGrid), for keda-tuned (verdict.ts). Jobs run on worker threads.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SimulatedGpu } from './fleet.ts';
import { type Deployed, type ModelReads, type SimulatedSource, kedaBacklogFor, modelPolicy } from './modelPolicy.ts';
import { oracle } from './oracle.ts';
import {
  kedaGrid,
  KEDA_QUEUE_DEFAULT,
  type QueueSetting,
  alwaysOn,
  describeSetting,
  kedaQueue,
  kedaQueueGpu,
  kedaQueueTuned,
  kedaQueueWith,
  type Pause,
} from './policies.ts';
import { type ColdStartSpec, type Policy, type Result, run, summarize } from './simulate.ts';
import type { TimelineEntry } from './timeline.ts';
import type { Ack, NodeBilling } from './fleet.ts';
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
  /** Run keda-tuned's grid too (kedaGrid). */
  readonly grid: boolean;
  /** The pollingIntervals keda-tuned's grid tries (KEDA's default alone when absent). */
  readonly tunedPolling?: readonly number[];
  /** The cold starts' distribution (the production one when absent). */
  readonly coldStart?: ColdStartSpec;
  /** GPUs billed per node (per replica when absent). */
  readonly nodes?: NodeBilling;
  /** Requests one replica serves at once (CONCURRENCY when absent). */
  readonly slots?: number;
  /** Messages a replica's consumer holds at once (slots when absent). */
  readonly prefetch?: number;
  /** When a replica's consumer acknowledges a message (after the work when absent). */
  readonly ack?: Ack;
  /** What the model's source reports of the queue (the management API's RabbitMQ when absent). */
  readonly source?: SimulatedSource;
  /** A GPU source beside the model's queue, reading the GPUs so (none when absent). */
  readonly gpu?: SimulatedGpu;
  /** Consumers each replica opens on the queue, as the model's source counts them (1 when absent). */
  readonly consumersPerReplica?: number;
  /** Moments (seconds) a rollout replaces the scaler at, for the deployed policies (none when absent). */
  readonly restartAtS?: readonly number[];
  /** Moments (seconds) the trigger's settings are edited at, for the deployed policies (none when absent). */
  readonly editAtS?: readonly number[];
  /** Scaler replicas behind KEDA's round robin, for the deployed policies (one when absent). */
  readonly replicas?: number;
  /** The ScaledObject paused at these moments, for the deployed policies (never when absent). */
  readonly pauseAtS?: readonly Pause[];
  /** What the deployed processes keep of a trigger no one asks about, in seconds (STATE_RETENTION_MS's default when absent). */
  readonly retentionS?: number;
  /** Record what the model (run alone) answered at each HPA sync, in its rows' `timeline`. */
  readonly timeline?: boolean;
}

/** One policy's figures on one trace, seed and objective; `setting` for KEDA grid rows. */
export interface Row extends Result {
  readonly objectiveS: number;
  readonly seed: number;
  readonly setting?: QueueSetting;
  /** The model's answers at each HPA sync, when the job asked for them (main.ts takes them out). */
  readonly timeline?: readonly TimelineEntry[];
}

export const GRID_PREFIX = 'grid:';

/** The model with the objective as its drainSeconds, over the trigger metadata `model`. */
function modelAt(
  objectiveS: number,
  model: Readonly<Record<string, string>> = {},
  reads: ModelReads = {},
  onSync?: (entry: TimelineEntry) => void,
): Policy {
  return modelPolicy({ ...model, drainSeconds: String(objectiveS) }, { ...reads, ...(onSync && { onSync }) });
}

/** The deployed policy's name: `model-2-replicas`, `model-restarted`, `model-2-replicas-restarted`, `model-edited`, `model-paused`, and `-store` with a store. */
export function deployedName({ replicas, restartAtS, editAtS = [], pauseAtS = [] }: Deployed, store: boolean): string {
  return `model${replicas > 1 ? `-${replicas}-replicas` : ''}${restartAtS.length > 0 ? '-restarted' : ''}${editAtS.length > 0 ? '-edited' : ''}${pauseAtS.length > 0 ? '-paused' : ''}${store ? '-store' : ''}`;
}

/** Whether a policy is the model deployed (deployedName), not the model run alone. */
function isDeployed(policy: string): boolean {
  return policy.startsWith('model-');
}

/** The model deployed as `deployed`, with its state in memory and in a store. */
function deployedAt(
  objectiveS: number,
  deployed: Deployed,
  model: Readonly<Record<string, string>> = {},
  reads: ModelReads = {},
): Policy[] {
  return [false, true].map((store) =>
    modelPolicy(
      { ...model, drainSeconds: String(objectiveS) },
      { ...reads, name: deployedName(deployed, store), deployment: { ...deployed, store } },
    ),
  );
}

/** The policies whose drainSeconds is the objective: the model, and deployed, its twins with their state in memory and in a store. */
function modelPolicies(
  objectiveS: number,
  model: Readonly<Record<string, string>> = {},
  reads: ModelReads = {},
  deployed?: Deployed,
): Policy[] {
  return [modelAt(objectiveS, model, reads), ...(deployed !== undefined ? deployedAt(objectiveS, deployed, model, reads) : [])];
}

/** The policies of the comparison (keda-tuned is picked from KEDA's grid afterwards); with `ablation`, also keda-queue-tuned. */
export function policies(
  objectiveS = 60,
  ablation = false,
  model: Readonly<Record<string, string>> = {},
  reads: ModelReads = {},
  deployed?: Deployed,
): Policy[] {
  // KEDA's triggers read the queue as its own trigger for the model's source would (Kafka: the lag).
  const backlog = kedaBacklogFor(reads.source);
  return [
    kedaQueue(backlog),
    kedaQueueGpu(reads.gpu, backlog),
    ...(ablation ? [kedaQueueTuned(undefined, backlog)] : []),
    ...modelPolicies(objectiveS, model, reads, deployed),
    alwaysOn(),
    oracle(),
  ];
}

/** The deployment a job asks for, if any (replicas, rollouts, edits or pauses; the retention with one). */
export function jobDeployment(
  job: Pick<Job, 'replicas' | 'restartAtS' | 'editAtS' | 'pauseAtS' | 'retentionS'>,
): Deployed | undefined {
  const replicas = job.replicas ?? 1;
  const restartAtS = job.restartAtS ?? [];
  const editAtS = job.editAtS ?? [];
  const pauseAtS = job.pauseAtS ?? [];
  if (replicas === 1 && restartAtS.length === 0 && editAtS.length === 0 && pauseAtS.length === 0) return undefined;
  return {
    replicas,
    restartAtS,
    editAtS,
    ...(pauseAtS.length > 0 && { pauseAtS }),
    ...(job.retentionS !== undefined && { retentionS: job.retentionS }),
  };
}

export async function runJob(job: Job): Promise<Row[]> {
  const trace = loadTrace(job.trace, job.seed);
  const rows: Row[] = [];
  const add = async (
    policy: Parameters<typeof run>[1],
    objectives: readonly number[],
    setting?: QueueSetting,
    timeline?: readonly TimelineEntry[],
  ) => {
    const outcome = await run(trace, policy, job.seed, job.coldStart, job.slots, job.prefetch ?? job.slots, job.ack, job.nodes);
    for (const objectiveS of objectives)
      rows.push({
        ...summarize(outcome, objectiveS),
        objectiveS,
        seed: job.seed,
        ...(setting && { setting }),
        ...(timeline && { timeline }),
      });
  };
  // The report's policies, in its order; the model's once per objective (its drainSeconds).
  const deployed = jobDeployment(job);
  const reads: ModelReads = { source: job.source, gpu: job.gpu, consumersPerReplica: job.consumersPerReplica };
  for (const policy of policies(job.objectives[0], job.ablation, job.model, reads, deployed)) {
    if (policy.name === 'model') {
      for (const objectiveS of job.objectives) {
        const timeline: TimelineEntry[] | undefined = job.timeline === true ? [] : undefined;
        const alone = modelAt(objectiveS, job.model, reads, timeline && ((entry) => timeline.push(entry)));
        await add(alone, [objectiveS], undefined, timeline);
        if (deployed !== undefined)
          for (const each of deployedAt(objectiveS, deployed, job.model, reads)) await add(each, [objectiveS]);
      }
    } else if (!isDeployed(policy.name)) {
      await add(policy, job.objectives, policy.name === 'keda-queue' ? KEDA_QUEUE_DEFAULT : undefined);
    }
  }
  if (job.grid) {
    for (const setting of kedaGrid(job.tunedPolling)) {
      if (describeSetting(setting) === describeSetting(KEDA_QUEUE_DEFAULT)) continue;
      await add(
        kedaQueueWith(setting, `${GRID_PREFIX}${describeSetting(setting)}`, kedaBacklogFor(job.source)),
        job.objectives,
        setting,
      );
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
