// npm run bench:decisions [-- --trace FILE.csv|DIR ...] [--json FILE] [--seed N | --seeds FROM-TO] [--objective SECONDS] [--late-cost GPU_SECONDS] [--cold-start P50,P99] [--nodes RETAIN,BOOT] [--slots N] [--prefetch N] [--ack before|after] [--model KEY=VALUE]... [--source KIND] [--gpu share|nvml] [--consumers-per-replica N] [--hours N] [--restart-at S[,S...]] [--edit-at S[,S...]] [--pause-at S:D[,S:D...]] [--retention S] [--replicas N] [--timeline FILE.csv] [--ablation] [--tuned-polling S[,S...]] [--threads N]
// Replays traces through every policy and prints GPU-seconds, cold starts, queue waits and the
// share of requests that waited longer than the objective, then the bar the model is held to
// (verdict.ts). By default: the Azure code trace and the synthetic family, seeds 1-3, objectives
// 60, 30 and 15 s; --seed and --objective pick one. The objective is also the model's
// drainSeconds (the product's latency objective); KEDA's triggers have no such knob, keda-tuned is
// tuned per objective in hindsight. --cold-start draws the replicas' cold starts from another
// lognormal (seconds; default 23,52), for workloads whose model loads slower. --nodes RETAIN,BOOT
// bills GPU nodes, one a replica, instead of replicas: a node stays RETAIN s after its replica is
// gone (the Cluster Autoscaler's scale-down-unneeded-time: 600), where the next replica starts
// without a node of its own, and a replica asked for with none idle waits BOOT s for a node
// first (fleet.ts NodeBilling); the report's GPU-seconds are then node-seconds. --slots serves N
// requests at once per replica (default 4), and tells the model so (messagesPerReplica N, as a
// user sets it to the replica's prefetch). --model KEY=VALUE sets any trigger metadata of the
// model (after the others: `--slots 16 --model messagesPerReplica=5` replays a trigger whose
// messagesPerReplica is left below the replica's prefetch). --prefetch N lets each replica's
// consumer hold N messages (default: its slots), the ones past its slots waiting inside it, where
// the broker counts them unacknowledged (a Celery worker's default prefetch is 4 per process; the
// model is told nothing). --ack before acknowledges each message as its replica starts it, not
// once served (Celery's default early acknowledgment: the broker then counts only the prefetched
// ones unacknowledged, and its ack counter counts starts). --source KIND: what the model's source
// reports of the queue, as each source reports it (rabbitmq, the management API, by default;
// rabbitmq-stats, the same figures moving every 5 s as a broker's statistics do; rabbitmq-amqp,
// sqs, kafka; kafka-commits, the lag as consumers that commit every 5 s leave it; modelPolicy.ts). --gpu share|nvml blends a GPU source into the model's trigger (the
// default query), reading each ready GPU's busy slots over its slots, or NVML's utilisation, a GPU
// whole while any request runs on it, scraped every 15 s. --consumers-per-replica N: the broker
// counts N consumers a ready replica (a worker with a channel per thread; the model is told with
// --model consumersPerReplica=N). --restart-at S,... replaces the scaler's process at
// those moments (seconds into each trace: a rollout, an eviction), --edit-at S,... edits the
// trigger's settings at those moments (its coldStartPriorSeconds), --pause-at S:D,... pauses the
// ScaledObject at S for D seconds (KEDA's paused annotation: nothing asked, the replicas kept),
// --retention S sets how long the scaler keeps what a trigger no one asks about learned
// (STATE_RETENTION_MS; 1800 forgets it as the idle sweep does), --replicas N runs N scaler
// processes behind KEDA's round robin: each adds two policies, the model so deployed with its state
// in memory ('model-restarted', 'model-2-replicas', ...) and with a state store ('...-store'), and
// a table of what each cost against the model run alone. --timeline FILE.csv writes what the
// model answered at each HPA sync of every run (the fleet, the queue, the terms behind the answer;
// timeline.ts). --ablation adds 'keda-queue-tuned' (KEDA's queue trigger with
// the model's ScaledObject settings). --tuned-polling 10,30 lets keda-tuned's grid try those
// pollingIntervals too (the issue's grid keeps KEDA's default 30 s; a shorter one wakes a
// ScaledObject at zero sooner, as the model's stream does).
//
// The built-in set includes the Azure LLM inference trace 2023 (code), from Microsoft's
// AzurePublicDataset, CC-BY 4.0: Patel et al., "Splitwise: Efficient generative LLM inference
// using phase splitting", ISCA 2024.
import { accessSync, constants, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs as parseFlags } from 'node:util';
import { scalingFields } from '../../src/trigger/fields.ts';
import type { Ack, NodeBilling } from './fleet.ts';
import { POLLING_INTERVAL_S, type Pause } from './policies.ts';
import {
  AZURE_TRACE,
  type Job,
  type Row,
  type TraceSpec,
  builtInTraceSpecs,
  jobDeployment,
  policies,
  runJobs,
} from './matrix.ts';
import { SIMULATED_GPU, type SimulatedGpu } from './fleet.ts';
import { SIMULATED_SOURCES, type SimulatedSource, describeDeployment } from './modelPolicy.ts';
import { type ColdStartSpec, LATE_EPISODES_KEPT, LATE_EPISODE_GAP_S, PRODUCTION_COLD_START } from './simulate.ts';
import { CONCURRENCY, DECODE_TOKENS_PER_SECOND, PREFILL_TOKENS_PER_SECOND } from './traces.ts';
import { type Timeline, timelineCsv } from './timeline.ts';
import { barTable, countTable, deploymentTable, lateEpisodeLines, tunedSettings, verdicts, withKedaTuned } from './verdict.ts';

