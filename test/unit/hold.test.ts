import { describe, expect, it } from 'vitest';
import { decide, emptyHistory } from '../../src/model/decide.ts';
import { endedDips, holdCost, learnedHold } from '../../src/model/hold.ts';
import { triggerHistorySchema } from '../../src/model/historySchema.ts';
import type { Signals, TriggerHistory } from '../../src/model/types.ts';
import type { ScalingConfig } from '../../src/trigger/types.ts';
import { scaling } from '../support/scaling.ts';

describe('endedDips: the levels the demand asks for again, or that passed the window', () => {
  // The sliding maximum before the decision at 100 s (window 40 s): 6 last asked at 70 s, 4 at 85
  // s, 2 at 95 s (the previous decision's).
  const marks = [
    { atMs: 70_000, replicas: 6 },
    { atMs: 85_000, replicas: 4 },
    { atMs: 95_000, replicas: 2 },
  ];
  it.each([
    // demand now, dips
    { demand: 2, dips: [] }, // nothing asked again
    { demand: 3, dips: [{ seconds: 15, replicas: 1 }] }, // level 3, last asked at 85 s
    { demand: 4, dips: [{ seconds: 15, replicas: 2 }] },
    {
      demand: 5,
      dips: [
        { seconds: 30, replicas: 1 },
        { seconds: 15, replicas: 2 },
      ],
    }, // level 5 from 70 s
    {
      demand: 9,
      dips: [
        { seconds: 30, replicas: 2 },
        { seconds: 15, replicas: 2 },
      ],
    }, // above the marks: no dip
  ])('demand $demand at 100 s: $dips', ({ demand, dips }) => {
    expect(endedDips(marks, demand, 100_000, 40_000)).toEqual(dips);
  });

  it('records a level whose mark left the window as a dip of twice the window', () => {
    // At 115 s the mark of 70 s is 45 s old, past the 40 s window: levels 5 and 6 stayed unasked.
    expect(endedDips(marks, 2, 115_000, 40_000)).toEqual([{ seconds: 80, replicas: 2 }]);
  });

  it('counts a mark from a clock a little ahead as a dip of none, never a negative one', () => {
    // The replica that wrote the marks runs ahead of this one: its 85 s is this one's 80 s.
    expect(endedDips(marks, 5, 80_000, 40_000)).toEqual([
      { seconds: 10, replicas: 1 },
      { seconds: 0, replicas: 2 },
    ]);
  });

  it('finds none in a list of one mark or none', () => {
    expect(endedDips([], 3, 0, 40_000)).toEqual([]);
    expect(endedDips([{ atMs: 0, replicas: 4 }], 5, 15_000, 40_000)).toEqual([]);
  });
});

describe('holdCost: Σ replicas · (dip <= h ? dip : h + C)', () => {
  const dips = [
    { seconds: 10, replicas: 1 },
    { seconds: 30, replicas: 2 },
    { seconds: 200, replicas: 1 },
  ];
  it.each([
    { h: 0, C: 40, cost: 4 * 40 },
    { h: 10, C: 40, cost: 10 + 2 * 50 + 50 },
    { h: 30, C: 40, cost: 10 + 2 * 30 + 70 },
    { h: 40, C: 40, cost: 10 + 2 * 30 + 80 },
  ])('h $h s, C $C s: $cost', ({ h, C, cost }) => {
    expect(holdCost(dips, h, C)).toBe(cost);
  });
});

describe('learnedHold: the hold that cost least over the recent dips, at most C', () => {
  const dip = (seconds: number, replicas = 1) => ({ seconds, replicas });
  it.each([
    { what: 'too few dips: C', dips: [dip(600), dip(600)], seconds: 40, source: 'cold start' },
    // Periodic batches: every level given back stayed unasked past C, and a hold bought nothing.
    { what: 'long dips: none', dips: [dip(80), dip(80, 3), dip(80)], seconds: 0, source: 'learned' },
    // Steady traffic: the noise's dips of 15-30 s come back before C, and are worth bridging.
    { what: 'short dips: the longest', dips: [dip(15), dip(30), dip(15, 2), dip(80)], seconds: 30, source: 'learned' },
    // One short dip among long ones: bridging it costs more in holds of the long ones than its cold start.
    { what: 'a short dip among long ones: none', dips: [dip(15), dip(80, 4), dip(80)], seconds: 0, source: 'learned' },
    // Dips of 39 s cost 39 each to bridge against 40 not to, and a hold of 39 s as much as one of C.
    { what: 'dips just under C and no other: C', dips: [dip(39), dip(39), dip(39)], seconds: 40, source: 'learned' },
    { what: 'dips of 10 s and one long: 10 s', dips: [dip(10), dip(10), dip(10), dip(80)], seconds: 10, source: 'learned' },
    // Bridged or not, dips of exactly C cost the same: the longer hold, C.
    { what: 'a tie: the longer hold', dips: [dip(20), dip(20), dip(60, 1)], seconds: 20, source: 'learned' },
  ] as const)('$what', ({ dips, seconds, source }) => {
    expect(learnedHold(dips, 40)).toEqual({ seconds, source });
  });
});

