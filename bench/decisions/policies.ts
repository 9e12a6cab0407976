// The baseline policies: KEDA's built-in queue trigger (alone, and with a GPU-utilization
// Prometheus trigger), and an always-on fleet sized for the peak. Each KEDA policy is the same
// machinery (KedaLoop for 0 <-> 1, Hpa for 1 <-> N) around a different set of triggers.
import { type Fleet, SIMULATED_GPU, type SimulatedGpu } from './fleet.ts';
import { Hpa, type HpaBehavior, type MetricSample } from './hpa.ts';
import { KedaLoop } from './keda.ts';
import { RECOMMENDED_SCALED_OBJECT, type ScaledObjectSettings, describeScaledObject } from './recommended.ts';
import { MAX_REPLICAS, type Policy, type SimContext } from './simulate.ts';

export const POLLING_INTERVAL_S = 30;
const HPA_SYNC_S = 15;
/** Prometheus scrapes DCGM every 15 s; a query sees the last scrape. */
const SCRAPE_INTERVAL_S = 15;

/** What a ScaledObject's triggers answer, together. */
export interface Triggers {
  isActive(): Promise<boolean> | boolean;
  metrics(): Promise<MetricSample[]> | MetricSample[];
  /** external-push: checked every intervalS; a change to true acts at once. */
  readonly stream?: { readonly intervalS: number; check(): Promise<boolean> };
}

/** The ScaledObject paused (KEDA's `autoscaling.keda.sh/paused` annotation) at `atS` for `forS` seconds. */
export interface Pause {
  readonly atS: number;
  readonly forS: number;
}

export interface ScaledObjectSetup {
  /** KEDA's pollingInterval (default POLLING_INTERVAL_S, KEDA's own default). */
  readonly pollingIntervalSeconds?: number;
  readonly cooldownSeconds: number;
  /** The HPA's behavior (`advanced.horizontalPodAutoscalerConfig`); none, as KEDA's default: behavior nil. */
  readonly behavior?: HpaBehavior;
  readonly maxReplicas?: number;
  /**
   * While paused KEDA stops its loop and deletes the HPA: no trigger is asked anything and the
   * workload keeps its replicas; at the end a new HPA starts with no history.
   */
  readonly pauses?: readonly Pause[];
}

/** KEDA + HPA around `triggers`, created per run by `makeTriggers`. */
export function kedaPolicy(
  name: string,
  setup: string,
  so: ScaledObjectSetup,
  makeTriggers: (ctx: SimContext) => Triggers | Promise<Triggers>,
): Policy {
  return {
    name,
    setup,
    async start(ctx) {
      const triggers = await makeTriggers(ctx);
      const polling = so.pollingIntervalSeconds ?? POLLING_INTERVAL_S;
      const keda = new KedaLoop({ pollingIntervalSeconds: polling, cooldownSeconds: so.cooldownSeconds, minReplicaCount: 0 });
      const newHpa = () =>
        new Hpa({
          minReplicas: 1,
          maxReplicas: so.maxReplicas ?? MAX_REPLICAS,
          ...(so.behavior !== undefined && { behavior: so.behavior }),
        });
      let hpa = newHpa();
      const pauses = so.pauses ?? [];
      const paused = () => pauses.some(({ atS, forS }) => ctx.now() >= atS && ctx.now() < atS + forS);
      for (const { atS, forS } of pauses) ctx.at(atS + forS, () => void (hpa = newHpa()));
      const { fleet } = ctx;
      const apply = (replicas: number | undefined) => {
        if (replicas !== undefined && replicas !== fleet.size) fleet.scaleTo(ctx.now(), replicas, () => ctx.coldStart());
      };
      ctx.every(1, polling, async () => {
        if (!paused()) apply(keda.check(ctx.now(), fleet.size, await triggers.isActive()));
      });
      ctx.every(7, HPA_SYNC_S, async () => {
        if (fleet.size === 0 || paused()) return;
        apply(hpa.sync(ctx.now(), fleet.size, await triggers.metrics()));
      });
      const stream = triggers.stream;
      if (stream !== undefined) {
        let last = false;
        ctx.every(0.5, stream.intervalS, async () => {
          // KEDA closes the stream while paused and opens it again after: its first true acts.
          if (paused()) {
            last = false;
            return;
          }
          const active = await stream.check();
          if (active && !last) apply(keda.check(ctx.now(), fleet.size, true));
          last = active;
        });
      }
    },
  };
}

