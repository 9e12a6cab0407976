import { describe, expect, it } from 'vitest';
import {
  type ColdStartState,
  coldStartSeconds,
  meanColdStartSeconds,
  observeReady,
  excessLateShare,
  quantile,
  trackAsks,
} from '../../src/model/coldStart.ts';
import { decide, emptyHistory } from '../../src/model/decide.ts';
import type { ReplicaMark, Signals, TriggerHistory } from '../../src/model/types.ts';
import { scaling } from '../support/scaling.ts';

const mark = (atS: number, replicas: number): ReplicaMark => ({ atMs: atS * 1000, replicas });

/** The tables' prior: coldStartPriorSeconds of the model tests' settings (the field's default, written out). */
const PRIOR = scaling.coldStartPriorSeconds;
const settingOf = (coldStartSeconds: 'auto' | number, coldStartPriorSeconds: number) => ({
  coldStartSeconds,
  coldStartPriorSeconds,
});

describe('trackAsks: the replicas asked for and not serving yet', () => {
  it.each([
    // pending, ready, asked, now s, pending after
    { why: 'from zero: every replica asked', pending: [], ready: 0, asked: 3, nowS: 10, after: [mark(10, 3)] },
    { why: 'beyond the HPA tolerance: the rest', pending: [], ready: 10, asked: 12, nowS: 5, after: [mark(5, 2)] },
    { why: 'within the HPA tolerance (11/10): no mark', pending: [], ready: 10, asked: 11, nowS: 5, after: [] },
    {
      why: 'the target counts pending ones (14/13 within)',
      pending: [mark(0, 3)],
      ready: 10,
      asked: 14,
      nowS: 5,
      after: [mark(0, 3)],
    },
    { why: 'a larger ask adds to them', pending: [mark(0, 3)], ready: 10, asked: 16, nowS: 5, after: [mark(0, 3), mark(5, 3)] },
    {
      why: 'an ask below the target drops the newest',
      pending: [mark(0, 3), mark(5, 3)],
      ready: 10,
      asked: 11,
      nowS: 9,
      after: [mark(0, 1)],
    },
    { why: 'scale to zero drops them all', pending: [mark(0, 2)], ready: 1, asked: 0, nowS: 9, after: [] },
    // Taken back within one HPA sync the ask may never have been read (found on a held-out trace:
    // a stream check's 17 of 15, the next 16, and the mark waited 91 s for a later ask's replica).
    {
      why: 'taken back within a sync to an ask the HPA would not act on (16/15): the mark goes',
      pending: [mark(10, 2)],
      ready: 15,
      asked: 16,
      nowS: 11,
      after: [],
    },
    {
      why: 'taken back within a sync to an ask that still starts some (13/10): those stay',
      pending: [mark(10, 4)],
      ready: 10,
      asked: 13,
      nowS: 11,
      after: [mark(10, 3)],
    },
    {
      why: 'taken back within a sync: older marks stay, counted in what the ask starts from',
      pending: [mark(0, 2), mark(10, 2)],
      ready: 10,
      asked: 13,
      nowS: 16,
      after: [mark(0, 2)],
    },
    {
      why: 'taken back after a sync (the HPA read it): kept',
      pending: [mark(0, 2)],
      ready: 15,
      asked: 16,
      nowS: 20,
      after: [mark(0, 2)],
    },
    { why: 'the same ask changes nothing', pending: [mark(0, 2)], ready: 1, asked: 3, nowS: 9, after: [mark(0, 2)] },
    {
      why: 'an ask older than 30 minutes is dropped (and asked again, it is a new one)',
      pending: [mark(0, 10)],
      ready: 10,
      asked: 20,
      nowS: 1801,
      after: [mark(1801, 10)],
    },
    // Found by review: the target is at least what was asked last. A consumer that reconnects read
    // as an ask of a replica (its return a sample of seconds: C from 40 s to 5 s in an hour), and an
    // ask a quota never served was dated anew once it expired (C to 20 minutes).
    {
      why: 'a consumer reconnecting (1 of the 2 asked): no ask',
      pending: [],
      ready: 1,
      asked: 2,
      nowS: 9,
      previousAsk: 2,
      after: [],
    },
    {
      why: 'an ask never served, expired: not dated anew while the same is asked',
      pending: [mark(0, 3)],
      ready: 5,
      asked: 8,
      nowS: 1801,
      previousAsk: 8,
      after: [],
    },
    {
      why: 'more than was asked last: the rest',
      pending: [],
      ready: 5,
      asked: 12,
      nowS: 9,
      previousAsk: 8,
      after: [mark(9, 4)],
    },
  ])('$why', ({ pending, ready, asked, nowS, after, ...rest }) => {
    const previousAsk = 'previousAsk' in rest ? rest.previousAsk : undefined;
    expect(trackAsks(pending, ready, asked, nowS * 1000, undefined, previousAsk).pending).toEqual(after);
  });
});