describe('decide: the hold, learned at T >= C once no queue stands', () => {
  // μ = 2.5 per replica, k = 4 (S = 1.6 s); T = 60 s, C = 40 s. The demand fell from 4 replicas at
  // 0 s to 1 at 15 s; now, at 30 s, the queue is empty and 1 replica serves.
  const fleet: ScalingConfig = {
    ...scaling,
    throughputPerReplica: 2.5,
    messagesPerReplica: 4,
    drainSeconds: 60,
    coldStartSeconds: 40,
  };
  const signals = (waiting: number): Signals => ({
    backlog: waiting + 1,
    waiting,
    inFlight: 1,
    arrivalRatePerSecond: 0.5,
    consumers: 4,
  });
  const history = (holdDips: TriggerHistory['holdDips']): TriggerHistory => ({
    ...emptyHistory(),
    lastActive: true,
    lastDesiredReplicas: 4,
    lastDecisionAtMs: 15_000,
    lastWorkAtMs: 15_000,
    lastThroughputKnown: true,
    recentAsks: [],
    recentDemands: [
      { atMs: 0, replicas: 4 },
      { atMs: 15_000, replicas: 1 },
    ],
    holdDips,
  });
  const longDips = [200, 200, 200].map((seconds) => ({ seconds, replicas: 3 }));
  it.each([
    { what: 'no dips seen: held for C', dips: undefined, waiting: 0, T: 60, desired: 4, holdSeconds: 40, source: 'cold start' },
    { what: 'dips past C: let go at once', dips: longDips, waiting: 0, T: 60, desired: 1, holdSeconds: 0, source: 'learned' },
    // A queue standing, the hold keeps the drain going: for C.
    { what: 'a queue stands: for C', dips: longDips, waiting: 30, T: 60, desired: 4, holdSeconds: 40, source: 'cold start' },
    // T < C: a replica missing leaves requests late, which the dips do not price.
    { what: 'T < C: for C', dips: longDips, waiting: 0, T: 30, desired: 4, holdSeconds: 40, source: 'cold start' },
  ] as const)('$what', ({ dips, waiting, T, desired, holdSeconds, source }) => {
    const d = decide({
      signals: signals(waiting),
      scaling: { ...fleet, drainSeconds: T },
      history: history(dips),
      nowMs: 30_000,
    });
    expect(d.decision.desiredReplicas).toBe(desired);
    expect(d.decision.explanation.details.holdSeconds).toBe(holdSeconds);
    expect(d.decision.explanation.details.holdSource).toBe(source);
  });

  it('learns the dips as the demand comes back, and keeps them in a history the store reads back', () => {
    // 600 waiting at 30 s ask for 4 again ((600 + λS + noise) / (k + μT) = 3.96): levels 2-4, last
    // asked at 0 s, dipped for 30 s.
    const back = decide({ signals: signals(600), scaling: fleet, history: history(undefined), nowMs: 30_000 });
    expect(back.decision.explanation.demands.backlog).toBe(4);
    expect(back.history.holdDips).toEqual([{ seconds: 30, replicas: 3 }]);
    expect(triggerHistorySchema.safeParse(back.history).success).toBe(true);
    // At most 32 are kept, the newest.
    const many = Array.from({ length: 32 }, (_, i) => ({ seconds: i, replicas: 1 }));
    const kept = decide({ signals: signals(600), scaling: fleet, history: history(many), nowMs: 30_000 }).history.holdDips;
    expect(kept).toHaveLength(32);
    expect(kept![0]).toEqual({ seconds: 1, replicas: 1 });
    expect(kept![31]).toEqual({ seconds: 30, replicas: 3 });
  });
});