/** What KEDA's trigger reads as the backlog. */
export type KedaBacklog = (fleet: Fleet) => number;

/** Backlog as KEDA's queue triggers count it: waiting plus in flight (unacknowledged). */
const QUEUE_BACKLOG: KedaBacklog = (fleet) => fleet.waiting + fleet.unacked;

const QUEUE_LENGTH = 5;

/** The knobs of KEDA's queue trigger that a user tunes by hand. */
export interface QueueSetting {
  readonly queueLength: number;
  readonly cooldownSeconds: number;
  /** activationQueueLength: wake from zero only above this backlog. */
  readonly activation: number;
  /** The HPA behavior the model's ScaledObject recommends (recommended.ts); none: KEDA's default, behavior nil. */
  readonly recommendedHpa?: true;
  /** pollingInterval, when not KEDA's default (POLLING_INTERVAL_S): how soon a ScaledObject at zero wakes. */
  readonly pollingSeconds?: number;
}

/**
 * keda-queue: queueLength 5 (the bar's choice, a value KEDA's docs have shown; KEDA's own default
 * is 20: rabbitmq_scaler.go's defaultRabbitMQQueueLength), activation 0, cooldown 300 s.
 */
export const KEDA_QUEUE_DEFAULT: QueueSetting = { queueLength: QUEUE_LENGTH, cooldownSeconds: 300, activation: 0 };

/**
 * The settings keda-tuned picks from in hindsight: queueLength 1-50, cooldownPeriod 30-600 s,
 * activation 0 or 5, each with KEDA's default HPA (behavior nil) and with the HPA behavior the
 * model's ScaledObject recommends (a user who tunes by hand may set it too); pollingInterval 30 s,
 * KEDA's default, and each of `pollings` beside it (`--tuned-polling`: the grid leaves it at
 * the default, and a shorter one wakes a ScaledObject at zero sooner). Includes KEDA_QUEUE_DEFAULT.
 */
export function kedaGrid(pollings: readonly number[] = []): QueueSetting[] {
  const tried = [...new Set([POLLING_INTERVAL_S, ...pollings])];
  return [1, 2, 3, 5, 8, 12, 20, 30, 50].flatMap((queueLength) =>
    [30, 60, 120, 300, 600].flatMap((cooldownSeconds) =>
      [0, 5].flatMap((activation) =>
        tried.flatMap((polling) => {
          const pollingSeconds = polling === POLLING_INTERVAL_S ? {} : { pollingSeconds: polling };
          return [
            { queueLength, cooldownSeconds, activation, ...pollingSeconds },
            { queueLength, cooldownSeconds, activation, recommendedHpa: true as const, ...pollingSeconds },
          ];
        }),
      ),
    ),
  );
}

export function describeSetting(s: QueueSetting): string {
  const hpa = s.recommendedHpa === true ? ", the model's HPA behavior" : '';
  const polling = s.pollingSeconds === undefined ? '' : `, pollingInterval ${s.pollingSeconds} s`;
  return `queueLength ${s.queueLength}, cooldown ${s.cooldownSeconds} s, activation ${s.activation}${hpa}${polling}`;
}

