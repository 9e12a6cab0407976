import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LoopAdmission, MAX_WAIT_MS } from '../../src/server/loopAdmission.ts';

/** A loop whose busy share and clock the test sets. */
function fakeLoop(target = 0.5) {
  const loop = { busy: 0, nowMs: 0 };
  const admission = new LoopAdmission({ targetUtilization: target, utilization: () => loop.busy, now: () => loop.nowMs });
  return { loop, admission };
}

/** Moves the loop's clock and the timers on by `ms`, a millisecond at a time. */
async function pass(loop: { nowMs: number }, ms = 1): Promise<void> {
  for (let i = 0; i < ms; i++) {
    loop.nowMs += 1;
    await vi.advanceTimersByTimeAsync(1);
  }
}

/** Asks for `n` reads; the ones let in are counted in `started` as they go (FIFO order kept). */
function ask(admission: LoopAdmission, n: number, started: number[], from = 0): void {
  for (let i = from; i < from + n; i++) {
    const waiting = admission.admit();
    if (waiting === undefined) started.push(i);
    else void waiting.then(() => started.push(i));
  }
}

describe('LoopAdmission', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts every read at once with a target of 1', () => {
    const { loop, admission } = fakeLoop(1);
    loop.busy = 1;
    loop.nowMs = 1000;
    const started: number[] = [];
    ask(admission, 1000, started);
    expect(started).toHaveLength(1000);
    expect(admission.queued).toBe(0);
  });

  it('starts 16 reads a turn at once on an idle loop; the rest wait for the next ticks, in order', async () => {
    const { admission } = fakeLoop();
    const started: number[] = [];
    ask(admission, 40, started);
    expect(started).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(admission.queued).toBe(24);
    await vi.advanceTimersByTimeAsync(1);
    expect(started).toHaveLength(32);
    await vi.advanceTimersByTimeAsync(1);
    expect(started).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(admission.queued).toBe(0);
  });

  it('holds reads while the loop is busier than the target and lets them go, oldest first, once it is not', async () => {
    const { loop, admission } = fakeLoop(0.5);
    loop.busy = 1;
    loop.nowMs = 200; // four time constants at full load: the average is past the target
    const started: number[] = [];
    ask(admission, 20, started);
    expect(started).toEqual([]);
    expect(admission.loopBusy).toBeGreaterThan(0.9);
    await pass(loop, 20);
    expect(started).toEqual([]);
    expect(admission.queued).toBe(20);
    // A read asked for meanwhile waits behind them, even once the loop is idle again.
    loop.busy = 0;
    loop.nowMs += 200;
    ask(admission, 1, started, 20);
    expect(started).toEqual([]);
    await pass(loop);
    expect(started).toEqual(Array.from({ length: 16 }, (_, i) => i));
    await pass(loop);
    expect(started).toEqual(Array.from({ length: 21 }, (_, i) => i));
  });

  it('lets a read go once it has waited MAX_WAIT_MS however busy the loop stays: none starves', async () => {
    const { loop, admission } = fakeLoop(0.5);
    loop.busy = 1;
    loop.nowMs = 500;
    const started: number[] = [];
    ask(admission, 20, started);
    loop.nowMs += 10;
    ask(admission, 1, started, 20);
    await pass(loop, MAX_WAIT_MS - 11);
    expect(started).toEqual([]);
    await pass(loop);
    // The first 20 have waited long enough, 16 a tick; the last not yet.
    expect(started).toEqual(Array.from({ length: 16 }, (_, i) => i));
    await pass(loop);
    expect(started).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await pass(loop, 9);
    expect(started).toEqual(Array.from({ length: 21 }, (_, i) => i));
  });

  it('averages the busy share over about 50 ms: one busy millisecond does not hold reads', () => {
    const { loop, admission } = fakeLoop(0.5);
    loop.busy = 1;
    loop.nowMs = 1;
    const started: number[] = [];
    ask(admission, 1, started);
    expect(started).toEqual([0]);
    expect(admission.loopBusy).toBeCloseTo(1 - Math.exp(-1 / 50), 6);
  });

  it('lets every waiting read go on close, and reads at once after it', async () => {
    const { loop, admission } = fakeLoop(0.5);
    loop.busy = 1;
    loop.nowMs = 500;
    const started: number[] = [];
    ask(admission, 100, started);
    expect(started).toEqual([]);
    admission.close();
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toHaveLength(100);
    expect(admission.queued).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    // Calls still draining after the close read at once.
    expect(admission.admit()).toBeUndefined();
  });

  it('keeps the queue bounded by what waits, when reads are asked for as fast as they go', async () => {
    const { loop, admission } = fakeLoop(0.5);
    loop.busy = 1;
    loop.nowMs = 500;
    const started: number[] = [];
    // 16 new reads a tick, each let go after MAX_WAIT_MS: the queue holds about a second's worth.
    for (let t = 0; t < 3000; t++) {
      ask(admission, 16, started, t * 16);
      await pass(loop);
    }
    expect(started.length).toBeGreaterThan(30_000);
    expect(admission.queued).toBeLessThanOrEqual(16 * (MAX_WAIT_MS + 2));
    const internal = (admission as unknown as { waiting: unknown[] }).waiting;
    expect(internal.length).toBeLessThanOrEqual(2 * 16 * (MAX_WAIT_MS + 2) + 1024);
  });
});
