// The HPA's replica arithmetic for External metrics with AverageValue targets, as in
// kubernetes/pkg/controller/podautoscaler (horizontal.go, replica_calculator.go): per metric
// ceil(value / target) unless within the tolerance of the current count, the largest metric wins,
// then, with a `behavior`, stabilization windows and rate limits per period, then min/max.
// Without one (a ScaledObject with no `advanced` block: KEDA creates its HPA with behavior nil, and
// the API server fills in no defaults then) the controller's older path: the largest recommendation
// of the last 300 s (--horizontal-pod-autoscaler-downscale-stabilization), and scale-up at most to
// max(2 x current, 4) per sync, scale-down not limited (normalizeDesiredReplicas).

interface ScalingPolicy {
  readonly type: 'Pods' | 'Percent';
  readonly value: number;
  readonly periodSeconds: number;
}

export interface ScalingRules {
  readonly stabilizationWindowSeconds: number;
  readonly selectPolicy: 'Max' | 'Min' | 'Disabled';
  readonly policies: readonly ScalingPolicy[];
}

export interface HpaBehavior {
  readonly scaleUp: ScalingRules;
  readonly scaleDown: ScalingRules;
}

export const DEFAULT_BEHAVIOR: HpaBehavior = {
  scaleUp: {
    stabilizationWindowSeconds: 0,
    selectPolicy: 'Max',
    policies: [
      { type: 'Percent', value: 100, periodSeconds: 15 },
      { type: 'Pods', value: 4, periodSeconds: 15 },
    ],
  },
  scaleDown: {
    stabilizationWindowSeconds: 300,
    selectPolicy: 'Max',
    policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }],
  },
};

const DEFAULT_TOLERANCE = 0.1;

export interface MetricSample {
  /** The metric value KEDA hands the HPA (total over the ScaledObject). */
  readonly value: number;
  /** The AverageValue target. */
  readonly target: number;
}

export interface HpaOptions {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** The HPA's `behavior`; none: the controller's path for behavior nil (KEDA without `advanced`). */
  readonly behavior?: HpaBehavior;
  readonly tolerance?: number;
}

/** The controller's window for behavior nil (--horizontal-pod-autoscaler-downscale-stabilization). */
const DOWNSCALE_STABILIZATION_S = 300;

/** Per-metric proposal: ceil(value / target), or the current count when within tolerance. */
export function averageValueReplicas(sample: MetricSample, current: number, tolerance = DEFAULT_TOLERANCE): number {
  // KEDA hands the HPA milli-quantities; the HPA divides those.
  const usage = Math.round(sample.value * 1000);
  const target = Math.round(sample.target * 1000);
  const ratio = usage / (target * current);
  if (Math.abs(1 - ratio) <= tolerance) return current;
  return Math.ceil(usage / target);
}

interface Mark {
  readonly atS: number;
  readonly replicas: number;
}

export class Hpa {
  private readonly options: HpaOptions;
  private readonly behavior: HpaBehavior | undefined;
  private recommendations: Mark[] = [];
  private upEvents: Mark[] = [];
  private downEvents: Mark[] = [];

  constructor(options: HpaOptions) {
    this.options = options;
    this.behavior = options.behavior;
  }

  /** One sync: the replica count the HPA sets. A workload at 0 is KEDA's, not the HPA's. */
  sync(nowS: number, current: number, samples: readonly MetricSample[]): number {
    if (current === 0) return 0;
    const { minReplicas, maxReplicas } = this.options;
    if (samples.length === 0) return current;
    const proposed = Math.max(...samples.map((s) => averageValueReplicas(s, current, this.options.tolerance)));
    let desired: number;
    if (this.behavior === undefined) {
      desired = this.stabilizeLegacy(nowS, proposed);
      desired = Math.max(minReplicas, Math.min(desired, maxReplicas, Math.max(2 * current, 4)));
    } else {
      desired = this.stabilize(nowS, current, proposed, this.behavior);
      desired = this.limitRate(nowS, current, desired, this.behavior);
      desired = Math.min(maxReplicas, Math.max(minReplicas, desired));
    }
    if (desired > current) this.upEvents.push({ atS: nowS, replicas: desired - current });
    if (desired < current) this.downEvents.push({ atS: nowS, replicas: current - desired });
    return desired;
  }

  /**
   * behavior nil: the largest recommendation within the window, this one included
   * (stabilizeRecommendation). The controller drops a sample older than the cutoff and keeps one
   * just at it, but its syncs come every 15 s plus their own time, so the one 20 syncs back is just
   * past 300 s and dropped; here syncs are exactly 15 s apart, and a sample at the cutoff is dropped
   * too (kept until 2026-12-06: every step down a sync late; found by review).
   */
  private stabilizeLegacy(nowS: number, proposed: number): number {
    const cutoff = nowS - DOWNSCALE_STABILIZATION_S;
    this.recommendations = this.recommendations.filter((r) => r.atS > cutoff);
    const largest = this.recommendations.reduce((m, r) => Math.max(m, r.replicas), proposed);
    this.recommendations.push({ atS: nowS, replicas: proposed });
    return largest;
  }

  private stabilize(nowS: number, current: number, proposed: number, behavior: HpaBehavior): number {
    const upCutoff = nowS - behavior.scaleUp.stabilizationWindowSeconds;
    const downCutoff = nowS - behavior.scaleDown.stabilizationWindowSeconds;
    let up = proposed;
    let down = proposed;
    for (const rec of this.recommendations) {
      if (rec.atS > upCutoff) up = Math.min(up, rec.replicas);
      if (rec.atS > downCutoff) down = Math.max(down, rec.replicas);
    }
    const keepFrom = Math.min(upCutoff, downCutoff);
    this.recommendations = this.recommendations.filter((r) => r.atS > keepFrom);
    this.recommendations.push({ atS: nowS, replicas: proposed });
    return Math.min(Math.max(current, up), down);
  }

  private limitRate(nowS: number, current: number, desired: number, behavior: HpaBehavior): number {
    if (desired > current) {
      const limit = Math.max(current, this.limit(nowS, current, behavior.scaleUp, +1));
      return Math.min(desired, limit, this.options.maxReplicas);
    }
    if (desired < current) {
      const limit = Math.min(current, this.limit(nowS, current, behavior.scaleDown, -1));
      return Math.max(desired, limit, this.options.minReplicas);
    }
    return desired;
  }

  /** The furthest count the policies allow this period (up: direction +1, down: -1). */
  private limit(nowS: number, current: number, rules: ScalingRules, direction: 1 | -1): number {
    if (rules.selectPolicy === 'Disabled') return current;
    const widest = (rules.selectPolicy === 'Max') === (direction === 1) ? Math.max : Math.min;
    let result: number | undefined;
    for (const p of rules.policies) {
      const added = sumSince(this.upEvents, nowS - p.periodSeconds);
      const deleted = sumSince(this.downEvents, nowS - p.periodSeconds);
      const start = current - added + deleted;
      const proposed =
        direction === 1
          ? p.type === 'Pods'
            ? start + p.value
            : Math.ceil(start * (1 + p.value / 100))
          : p.type === 'Pods'
            ? start - p.value
            : Math.trunc(start * (1 - p.value / 100));
      result = result === undefined ? proposed : widest(result, proposed);
    }
    return result ?? current;
  }
}

function sumSince(events: readonly Mark[], cutoffS: number): number {
  let sum = 0;
  for (const e of events) if (e.atS > cutoffS) sum += e.replicas;
  return sum;
}
