import { describe, expect, it } from 'vitest';
import type { EvaluateOptions } from '../../src/engine.ts';
import { StreamChecks, type Timers } from '../../src/server/streamChecks.ts';

/** Timers on a clock the test moves: run(ms) fires every timer due by then, in order. */
class FakeTimers implements Timers {
  ms = 0;
  /** The next timer to fire sees the clock this much behind its due time. */
  skewMs = 0;
  private readonly due = new Map<object, { atMs: number; delayMs: number; run: () => void }>();
  created = 0;
  now = () => this.ms;
  setTimeout = (run: () => void, delayMs: number) => {
    const timer = {};
    this.created++;
    this.due.set(timer, { atMs: this.ms + delayMs, delayMs, run });
    return timer;
  };
  refresh = (timer: unknown) => {
    const t = this.due.get(timer as object);
    if (t !== undefined) t.atMs = this.ms + t.delayMs;
    else {
      // A timer that fired: Node re-arms it with its delay.
      const old = this.fired.get(timer as object)!;
      this.due.set(timer as object, { ...old, atMs: this.ms + old.delayMs });
    }
    return timer;
  };
  private readonly fired = new Map<object, { atMs: number; delayMs: number; run: () => void }>();
  clearTimeout = (timer: unknown) => {
    this.due.delete(timer as object);
  };
  /** Moves the clock `ms` ahead, firing timers as they come due. */
  async run(ms: number): Promise<void> {
    const until = this.ms + ms;
    for (;;) {
      const next = [...this.due].sort((a, b) => a[1].atMs - b[1].atMs)[0];
      if (next === undefined || next[1].atMs > until) break;
      this.ms = next[1].atMs - this.skewMs;
      this.skewMs = 0;
      this.due.delete(next[0]);
      this.fired.set(next[0], next[1]);
      next[1].run();
      await Promise.resolve();
      await Promise.resolve();
    }
    this.ms = until;
  }
}

function schedule(
  options: { random?: number; check?: (o: EvaluateOptions) => void | Promise<void>; failedThrows?: boolean } = {},
) {
  const timers = new FakeTimers();
  const calls: { atMs: number; options: EvaluateOptions }[] = [];
  const failures: unknown[] = [];
  const checks = new StreamChecks({
    intervalMs: 1000,
    timers,
    random: () => options.random ?? 0.3,
    check: (o) => {
      calls.push({ atMs: timers.ms, options: o });
      return options.check?.(o);
    },
    failed: (err) => {
      failures.push(err);
      if (options.failedThrows === true) throw new Error('the report failed too');
    },
  });
  return { timers, calls, failures, checks };
}

describe('StreamChecks', () => {
  it('checks at once, at a random point of the first interval (asking for a reading half as old), then every interval', async () => {
    const { timers, calls, checks } = schedule({ random: 0.3 });
    checks.start();
    await timers.run(3400);
    expect(calls.map((c) => c.atMs)).toEqual([0, 300, 1300, 2300, 3300]);
    expect(calls.map((c) => c.options)).toEqual([{}, { maxAgeMs: 150 }, {}, {}, {}]);
  });

  it('keeps one timer for the regular checks, re-armed in place', async () => {
    const { timers, checks } = schedule();
    checks.start();
    await timers.run(10_000);
    expect(timers.created).toBe(2); // the first re-check's, then one for every interval
  });

  it('waits for a check still reading its source before scheduling the next', async () => {
    let release!: () => void;
    const { timers, calls, checks } = schedule({
      random: 0.5,
      check: () => (calls.length === 2 ? new Promise<void>((r) => (release = r)) : undefined),
    });
    checks.start();
    await timers.run(3000); // the second check (at 500) hangs: nothing after it
    expect(calls.map((c) => c.atMs)).toEqual([0, 500]);
    release();
    await new Promise((r) => setImmediate(r));
    await timers.run(1000);
    expect(calls.map((c) => c.atMs)).toEqual([0, 500, 4000]);
  });

  it('reports a check that throws or rejects, and goes on checking', async () => {
    let n = 0;
    const { timers, calls, failures, checks } = schedule({
      check: () => {
        n++;
        if (n === 1) throw new Error('bad');
        if (n === 2) return Promise.reject(new Error('down'));
      },
    });
    checks.start();
    await timers.run(2500);
    expect(failures.map((e) => (e as Error).message)).toEqual(['bad', 'down']);
    expect(calls.length).toBe(4);
  });

  it('goes on checking when the report of a failure throws itself (found by review: the checks stopped)', async () => {
    const { timers, calls, failures, checks } = schedule({
      failedThrows: true,
      check: () => {
        if (calls.length === 1) throw new Error('bad');
        return Promise.reject(new Error('down'));
      },
    });
    checks.start();
    await timers.run(2500);
    expect(failures.map((e) => (e as Error).message)).toEqual(['bad', 'down', 'down', 'down']);
    expect(calls.length).toBe(4);
  });

  it('re-arms a timer that fires early by the wall clock for the rest of its delay (the event loop clock lags it)', async () => {
    const { timers, calls, checks } = schedule({ random: 0.5 });
    checks.start();
    timers.skewMs = 2; // the next timer fires while the wall clock still says 2 ms before it is due
    await timers.run(500);
    // Not at 498, when it fired: at 500, when it was due.
    expect(calls.map((c) => c.atMs)).toEqual([0, 500]);
  });

  it('stops: no check after stop()', async () => {
    const { timers, calls, checks } = schedule();
    checks.start();
    await timers.run(1500);
    const before = calls.length;
    checks.stop();
    await timers.run(5000);
    expect(calls.length).toBe(before);
  });
});
