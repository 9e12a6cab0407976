// KEDA's operator loop for one ScaledObject: the 0 <-> 1 step. Every pollingInterval it asks each
// trigger whether it is active; any active answer refreshes lastActiveTime and wakes a workload at
// zero to max(minReplicaCount, 1); with none active for cooldownPeriod it scales to
// minReplicaCount (0). For external-push a streamed true acts at once (KEDA ignores streamed false).

export interface KedaOptions {
  readonly pollingIntervalSeconds: number;
  readonly cooldownSeconds: number;
  readonly minReplicaCount: number;
}

export class KedaLoop {
  private readonly options: KedaOptions;
  private lastActiveS: number | undefined;

  constructor(options: KedaOptions) {
    this.options = options;
  }

  /**
   * One check (a poll, or a streamed true). Returns the replica count KEDA sets, or undefined when
   * it leaves the workload to the HPA.
   */
  check(nowS: number, current: number, active: boolean): number | undefined {
    const wakeTo = Math.max(this.options.minReplicaCount, 1);
    if (active) {
      this.lastActiveS = nowS;
      return current === 0 ? wakeTo : undefined;
    }
    if (current > this.options.minReplicaCount) {
      const since = this.lastActiveS ?? -Infinity;
      if (nowS - since >= this.options.cooldownSeconds) return this.options.minReplicaCount;
    }
    return undefined;
  }
}