export { AZURE_TRACE } from './matrix.ts';

export const OBJECTIVES = [60, 30, 15] as const;
export const SEEDS = [1, 2, 3] as const;
/** Seeds one --seeds range may hold: each costs about 25 s of one core (every trace, keda-tuned's grid included). */
const MAX_SEEDS = 100;
/** Beyond this many seeds the bar is counted per row instead of listed per seed. */
const LISTED_SEEDS = 3;
/** --hours: the longest synthetic traces (a day). */
const MAX_HOURS = 24;
/** --retention: STATE_RETENTION_MS's least value, in seconds (the idle sweep's 30 minutes). */
const MIN_RETENTION_S = 1800;
/** --replicas: the most scaler processes behind KEDA's round robin. */
const MAX_SCALER_REPLICAS = 8;

export interface Args {
  readonly traces: readonly string[];
  readonly json: string | undefined;
  /** Where to write the model's answers at each HPA sync (CSV), if anywhere. */
  readonly timeline: string | undefined;
  readonly seeds: readonly number[];
  readonly objectives: readonly number[];
  readonly ablation: boolean;
  readonly threads: number | undefined;
  /** The model's lateRequestCost (its default when undefined). */
  readonly lateCost: number | undefined;
  readonly coldStart: ColdStartSpec;
  /** GPUs billed per node (--nodes), or per replica when undefined. */
  readonly nodes: NodeBilling | undefined;
  /** Requests one replica serves at once (CONCURRENCY when undefined). */
  readonly slots: number | undefined;
  /** Messages a replica's consumer prefetches (its slots when undefined). */
  readonly prefetch: number | undefined;
  /** When a replica's consumer acknowledges a message (after the work when undefined). */
  readonly ack: Ack | undefined;
  /** Trigger metadata for the model, over what the other flags set. */
  readonly metadata: Readonly<Record<string, string>>;
  /** What the model's source reports (the management API's RabbitMQ when undefined). */
  readonly source: SimulatedSource | undefined;
  /** A GPU source beside the model's queue, reading the GPUs so (none when undefined). */
  readonly gpu: SimulatedGpu | undefined;
  /** Consumers each replica opens on the queue, as the model's source counts them (1 when undefined). */
  readonly consumersPerReplica: number | undefined;
  /** How long the synthetic traces run (an hour when undefined). */
  readonly hours: number | undefined;
  /** Moments (seconds into each trace) to restart the scaler at; none when empty. */
  readonly restartAtS: readonly number[];
  /** Moments (seconds into each trace) to edit the trigger's settings at; none when empty. */
  readonly editAtS: readonly number[];
  /** Scaler replicas behind KEDA's round robin (1 when undefined). */
  readonly replicas: number | undefined;
  /** When the ScaledObject is paused, and for how long; none when empty. */
  readonly pauseAtS: readonly Pause[];
  /** STATE_RETENTION_MS of the deployed processes, in seconds (its default when undefined). */
  readonly retentionS: number | undefined;
  /** pollingIntervals keda-tuned's grid tries (KEDA's default 30 s alone when empty). */
  readonly tunedPolling: readonly number[];
}

