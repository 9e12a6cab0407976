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

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i);

/** A busy loop (four time constants at full load: the average is past any target below 1). */
function busyLoop(target = 0.5) {
  const { loop, admission } = fakeLoop(target);
  loop.busy = 1;
  loop.nowMs = 200;
  return { loop, admission };
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
    expect(started).toEqual(upTo(16));
    expect(admission.queued).toBe(24);
    await vi.advanceTimersByTimeAsync(1);
    expect(started).toHaveLength(32);
    await vi.advanceTimersByTimeAsync(1);
    expect(started).toEqual(upTo(40));
    expect(admission.queued).toBe(0);
  });

  it('holds reads past the first 4 in flight while the loop is busier than the target, and lets them go, oldest first, once it is not', async () => {
    const { loop, admission } = busyLoop();
    const started: number[] = [];
    ask(admission, 20, started);
    expect(started).toEqual(upTo(4));
    expect(admission.loopBusy).toBeGreaterThan(0.9);
    await pass(loop, 20);
    expect(started).toEqual(upTo(4));
    expect(admission.queued).toBe(16);
    // A read asked for meanwhile waits behind them, even once the loop is idle again.
    loop.busy = 0;
    loop.nowMs += 200;
    ask(admission, 1, started, 20);
    expect(started).toEqual(upTo(4));
    await pass(loop);
    expect(started).toEqual(upTo(20));
    await pass(loop);
    expect(started).toEqual(upTo(21));
  });

  it('starts reads however busy the loop is while fewer than 4 are in flight: steady reads never wait', async () => {
    const { loop, admission } = busyLoop();
    const started: number[] = [];
    for (let i = 0; i < 100; i++) {
      ask(admission, 1, started, i);
      expect(started).toHaveLength(i + 1);
      admission.done();
    }
    // A burst: 4 go, the rest wait; as reads settle, as many more go.
    ask(admission, 10, started, 100);
    expect(started).toHaveLength(104);
    admission.done();
    admission.done();
    await pass(loop);
    expect(started).toHaveLength(106);
    await pass(loop, 5);
    expect(started).toHaveLength(106);
    expect(admission.queued).toBe(4);
  });

  it('lets a read go once it has waited MAX_WAIT_MS however busy the loop stays: none starves', async () => {
    const { loop, admission } = busyLoop();
    const started: number[] = [];
    ask(admission, 20, started);
    await pass(loop, 10);
    ask(admission, 1, started, 20);
    await pass(loop, MAX_WAIT_MS - 11);
    expect(started).toEqual(upTo(4));
    await pass(loop);
    // The 16 waiting since the start have waited long enough; the last not yet.
    expect(started).toEqual(upTo(20));
    await pass(loop, 9);
    expect(started).toEqual(upTo(20));
    await pass(loop);
    expect(started).toEqual(upTo(21));
  });

  it('averages the busy share over about 50 ms: one busy millisecond does not hold reads', () => {
    const { loop, admission } = fakeLoop(0.5);
    const started: number[] = [];
    ask(admission, 4, started);
    loop.busy = 1;
    loop.nowMs = 1;
    ask(admission, 1, started, 4);
    expect(started).toEqual(upTo(5));
    expect(admission.loopBusy).toBeCloseTo(1 - Math.exp(-1 / 50), 6);
  });

  it('lets every waiting read go on close, and reads at once after it', async () => {
    const { admission } = busyLoop();
    const started: number[] = [];
    ask(admission, 100, started);
    expect(started).toEqual(upTo(4));
    admission.close();
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toHaveLength(100);
    expect(admission.queued).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    // Calls still draining after the close read at once.
    expect(admission.admit()).toBeUndefined();
  });

  it('keeps the queue bounded by what waits, when reads are asked for as fast as they go', async () => {
    const { loop, admission } = busyLoop();
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