describe('trackAsks: an ask taken back within one HPA sync', () => {
  // 15 ready, a stream check's 17 (a mark of 2), then 16: within the tolerance, it starts nothing.
  const flicker = (steps: readonly [number, number][]) => {
    let state = trackAsks([], 15, steps[0]![1], steps[0]![0] * 1000);
    for (const [s, asked] of steps.slice(1)) state = trackAsks(state.pending, 15, asked, s * 1000, state.retracted);
    return state;
  };

  it('is remembered for one sync and forgotten after it: asked again later, it is a new ask', () => {
    expect(
      flicker([
        [0, 17],
        [1, 16],
      ]),
    ).toEqual({ pending: [], retracted: { atMs: 0, replicas: 2, retractedAtMs: 1000 } });
    expect(
      flicker([
        [0, 17],
        [1, 16],
        [30, 17],
      ]).pending,
    ).toEqual([mark(30, 2)]);
  });

  // Found by review: each flicker back dated the ask anew, so an ask that flickered for a minute,
  // surely read by the HPA, gave a sample up to 45 s short.
  it('asked again within the sync, keeps the date it was first made, and once a sync old it stays', () => {
    const steps: [number, number][] = [];
    for (let s = 0; s < 60; s += 10) steps.push([s, 17], [s + 9, 16]);
    expect(flicker(steps).pending).toEqual([mark(0, 2)]);
    expect(
      flicker([
        [0, 17],
        [1, 16],
        [5, 20],
      ]).pending,
    ).toEqual([mark(0, 2), mark(5, 3)]);
  });
});

describe('observeReady: a rise of the ready count matched to the oldest asks', () => {
  const state = (pending: ReplicaMark[], samples: number[] = []): ColdStartState => ({ pending, samples });
  it.each([
    { why: 'one rise, one sample', s: state([mark(0, 1)]), before: 0, ready: 1, nowS: 30, after: state([], [30]) },
    {
      why: 'oldest first, part of a mark',
      s: state([mark(0, 2), mark(10, 2)]),
      before: 4,
      ready: 7,
      nowS: 40,
      after: state([mark(10, 1)], [40, 40, 30]),
    },
    { why: 'a rise nobody asked for gives nothing', s: state([]), before: 2, ready: 3, nowS: 40, after: state([]) },
    {
      why: 'more than asked: only the asked',
      s: state([mark(5, 1)], [20]),
      before: 0,
      ready: 3,
      nowS: 25,
      after: state([], [20, 20]),
    },
    { why: 'a fall gives nothing', s: state([mark(0, 1)]), before: 3, ready: 2, nowS: 25, after: state([mark(0, 1)]) },
    {
      why: 'no count before: nothing',
      s: state([mark(0, 1)]),
      before: undefined,
      ready: 2,
      nowS: 25,
      after: state([mark(0, 1)]),
    },
  ])('$why', ({ s, before, ready, nowS, after }) => {
    expect(observeReady(s, before, ready, nowS * 1000)).toEqual(after);
  });

  // Found by review: consumers gone for one reading (a broker restarted) made an ask of 33 the dip
  // itself asked for; their return 5 s later was 20 samples of 5 s, the whole window, C 45 s -> 5 s.
  it('takes at most 5 samples from one reading, so a dip and a return do not replace the window', () => {
    const learned = state(
      [mark(1_000, 33)],
      Array.from({ length: 20 }, () => 45),
    );
    const after = observeReady(learned, 0, 21, 1_005_000);
    expect(after.samples).toEqual([...Array.from({ length: 15 }, () => 45), 5, 5, 5, 5, 5]);
    expect(after.pending).toEqual([mark(1_000, 12)]);
    expect(coldStartSeconds({ coldStartSeconds: 'auto', coldStartPriorSeconds: 60 }, after.samples).seconds).toBe(45);
  });

  it('keeps the last 20 samples', () => {
    let s = state([mark(0, 25)]);
    for (let i = 1; i <= 25; i++) s = observeReady(s, i - 1, i, i * 1000);
    expect(s.samples).toEqual(Array.from({ length: 20 }, (_, i) => i + 6));
  });
});

