// When a StreamIsActive stream re-checks its trigger: at once, then at a random point of the first
// interval, then every interval. Streams opened together (KEDA re-opening them all after a restart)
// would otherwise check in the same instant every interval, a burst that holds up every other call
// for its whole length. A check that is still running delays the next; a failed one is reported and
// checking goes on.
import type { EvaluateOptions } from '../engine.ts';

/** The clock and timers the schedule runs on (Node's by default; a fake one in tests). */
export interface Timers {
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  /** Re-arms a timer with its own delay (one timer per stream for the regular checks, not one per check). */
  refresh(timer: unknown): unknown;
  clearTimeout(timer: unknown): void;
}

const nodeTimers: Timers = {
  now: Date.now,
  setTimeout: (run, ms) => setTimeout(run, ms),
  refresh: (timer) => (timer as NodeJS.Timeout).refresh(),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

export interface StreamChecksOptions {
  readonly intervalMs: number;
  /** One check; a promise while it reads a source. The options say how fresh a reading must be. */
  readonly check: (options: EvaluateOptions) => void | Promise<void>;
  /** A check that threw or rejected. */
  readonly failed: (err: unknown) => void;
  readonly timers?: Timers;
  /** In [0, 1): where in the first interval the first re-check lands. */
  readonly random?: () => number;
}

export class StreamChecks {
  private readonly options: StreamChecksOptions;
  private readonly timers: Timers;
  private readonly firstDelayMs: number;
  private timer: unknown;
  private everyInterval: unknown;
  private dueAtMs = Number.NEGATIVE_INFINITY;
  private checks = 0;
  private stopped = false;

  constructor(options: StreamChecksOptions) {
    this.options = options;
    this.timers = options.timers ?? nodeTimers;
    this.firstDelayMs = Math.max(1, Math.round((options.random ?? Math.random)() * options.intervalMs));
  }

  /** Checks now, and schedules the next. */
  start(): void {
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.timers.clearTimeout(this.timer);
  }

  private next = (): void => {
    const delayMs = this.checks++ === 0 ? this.firstDelayMs : this.options.intervalMs;
    this.dueAtMs = this.timers.now() + delayMs;
    if (this.stopped) return;
    if (delayMs !== this.options.intervalMs) this.timer = this.timers.setTimeout(this.tick, delayMs);
    else {
      this.everyInterval =
        this.everyInterval === undefined ? this.timers.setTimeout(this.tick, delayMs) : this.timers.refresh(this.everyInterval);
      this.timer = this.everyInterval;
    }
  };

  private tick = (): void => {
    if (this.stopped) return;
    // Timers run on the event loop's cached clock, which lags the wall clock by up to one loop
    // turn: a check that fires early would find the cache entry a hair younger than its TTL and
    // see the old value for one more interval (a wake 2 s late instead of 1 s). More than an
    // interval early means the wall clock stepped back: check now.
    const earlyMs = this.dueAtMs - this.timers.now();
    if (earlyMs > 0 && earlyMs <= this.options.intervalMs) {
      this.timer = this.timers.setTimeout(this.tick, earlyMs);
      return;
    }
    // The first re-check comes early and would find the opening check's reading still fresh, then
    // wait a whole interval: it asks for one younger than half its delay.
    const options = this.checks === 1 ? { maxAgeMs: Math.max(1, Math.floor(this.firstDelayMs / 2)) } : NO_OPTIONS;
    let result: void | Promise<void>;
    try {
      result = this.options.check(options);
    } catch (err) {
      this.report(err);
      this.next();
      return;
    }
    if (result instanceof Promise) result.catch(this.report).finally(this.next);
    else this.next();
  };

  /** `failed`, whose own failure must neither stop the checks nor reject unhandled. */
  private report = (err: unknown): void => {
    try {
      this.options.failed(err);
    } catch {
      // Nothing left to tell it to: the next check runs all the same.
    }
  };
}

const NO_OPTIONS: EvaluateOptions = {};
