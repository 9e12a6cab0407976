// Source reads started while the event loop has room: reads started together (a burst of
// first-seen triggers) come back together, and their replies, decisions and answers would hold
// every other call (cached answers, GetMetricSpec, health, scrapes) turn after turn. Past the
// target, and with a few reads in flight already, they wait here, first come first served, at
// most MAX_WAIT_MS. Figures: docs/reliability.md, "Abuse".
import { performance } from 'node:perf_hooks';
import type { ReadAdmission } from '../cache/readCache.ts';

export interface LoopAdmissionOptions {
  /** The event loop's busy share (0-1] above which reads wait; 1 starts every read at once. */
  readonly targetUtilization: number;
  /** The loop's busy share since the previous call (perf_hooks' eventLoopUtilization); a seam for tests. */
  readonly utilization?: () => number;
  /** Clock in ms (performance.now); a seam for tests. */
  readonly now?: () => number;
}

/** Reads started at once in one loop turn, and per tick while reads wait (a few ms of loop time). */
const PER_TURN = 16;
/**
 * Reads in flight that start however busy the loop is: the steady reads of cache entries that
 * expire (one per source per interval) never wait; only a burst of them does.
 */
const FREE_IN_FLIGHT = 4;
/** The busy share is averaged over about this long (ms). */
const AVERAGE_MS = 50;
/** How often waiting reads are looked at (ms). */
const TICK_MS = 1;
/** A read that has waited this long (ms) goes however busy the loop is (none starves): a third of the 3 s KEDA's HPA path gives a call. */
export const MAX_WAIT_MS = 1000;

interface Waiting {
  readonly since: number;
  readonly resolve: () => void;
}

function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const current = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(current, last);
    last = current;
    return utilization;
  };
}

export class LoopAdmission implements ReadAdmission {
  private readonly target: number;
  private readonly utilization: () => number;
  private readonly now: () => number;
  private readonly waiting: (Waiting | undefined)[] = [];
  private head = 0;
  private busy = 0;
  private sampledAtMs: number;
  private startedThisTurn = 0;
  private turnReset: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private inFlight = 0;

  constructor(options: LoopAdmissionOptions) {
    this.target = options.targetUtilization;
    this.utilization = options.utilization ?? loopUtilization();
    this.now = options.now ?? (() => performance.now());
    this.sampledAtMs = this.now();
  }

  /** Reads waiting for room now. */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  /** The loop's busy share, averaged over about AVERAGE_MS. */
  get loopBusy(): number {
    return this.busy;
  }

  /**
   * Undefined when a read may start now, else a promise that resolves when it may (FIFO). Never
   * rejects: a read that waited still has its whole deadline (the cache starts it after this).
   */
  admit(): Promise<void> | undefined {
    if (this.target >= 1 || this.closed) {
      this.inFlight++;
      return undefined;
    }
    if (
      this.queued === 0 &&
      (this.inFlight < FREE_IN_FLIGHT || (this.startedThisTurn < PER_TURN && this.sample() < this.target))
    ) {
      this.started();
      return undefined;
    }
    return new Promise((resolve) => {
      this.waiting.push({ since: this.now(), resolve });
      this.timer ??= setTimeout(this.tick, TICK_MS);
    });
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    const busy = this.sample() >= this.target;
    const nowMs = this.now();
    for (let i = 0; i < PER_TURN && this.queued > 0; i++) {
      const next = this.waiting[this.head]!;
      if (busy && this.inFlight >= FREE_IN_FLIGHT && nowMs - next.since < MAX_WAIT_MS) break;
      this.waiting[this.head++] = undefined;
      this.started();
      next.resolve();
    }
    if (this.queued === 0) {
      this.waiting.length = 0;
      this.head = 0;
    } else {
      // A queue that never empties (reads asked for as fast as they go) drops its spent head.
      if (this.head >= 1024 && this.head * 2 >= this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      this.timer = setTimeout(this.tick, TICK_MS);
    }
  };

  /** A read admitted earlier has settled. */
  done(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
  }

  /** Counts a read started (in flight, and in this loop turn: that count starts over at the next turn). */
  private started(): void {
    this.inFlight++;
    this.startedThisTurn++;
    this.turnReset ??= setImmediate(() => {
      this.turnReset = undefined;
      this.startedThisTurn = 0;
    });
  }

  /** Folds the loop's busy share since the last sample into the average; returns the average. */
  private sample(): number {
    const nowMs = this.now();
    const elapsed = nowMs - this.sampledAtMs;
    if (elapsed >= 1) {
      this.busy += (1 - Math.exp(-elapsed / AVERAGE_MS)) * (this.utilization() - this.busy);
      this.sampledAtMs = nowMs;
    }
    return this.busy;
  }

  /** Starts every waiting read, and every read asked for from now on (shutdown: calls drain). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.turnReset !== undefined) clearImmediate(this.turnReset);
    this.turnReset = undefined;
    for (const next of this.waiting.splice(this.head)) {
      this.inFlight++;
      next?.resolve();
    }
    this.waiting.length = 0;
    this.head = 0;
  }
}