describe('coldStartSeconds: configured, or the 95th percentile weighed against the prior', () => {
  const twenty = Array.from({ length: 20 }, (_, i) => 20 + i); // 20..39
  it.each([
    { why: 'configured wins', setting: 45 as const, samples: twenty, seconds: 45, source: 'configured' },
    {
      why: 'nothing seen: the prior',
      setting: 'auto' as const,
      samples: [],
      seconds: PRIOR,
      source: 'default',
    },
    {
      why: 'nothing seen: a prior set for slow loads',
      setting: 'auto' as const,
      samples: [],
      prior: 110,
      seconds: 110,
      source: 'default',
    },
    {
      why: 'half full: halfway from a prior of 110 s',
      setting: 'auto' as const,
      samples: twenty.slice(0, 10),
      prior: 110,
      seconds: 69.275, // 110 + 0.5 x (28.55 - 110)
      source: 'learned',
    },
    {
      why: 'a full list: its quantile, whatever the prior',
      setting: 'auto' as const,
      samples: twenty,
      prior: 110,
      seconds: 38.05,
      source: 'learned',
    },
    {
      why: 'a full list: its quantile',
      setting: 'auto' as const,
      samples: twenty,
      seconds: 38.05, // the 95th percentile of 20..39, interpolated: 38 + 0.05 of the step to 39
      source: 'learned',
    },
    {
      why: 'half full: halfway from the prior',
      setting: 'auto' as const,
      samples: twenty.slice(0, 10),
      seconds: 44.275, // 60 + 0.5 x (28.55, the 95th percentile of 20..29, - 60)
      source: 'learned',
    },
    {
      why: 'an outlier (a stale ask matched to a restarted pod) left out',
      setting: 'auto' as const,
      samples: [...Array.from({ length: 19 }, () => 30), 3600],
      seconds: 30,
      source: 'learned',
    },
    {
      why: 'slower than the prior: above it',
      setting: 'auto' as const,
      samples: twenty.map((x) => x + 80),
      seconds: 118.05,
      source: 'learned',
    },
  ])('$why', ({ setting, samples, prior = PRIOR, seconds, source }) => {
    const c = coldStartSeconds(settingOf(setting, prior), samples);
    expect(c.source).toBe(source);
    expect(c.seconds).toBeCloseTo(seconds, 9);
  });

  it.each([
    [[5], 0.95, 5],
    [[1, 2, 3, 4, 5], 0.5, 3],
    [[10, 20], 0.95, 19.5],
    [[4, 1, 3, 2], 1, 4],
  ])('quantile(%j, %d) = %d', (list, q, expected) => expect(quantile(list, q)).toBeCloseTo(expected, 9));
});

describe('meanColdStartSeconds: configured, or the mean with the prior counted as two samples', () => {
  it.each([
    { why: 'configured wins', setting: 45 as const, samples: [20, 30], seconds: 45 },
    { why: 'nothing seen: the prior', setting: 'auto' as const, samples: [], seconds: PRIOR },
    {
      why: 'two samples of 20 s against a prior of 110 s: (2 x 110 + 40) / 4',
      setting: 'auto' as const,
      samples: [20, 20],
      prior: 110,
      seconds: 65,
    },
    { why: 'two samples: halfway from the prior', setting: 'auto' as const, samples: [20, 20], seconds: 40 },
    {
      why: 'ten samples of 25 s: (2 x 60 + 250) / 12',
      setting: 'auto' as const,
      samples: Array<number>(10).fill(25),
      seconds: 370 / 12,
    },
    { why: 'slower than the prior: above it', setting: 'auto' as const, samples: [90, 90], seconds: 75 },
  ])('$why', ({ setting, samples, prior = PRIOR, seconds }) => {
    expect(meanColdStartSeconds(settingOf(setting, prior), samples)).toBeCloseTo(seconds, 9);
  });
});