/** KEDA's built-in queue trigger with `setting`, pollingInterval 30 s, and KEDA's default HPA unless the setting says. */
export function kedaQueueWith(
  setting: QueueSetting,
  name = `keda-queue (${describeSetting(setting)})`,
  backlog: KedaBacklog = QUEUE_BACKLOG,
): Policy {
  const { queueLength, cooldownSeconds, activation } = setting;
  const polling = setting.pollingSeconds ?? POLLING_INTERVAL_S;
  const hpa =
    setting.recommendedHpa === true ? "the HPA behavior the model's ScaledObject recommends" : "no HPA behavior (KEDA's default)";
  return kedaPolicy(
    name,
    `built-in queue trigger: queueLength ${queueLength}, activationQueueLength ${activation}; pollingInterval ${polling} s, cooldownPeriod ${cooldownSeconds} s, ${hpa}`,
    {
      cooldownSeconds,
      ...(setting.pollingSeconds !== undefined && { pollingIntervalSeconds: setting.pollingSeconds }),
      ...(setting.recommendedHpa === true && { behavior: RECOMMENDED_SCALED_OBJECT.behavior }),
    },
    (ctx) => ({
      isActive: () => backlog(ctx.fleet) > activation,
      metrics: () => [{ value: backlog(ctx.fleet), target: queueLength }],
    }),
  );
}

export function kedaQueue(backlog?: KedaBacklog): Policy {
  return kedaQueueWith(KEDA_QUEUE_DEFAULT, 'keda-queue', backlog);
}

/**
 * Ablation: KEDA's queue trigger (as keda-queue) with the ScaledObject settings recommended for
 * this scaler (cooldownPeriod and HPA behavior). What is left between it and 'model' is the model.
 */
export function kedaQueueTuned(so: ScaledObjectSettings = RECOMMENDED_SCALED_OBJECT, backlog = QUEUE_BACKLOG): Policy {
  return kedaPolicy(
    'keda-queue-tuned',
    `keda-queue's trigger (queueLength ${QUEUE_LENGTH}, activationQueueLength 0) with the model's ScaledObject settings: ${describeScaledObject(so)}`,
    { cooldownSeconds: so.cooldownSeconds, behavior: so.behavior, pollingIntervalSeconds: so.pollingIntervalSeconds },
    (ctx) => ({
      isActive: () => backlog(ctx.fleet) > 0,
      metrics: () => [{ value: backlog(ctx.fleet), target: QUEUE_LENGTH }],
    }),
  );
}

const GPU_UTILIZATION_THRESHOLD = 70;

/** KEDA's queue trigger beside its prometheus trigger on the GPUs, read as `gpu` says (busy slots over slots by default; --gpu). */
export function kedaQueueGpu(gpu: SimulatedGpu = 'share', backlog = QUEUE_BACKLOG): Policy {
  return kedaPolicy(
    'keda-queue-gpu',
    `keda-queue plus a prometheus trigger: sum(DCGM_FI_DEV_GPU_UTIL) threshold ${GPU_UTILIZATION_THRESHOLD} (scraped every ${SCRAPE_INTERVAL_S} s, the GPUs read as ${gpu})`,
    { cooldownSeconds: 300 },
    (ctx) => {
      let scraped = 0;
      ctx.every(0, SCRAPE_INTERVAL_S, () => {
        scraped = SIMULATED_GPU[gpu](ctx.fleet) * 100;
      });
      return {
        isActive: () => backlog(ctx.fleet) > 0 || scraped > 0,
        metrics: () => [
          { value: backlog(ctx.fleet), target: QUEUE_LENGTH },
          { value: scraped, target: GPU_UTILIZATION_THRESHOLD },
        ],
      };
    },
  );
}

/** Replicas that serve the busiest minute of the trace without a queue. */
function peakReplicas(ctx: SimContext, windowS = 60): number {
  const reqs = ctx.trace.requests;
  let peak = 0;
  let work = 0;
  let j = 0;
  for (let i = 0; i < reqs.length; i++) {
    work += reqs[i]!.serviceS;
    while (reqs[j]!.arrivalS < reqs[i]!.arrivalS - windowS) work -= reqs[j++]!.serviceS;
    peak = Math.max(peak, work);
  }
  return Math.max(1, Math.ceil(peak / (windowS * ctx.fleet.concurrency)));
}

export function alwaysOn(): Policy {
  return {
    name: 'always-on',
    setup: 'fixed fleet sized for the busiest minute of the trace, warm from the start',
    start(ctx) {
      const n = peakReplicas(ctx);
      for (let i = 0; i < n; i++) ctx.fleet.add(0, 0, true);
      ctx.fleet.coldStarts = 0;
    },
  };
}