const USAGE =
  'usage: main.ts [--trace FILE.csv|DIR]... [--json FILE] [--seed N | --seeds FROM-TO] [--objective SECONDS] [--late-cost GPU_SECONDS] [--cold-start P50,P99] [--nodes RETAIN,BOOT] [--slots N] [--prefetch N] [--ack before|after] [--model KEY=VALUE]... [--source KIND] [--gpu share|nvml] [--consumers-per-replica N] [--hours N] [--restart-at S[,S...]] [--edit-at S[,S...]] [--pause-at S:D[,S:D...]] [--retention S] [--replicas N] [--timeline FILE.csv] [--ablation] [--tuned-polling S[,S...]] [--threads N]';

/** A flag's value as a number that passes `check`, or undefined when the flag is absent. */
function numberFlag(name: string, raw: string | undefined, check: (n: number) => boolean, allowed: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!check(n)) throw new Error(`--${name} ${JSON.stringify(raw)}: want ${allowed}`);
  return n;
}

/** --restart-at, --edit-at: seconds into the trace, comma-separated (none when absent). */
function moments(name: string, raw: string | undefined): number[] {
  return (raw?.split(',') ?? []).map((x) => {
    const n = positiveSeconds(x);
    if (n === undefined) throw new Error(`--${name} ${JSON.stringify(raw)}: want seconds into the trace, > 0, comma-separated`);
    return n;
  });
}

/** A finite number of seconds above 0 written as `x`, else undefined. */
function positiveSeconds(x: string): number | undefined {
  const n = x.trim() === '' ? Number.NaN : Number(x);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** --pause-at S:D,...: paused at S seconds into the trace for D seconds (none when absent). */
function pauses(raw: string | undefined): Pause[] {
  return (raw?.split(',') ?? []).map((x) => {
    const [atS, forS, ...rest] = x.split(':').map(positiveSeconds);
    if (atS === undefined || forS === undefined || rest.length > 0)
      throw new Error(
        `--pause-at ${JSON.stringify(raw)}: want S:D (seconds into the trace, > 0 : seconds paused, > 0), comma-separated`,
      );
    return { atS, forS };
  });
}

/** --seeds FROM-TO: every seed from FROM to TO (at most MAX_SEEDS), or undefined when absent. */
function seedRange(raw: string | undefined): number[] | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d+)-(\d+)$/.exec(raw.trim());
  const from = Number(m?.[1]);
  const to = Number(m?.[2]);
  if (m === null || !(from <= to) || to - from + 1 > MAX_SEEDS) {
    throw new Error(`--seeds ${JSON.stringify(raw)}: want FROM-TO, FROM <= TO, at most ${MAX_SEEDS} seeds`);
  }
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** The longest objective: the model's drainSeconds takes no more (30 days). */
const MAX_OBJECTIVE_S = 30 * 86_400;