describe('excessLateShare: the share of a burst’s excess that starts past T, over one HPA sync after each cold start', () => {
  const twenty = Array.from({ length: 20 }, (_, i) => 20 + i); // 20..39
  // Each sample c gives clamp((c + 15 − T − offset) / 15, 0, 1): T = 30, offset 0: 20 gives 1/3, 35 and up 1.
  const perSample = (c: number, t: number, offset: number) => Math.min(1, Math.max(0, (c + 15 - t - offset) / 15));
  const meanOf = (list: readonly number[], t: number, offset: number) =>
    list.reduce((sum, c) => sum + perSample(c, t, offset), 0) / list.length;
  it.each([
    // A configured C or the prior bounds the whole reaction: all late past T + offset, else none.
    { why: 'configured longer than T', setting: 45 as const, samples: twenty, t: 30, offset: 0, share: 1 },
    {
      why: 'configured longer than T, the request arrived 20 s in',
      setting: 45 as const,
      samples: twenty,
      t: 30,
      offset: 20,
      share: 0,
    },
    { why: 'configured within T', setting: 20 as const, samples: twenty, t: 30, offset: 0, share: 0 },
    { why: 'configured at T + offset: not longer', setting: 45 as const, samples: [], t: 30, offset: 15, share: 0 },
    { why: 'configured just past T + offset', setting: 45 as const, samples: [], t: 30, offset: 14.9, share: 1 },
    { why: 'nothing seen: the prior (60 s) is longer', setting: 'auto' as const, samples: [], t: 30, offset: 0, share: 1 },
    {
      why: 'nothing seen: the default prior is T itself, not longer',
      setting: 'auto' as const,
      samples: [],
      t: 60,
      offset: 0,
      share: 0,
    },
    { why: 'nothing seen: a prior set past T', setting: 'auto' as const, samples: [], t: 60, offset: 0, prior: 110, share: 1 },
    // Cold starts of 20 s at T = 30: their replicas start the excess over 20-35 s, the last third late.
    {
      why: 'every cold start 20 s, under T',
      setting: 'auto' as const,
      samples: Array<number>(20).fill(20),
      t: 30,
      offset: 0,
      share: 1 / 3,
    },
    { why: 'every cold start 35 s', setting: 'auto' as const, samples: Array<number>(20).fill(35), t: 30, offset: 0, share: 1 },
    {
      why: 'every cold start 14 s: done by 29 s',
      setting: 'auto' as const,
      samples: Array<number>(20).fill(14),
      t: 30,
      offset: 0,
      share: 0,
    },
    {
      why: 'a full list: the mean over its samples',
      setting: 'auto' as const,
      samples: twenty,
      t: 30,
      offset: 0,
      share: meanOf(twenty, 30, 0),
    },
    {
      why: 'a full list, arrived 10 s in',
      setting: 'auto' as const,
      samples: twenty,
      t: 30,
      offset: 10,
      share: meanOf(twenty, 30, 10),
    },
    {
      why: 'a full list, T past every cold start and a sync',
      setting: 'auto' as const,
      samples: twenty,
      t: 60,
      offset: 0,
      share: 0,
    },
    // Half full: halfway from the prior's 1 (60 > 25).
    {
      why: 'half full: halfway from the prior',
      setting: 'auto' as const,
      samples: twenty.slice(0, 10),
      t: 25,
      offset: 0,
      share: 1 + 0.5 * (meanOf(twenty.slice(0, 10), 25, 0) - 1),
    },
    {
      why: 'an outlier (a stale ask matched to a restarted pod) left out',
      setting: 'auto' as const,
      samples: [...Array.from({ length: 19 }, () => 30), 3600],
      t: 50,
      offset: 0,
      share: 0,
    },
  ])('$why', ({ setting, samples, t, offset, prior = PRIOR, share }) => {
    expect(excessLateShare(settingOf(setting, prior), samples, t)(offset)).toBeCloseTo(share, 9);
  });
});

