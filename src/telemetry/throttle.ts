// Once per interval per kind: for log lines a flood would repeat (a refusal, a defect, a refused
// handshake). The kinds remembered are bounded; past the bound they start over.

/** How many kinds a throttle remembers before it forgets them all. */
const MAX_KINDS = 64;

export class Throttle {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly lastMs = new Map<string, number>();

  constructor(intervalMs: number, now: () => number = () => performance.now()) {
    this.intervalMs = intervalMs;
    this.now = now;
  }

  /** True when `kind` was not let through within the interval (and notes it let through now). */
  allows(kind: string): boolean {
    const nowMs = this.now();
    if (nowMs - (this.lastMs.get(kind) ?? Number.NEGATIVE_INFINITY) < this.intervalMs) return false;
    if (this.lastMs.size >= MAX_KINDS) this.lastMs.clear();
    this.lastMs.set(kind, nowMs);
    return true;
  }
}