export function parseArgs(argv: readonly string[]): Args {
  let values;
  try {
    ({ values } = parseFlags({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        trace: { type: 'string', multiple: true },
        json: { type: 'string' },
        seed: { type: 'string' },
        seeds: { type: 'string' },
        objective: { type: 'string' },
        'late-cost': { type: 'string' },
        'cold-start': { type: 'string' },
        nodes: { type: 'string' },
        slots: { type: 'string' },
        prefetch: { type: 'string' },
        ack: { type: 'string' },
        model: { type: 'string', multiple: true },
        source: { type: 'string' },
        gpu: { type: 'string' },
        'consumers-per-replica': { type: 'string' },
        hours: { type: 'string' },
        'restart-at': { type: 'string' },
        'edit-at': { type: 'string' },
        'pause-at': { type: 'string' },
        retention: { type: 'string' },
        replicas: { type: 'string' },
        timeline: { type: 'string' },
        ablation: { type: 'boolean' },
        'tuned-polling': { type: 'string' },
        threads: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}; ${USAGE}`, { cause: err });
  }
  const seed = numberFlag('seed', values.seed, Number.isSafeInteger, 'an integer');
  const seeds = seedRange(values.seeds);
  if (seed !== undefined && seeds !== undefined) throw new Error(`--seed and --seeds: give one; ${USAGE}`);
  const objective = numberFlag(
    'objective',
    values.objective,
    (n) => Number.isFinite(n) && n > 0 && n <= MAX_OBJECTIVE_S,
    `a number of seconds > 0 and at most ${MAX_OBJECTIVE_S} (the model's drainSeconds)`,
  );
  const metadata: Record<string, string> = {};
  for (const v of values.model ?? []) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new Error(`--model ${JSON.stringify(v)}: want KEY=VALUE (trigger metadata, e.g. messagesPerReplica=5)`);
    metadata[v.slice(0, eq)] = v.slice(eq + 1);
  }
  if (values.hours !== undefined && values.trace !== undefined) {
    throw new Error(`--hours stretches the synthetic traces, which --trace replaces: give one; ${USAGE}`);
  }
  const source = values.source;
  if (source !== undefined && !Object.hasOwn(SIMULATED_SOURCES, source)) {
    throw new Error(`--source ${JSON.stringify(source)}: want one of ${Object.keys(SIMULATED_SOURCES).join(', ')}`);
  }
  const gpu = values.gpu;
  if (gpu !== undefined && !Object.hasOwn(SIMULATED_GPU, gpu)) {
    throw new Error(`--gpu ${JSON.stringify(gpu)}: want one of ${Object.keys(SIMULATED_GPU).join(', ')}`);
  }
  if (values.ack !== undefined && values.ack !== 'before' && values.ack !== 'after') {
    throw new Error(`--ack ${JSON.stringify(values.ack)}: want before (as a replica starts a message) or after (once served)`);
  }
  let coldStart = PRODUCTION_COLD_START;
  if (values['cold-start'] !== undefined) {
    const v = values['cold-start'];
    const [p50, p99, ...rest] = v.split(',').map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
    if (rest.length > 0 || !(p50! > 0) || !(p99! > p50!) || !Number.isFinite(p99!)) {
      throw new Error(`--cold-start ${JSON.stringify(v)}: want P50,P99 in seconds, 0 < P50 < P99`);
    }
    coldStart = { p50: p50!, p99: p99! };
  }
  let nodes: NodeBilling | undefined;
  if (values.nodes !== undefined) {
    const v = values.nodes;
    const [retainS, bootS, ...rest] = v.split(',').map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
    if (rest.length > 0 || !(retainS! >= 0) || !(bootS! >= 0) || !Number.isFinite(retainS! + bootS!)) {
      throw new Error(
        `--nodes ${JSON.stringify(v)}: want RETAIN,BOOT in seconds, each >= 0 (e.g. 600,180: the Cluster Autoscaler's scale-down-unneeded-time, and 3 minutes for a GPU node to join)`,
      );
    }
    nodes = { retainS: retainS!, bootS: bootS! };
  }
  const slots = numberFlag('slots', values.slots, (n) => Number.isSafeInteger(n) && n >= 1, 'an integer >= 1');
  return {
    traces: values.trace ?? [],
    json: values.json,
    timeline: values.timeline,
    seeds: seeds ?? (seed === undefined ? SEEDS : [seed]),
    objectives: objective === undefined ? OBJECTIVES : [objective],
    ablation: values.ablation ?? false,
    threads: numberFlag('threads', values.threads, (n) => Number.isSafeInteger(n) && n >= 1, 'an integer >= 1'),
    lateCost: numberFlag('late-cost', values['late-cost'], (n) => Number.isFinite(n) && n >= 0, 'a number of GPU-seconds >= 0'),
    coldStart,
    nodes,
    slots,
    prefetch: numberFlag(
      'prefetch',
      values.prefetch,
      (n) => Number.isSafeInteger(n) && n >= (slots ?? CONCURRENCY),
      `an integer >= the slots (${slots ?? CONCURRENCY})`,
    ),
    ack: values.ack as Ack | undefined,
    metadata,
    source: source as SimulatedSource | undefined,
    gpu: gpu as SimulatedGpu | undefined,
    consumersPerReplica: numberFlag(
      'consumers-per-replica',
      values['consumers-per-replica'],
      (n) => Number.isSafeInteger(n) && n >= 1,
      'an integer >= 1',
    ),
    hours: numberFlag(
      'hours',
      values.hours,
      (n) => Number.isFinite(n) && n > 0 && n <= MAX_HOURS,
      `a number of hours in (0, ${MAX_HOURS}]`,
    ),
    restartAtS: moments('restart-at', values['restart-at']),
    editAtS: moments('edit-at', values['edit-at']),
    pauseAtS: pauses(values['pause-at']),
    retentionS: numberFlag(
      'retention',
      values.retention,
      (n) => Number.isSafeInteger(n) && n >= MIN_RETENTION_S && n * 1000 <= 2 ** 31 - 1,
      `whole seconds, at least ${MIN_RETENTION_S} (STATE_RETENTION_MS's bounds)`,
    ),
    replicas: numberFlag(
      'replicas',
      values.replicas,
      (n) => Number.isSafeInteger(n) && n >= 2 && n <= MAX_SCALER_REPLICAS,
      `an integer from 2 to ${MAX_SCALER_REPLICAS}`,
    ),
    tunedPolling: tunedPolling(values['tuned-polling']),
  };
}

/** --tuned-polling S,...: the pollingIntervals keda-tuned's grid tries, whole seconds from 1 to 300 (none when absent). */
function tunedPolling(raw: string | undefined): number[] {
  const list = (raw?.split(',') ?? []).map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
  if (list.some((n) => !Number.isSafeInteger(n) || n < 1 || n > 300)) {
    throw new Error(`--tuned-polling ${JSON.stringify(raw)}: want whole seconds from 1 to 300, comma-separated (e.g. 10,30)`);
  }
  return [...new Set(list)];
}

/**
 * One objective's rows. The last column prices the late requests at the model's lateRequestCost,
 * the one exchange rate the model trades by: GPU-s + L · requests over the objective.
 */
export function table(results: readonly Row[], objectiveS: number, lateCost: number): string {
  const head = [
    'trace',
    'policy',
    'GPU-s',
    'cold starts',
    'wait p50 s',
    'wait p95 s',
    'wait p99 s',
    `> ${objectiveS} s`,
    `GPU-s + ${lateCost} per late`,
  ];
  const rows = results.map((r) => [
    r.trace,
    r.policy,
    String(r.gpuSeconds),
    String(r.coldStarts),
    r.waitP50.toFixed(1),
    r.waitP95.toFixed(1),
    r.waitP99.toFixed(1),
    `${(r.overObjectiveShare * 100).toFixed(2)} %`,
    String(Math.round(r.gpuSeconds + lateCost * r.lateRequests)),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [
    line(head),
    `|${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

/** The model's trigger metadata that the flags set (drainSeconds aside: the objective). */
function modelMetadata(args: Args): Record<string, string> {
  return {
    ...(args.lateCost !== undefined && { lateRequestCost: String(args.lateCost) }),
    ...(args.slots !== undefined && { messagesPerReplica: String(args.slots) }),
    ...args.metadata,
  };
}

export function jobs(specs: readonly TraceSpec[], args: Args): Job[] {
  const model = modelMetadata(args);
  return args.seeds.flatMap((seed) =>
    specs.map((trace) => ({
      trace,
      seed,
      objectives: args.objectives,
      ablation: args.ablation,
      grid: true,
      coldStart: args.coldStart,
      ...(args.nodes !== undefined && { nodes: args.nodes }),
      ...(Object.keys(model).length > 0 && { model }),
      ...(args.slots !== undefined && { slots: args.slots }),
      ...(args.prefetch !== undefined && { prefetch: args.prefetch }),
      ...(args.ack !== undefined && { ack: args.ack }),
      ...(args.source !== undefined && { source: args.source }),
      ...(args.gpu !== undefined && { gpu: args.gpu }),
      ...(args.consumersPerReplica !== undefined && { consumersPerReplica: args.consumersPerReplica }),
      ...(args.restartAtS.length > 0 && { restartAtS: args.restartAtS }),
      ...(args.editAtS.length > 0 && { editAtS: args.editAtS }),
      ...(args.pauseAtS.length > 0 && { pauseAtS: args.pauseAtS }),
      ...(args.retentionS !== undefined && { retentionS: args.retentionS }),
      ...(args.replicas !== undefined && { replicas: args.replicas }),
      ...(args.timeline !== undefined && { timeline: true }),
      ...(args.tunedPolling.length > 0 && { tunedPolling: args.tunedPolling }),
    })),
  );
}

/**
 * The traces of --trace's files, each named after its file; files of one name in different folders
 * after their folder too (found by review: two `trace.csv` were one trace, and the bar compared one
 * file's model with the other's keda-queue). The Azure trace under its own name: the bar's 1.3x
 * oracle clause is its (named after its file, the clause was left out without a word).
 */
export function traceSpecs(files: readonly string[]): TraceSpec[] {
  const base = (file: string) => basename(file).replace(/\.csv$/, '');
  const named = files.map((file) => {
    if (resolve(file) === resolve(AZURE_TRACE)) return { file, name: 'azure-code-2023' };
    const shared = files.some((other) => other !== file && base(other) === base(file));
    return { file, name: shared ? `${basename(dirname(resolve(file)))}/${base(file)}` : base(file) };
  });
  const seen = new Set<string>();
  for (const { file, name } of named) {
    if (seen.has(name))
      throw new Error(`--trace ${JSON.stringify(file)}: a second trace named ${name}; give each file its own name`);
    seen.add(name);
  }
  return named;
}

/** A file the run will write: its folder must be there and writable, now rather than after the run. */
export function checkOutput(flag: string, path: string | undefined): void {
  if (path === undefined) return;
  try {
    if (existsSync(path) && statSync(path).isDirectory()) throw new Error('a folder');
    accessSync(dirname(resolve(path)), constants.W_OK);
  } catch (err) {
    throw new Error(`--${flag} ${JSON.stringify(path)}: cannot be written (${(err as Error).message})`, { cause: err });
  }
}

/** --trace paths: a file as given, a folder as the CSVs in it (sorted; one tenant each, say). */
export function traceFiles(paths: readonly string[]): string[] {
  return paths.flatMap((path) => {
    if (!statSync(path).isDirectory()) return [path];
    const csvs = readdirSync(path)
      .filter((name) => name.endsWith('.csv'))
      .sort()
      .map((name) => join(path, name));
    if (csvs.length === 0) throw new Error(`--trace ${JSON.stringify(path)}: a folder with no .csv in it`);
    return csvs;
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`${USAGE}\n\nWhat each flag does, and the figures: docs/model.md, "How it compares: the decisions simulator".`);
    return;
  }
  const args = parseArgs(argv);
  checkOutput('json', args.json);
  checkOutput('timeline', args.timeline);
  const specs: TraceSpec[] = args.traces.length > 0 ? traceSpecs(traceFiles(args.traces)) : builtInTraceSpecs(args.hours);
  const started = performance.now();
  const { rows: replayed, timelines } = takeTimelines((await runJobs(jobs(specs, args), args.threads)).flat());
  const rows = withKedaTuned(replayed);
  const firstSeed = args.seeds[0]!;
  console.log(
    `Service time = ContextTokens / ${PREFILL_TOKENS_PER_SECOND} tok/s + GeneratedTokens / ${DECODE_TOKENS_PER_SECOND} tok/s; ${args.slots ?? CONCURRENCY} requests per replica${args.slots === undefined ? '' : ` (the model's messagesPerReplica ${args.slots})`}${args.prefetch === undefined ? '' : `, ${args.prefetch} prefetched by each replica's consumer`}${args.ack === 'before' ? ', each acknowledged as its replica starts it' : ''}; ` +
      `cold start lognormal (p50 ${args.coldStart.p50} s, p99 ${args.coldStart.p99} s); ${args.nodes === undefined ? '' : `GPU-seconds billed per node, a node a replica, kept ${args.nodes.retainS} s after its replica, ${args.nodes.bootS} s to boot one; `}${args.hours === undefined ? '' : `synthetic traces ${args.hours} h long; `}objectives ${args.objectives.join(', ')} s (the model's drainSeconds); seeds ${args.seeds.join(', ')}.`,
  );
  const deployed = jobDeployment(args);
  for (const p of policies(
    args.objectives[0],
    args.ablation,
    modelMetadata(args),
    { source: args.source, gpu: args.gpu, consumersPerReplica: args.consumersPerReplica },
    deployed,
  ))
    console.log(`  ${p.name}: ${p.setup}`);
  console.log(
    `  keda-tuned: keda-queue with the cheapest setting of a grid (queueLength 1-50, cooldownPeriod 30-600 s, activation 0 or 5, pollingInterval ${[...new Set([POLLING_INTERVAL_S, ...args.tunedPolling])].join(' or ')} s, KEDA's default HPA or the model's HPA behavior) that leaves no more requests over the objective than keda-queue on any seed`,
  );
  for (const objectiveS of args.objectives) {
    console.log(`\n## objective ${objectiveS} s, seed ${firstSeed}\n`);
    console.log(
      table(
        rows.filter((r) => r.objectiveS === objectiveS && r.seed === firstSeed),
        objectiveS,
        args.lateCost ?? scalingFields.lateRequestCost.default,
      ),
    );
  }
  const list = verdicts(rows);
  if (args.seeds.length <= LISTED_SEEDS) {
    console.log(`\n## The bar (seeds ${args.seeds.join(' / ')})\n`);
    console.log(barTable(list));
  } else {
    console.log(`\n## The bar, runs that hold each part of it (seeds ${args.seeds[0]}-${args.seeds.at(-1)})\n`);
    console.log(countTable(list));
  }
  if (deployed !== undefined) {
    const seeds = args.seeds.length === 1 ? `seed ${args.seeds[0]}` : `seeds ${args.seeds.join(', ')} summed`;
    console.log(`\n## The model deployed: ${describeDeployment(deployed)} (${seeds})\n`);
    console.log(deploymentTable(rows, deployed));
  }
  // Per run, so only where the bar is listed seed by seed.
  const lateLines = args.seeds.length <= LISTED_SEEDS ? lateEpisodeLines(list) : [];
  if (lateLines.length > 0) {
    console.log(
      `\nWhere the model is later than keda-queue + 0.1 point, its late requests by when they arrived (the ${LATE_EPISODES_KEPT} largest runs, gaps under ${LATE_EPISODE_GAP_S} s):\n${lateLines.map((l) => `  ${l}`).join('\n')}`,
    );
  }
  console.log(
    `\nkeda-tuned settings:\n${tunedSettings(rows)
      .map((s) => `  ${s}`)
      .join('\n')}`,
  );
  const groups = new Set(list.map((v) => `${v.trace}|${v.objectiveS}`));
  const passing = [...groups].filter((g) => list.filter((v) => `${v.trace}|${v.objectiveS}` === g).every((v) => v.pass)).length;
  console.log(
    `\nThe bar holds on ${passing} of ${groups.size} (trace, objective) rows, every seed; ${((performance.now() - started) / 1000).toFixed(0)} s.`,
  );
  if (specs.some((t) => 'file' in t && t.name === 'azure-code-2023')) {
    console.log(
      '\nAzure trace: Azure LLM inference trace 2023 (code), AzurePublicDataset, CC-BY 4.0; Patel et al., "Splitwise", ISCA 2024.',
    );
  }
  if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(rows, null, 2)}\n`);
  if (args.timeline !== undefined) {
    writeFileSync(args.timeline, timelineCsv(timelines));
    const syncs = timelines.reduce((n, t) => n + t.entries.length, 0);
    console.log(`\nThe model's answer at each HPA sync: ${args.timeline} (${syncs} rows).`);
  }
}

/** The rows without their timelines, and the timelines by trace, objective and seed. */
export function takeTimelines(rows: readonly Row[]): { rows: Row[]; timelines: Timeline[] } {
  const timelines: Timeline[] = [];
  const bare = rows.map(({ timeline, ...row }) => {
    if (timeline !== undefined)
      timelines.push({ trace: row.trace, objectiveS: row.objectiveS, seed: row.seed, entries: timeline });
    return row;
  });
  return { rows: bare, timelines };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