describe('decide with coldStartSeconds auto', () => {
  const auto = { ...scaling, coldStartSeconds: 'auto' as const, throughputPerReplica: 1, messagesPerReplica: 4 };
  const step = (history: TriggerHistory, nowS: number, signals: Signals) =>
    decide({ signals, scaling: auto, history, nowMs: nowS * 1000 });

  it('learns C from replicas asked for and the consumers that follow, and names it in the details', () => {
    let history = emptyHistory();
    let out = step(history, 0, { backlog: 0, waiting: 0, consumers: 0 });
    expect(out.decision.explanation.details).toMatchObject({
      coldStartSeconds: 60,
      coldStartSource: 'default',
      coldStartSamples: 0,
    });
    // Twenty rounds: a backlog asks for replicas from zero; they serve 30 s later; idle again.
    let t = 0;
    for (let round = 0; round < 20; round++) {
      out = step(out.history, (t += 1000), { backlog: 400, waiting: 400, consumers: 0 });
      const asked = out.decision.desiredReplicas;
      expect(asked).toBeGreaterThan(1);
      out = step(out.history, t + 30, { backlog: 400, waiting: 400, consumers: asked });
      out = step(out.history, t + 31, { backlog: 0, waiting: 0, consumers: 0 });
      // Each replica that came is a sample, and each moves C a twentieth of the way from the prior
      // (60 s) toward the samples' quantile; the details say how many there are.
      // (At most 5 from one reading: these come all at once.)
      if (round === 0) {
        expect(out.decision.explanation.details).toMatchObject({
          coldStartSeconds: 60 - (30 * Math.min(asked, 5)) / 20,
          coldStartSamples: Math.min(asked, 5),
        });
      }
    }
    history = out.history;
    expect(history.coldStartSamples).toHaveLength(20);
    expect(history.coldStartSamples!.every((s) => s === 30)).toBe(true);
    const details = step(history, t + 2000, { backlog: 0, waiting: 0, consumers: 0 }).decision.explanation.details;
    expect(details).toMatchObject({ coldStartSeconds: 30, coldStartSource: 'learned', coldStartSamples: 20 });
  });

  it('starts from coldStartPriorSeconds, and each replica that comes moves C from it', () => {
    const slow = { ...auto, coldStartPriorSeconds: 110 };
    let out = decide({ signals: { backlog: 0, waiting: 0, consumers: 0 }, scaling: slow, history: emptyHistory(), nowMs: 0 });
    expect(out.decision.explanation.details).toMatchObject({ coldStartSeconds: 110, coldStartSource: 'default' });
    const at = (nowS: number, signals: Signals) => decide({ signals, scaling: slow, history: out.history, nowMs: nowS * 1000 });
    out = at(1000, { backlog: 400, waiting: 400, consumers: 0 });
    const asked = out.decision.desiredReplicas;
    out = at(1030, { backlog: 400, waiting: 400, consumers: asked });
    expect(out.decision.explanation.details).toMatchObject({
      coldStartSeconds: 110 - (80 * Math.min(asked, 5)) / 20,
      coldStartSamples: Math.min(asked, 5),
    });
  });

  it('learns nothing without a consumer count, nor when C is configured', () => {
    const noCount = step(emptyHistory(), 0, { backlog: 400, waiting: 400 });
    expect(noCount.history.pendingStarts).toBeUndefined();
    expect(noCount.decision.explanation.details.coldStartSamples).toBeUndefined();
    const configured = decide({
      signals: { backlog: 400, waiting: 400, consumers: 0 },
      scaling: { ...auto, coldStartSeconds: 45 },
      history: emptyHistory(),
      nowMs: 0,
    });
    expect(configured.history.pendingStarts).toBeUndefined();
    expect(configured.decision.explanation.details).toMatchObject({ coldStartSeconds: 45, coldStartSource: 'configured' });
  });
});
