import { describe, expect, it } from 'vitest';
import { emptyHistory } from '../../src/model/decide.ts';
import {
  MIN_SERVED_TO_LEARN,
  acknowledgedBeforeWork,
  detectConcurrency,
  inFlightPastConcurrency,
  learnService,
  littleOnBacklog,
  serviceAveragingSeconds,
} from '../../src/model/service.ts';
import type { Signals, TriggerHistory } from '../../src/model/types.ts';
import type { ScalingConfig } from '../../src/trigger/types.ts';
import { scaling as base } from '../support/scaling.ts';

const scaling: ScalingConfig = { ...base, keepWarm: 'auto' };

/** Feeds one reading per second; returns the last Service. */
function feed(seconds: number, reading: (s: number) => Signals, config = scaling) {
  let history: TriggerHistory = emptyHistory();
  let service = learnService(reading(0), config, history, 0);
  for (let s = 0; s <= seconds; s++) {
    service = learnService(reading(s), config, history, s * 1000);
    history = { ...history, ...service.history, lastDecisionAtMs: s * 1000, lastReady: reading(s).consumers };
  }
  return service;
}

describe("inFlightPastConcurrency: prefetched messages past a replica's concurrency wait", () => {
  it.each([
    // [what, concurrencyPerReplica, signals, inFlight, waiting]
    ['unset: as reported', undefined, { backlog: 64, waiting: 0, inFlight: 64, consumers: 4 }, 64, 0],
    ['4 consumers of 16 prefetched, 4 at once: 48 wait', 4, { backlog: 64, waiting: 0, inFlight: 64, consumers: 4 }, 16, 48],
    ['with ready messages too', 4, { backlog: 70, waiting: 6, inFlight: 64, consumers: 4 }, 16, 54],
    ['no more in flight than the slots: as reported', 4, { backlog: 12, waiting: 0, inFlight: 12, consumers: 4 }, 12, 0],
    ['no consumer count (SQS): as reported', 4, { backlog: 64, waiting: 0, inFlight: 64 }, 64, 0],
    ['no in-flight count (Kafka): as reported', 4, { backlog: 64, consumers: 4 }, undefined, undefined],
    ['waiting unreported: the backlog less in flight', 4, { backlog: 70, inFlight: 64, consumers: 4 }, 16, 54],
  ] as [string, number | undefined, Signals, number | undefined, number | undefined][])(
    '%s',
    (_, concurrencyPerReplica, signals, inFlight, waiting) => {
      const out = inFlightPastConcurrency(signals, concurrencyPerReplica);
      expect(out.inFlight).toBe(inFlight);
      expect(out.waiting).toBe(waiting);
      expect(out.backlog).toBe(signals.backlog);
      if (inFlight === signals.inFlight) expect(out).toBe(signals);
    },
  );

  it('k: the concurrency, not the prefetch, from in-flight per consumer', () => {
    const reading = (t: number): Signals => ({ backlog: 64, waiting: 0, inFlight: 64, servedTotal: 2 * t, consumers: 4 });
    const told = { ...scaling, concurrencyPerReplica: 4 };
    const s = feed(120, (t) => inFlightPastConcurrency(reading(t), told.concurrencyPerReplica), told);
    expect(s.slotsPerReplica).toBeCloseTo(4, 6);
    // 16 in service, 2 served a second: S = 8 s (untold, Little's law read 32 s: the prefetched wait counted as service).
    expect(s.serviceSeconds).toBeCloseTo(8, 6);
    expect(feed(600, reading).serviceSeconds).toBeCloseTo(32, 6);
  });
});

describe('acknowledgedBeforeWork: what the broker counts in flight waits, none of it in service', () => {
  it.each([
    // [what, signals, waiting, prefetched]
    ['4 consumers holding 16 each, none ready: all 64 wait', { backlog: 64, waiting: 0, inFlight: 64, consumers: 4 }, 64, 64],
    ['with ready messages too', { backlog: 70, waiting: 6, inFlight: 64, consumers: 4 }, 70, 64],
    ['none held: the ready ones', { backlog: 6, waiting: 6, inFlight: 0, consumers: 4 }, 6, 0],
    ['waiting unreported: the backlog', { backlog: 70, inFlight: 64 }, 70, 64],
    ['no in-flight count, waiting reported (amqp): the backlog', { backlog: 9, waiting: 9, consumers: 2 }, 9, undefined],
  ] as [string, Signals, number, number | undefined][])('%s', (_, signals, waiting, prefetched) => {
    const out = acknowledgedBeforeWork(signals);
    expect(out.inFlight).toBeUndefined();
    expect(out.waiting).toBe(waiting);
    expect(out.prefetched).toBe(prefetched);
    expect(out.backlog).toBe(signals.backlog);
    expect(out.consumers).toBe(signals.consumers);
  });

  it('leaves a reading without in-flight or waiting counts (Kafka) as it is, but for what is in service, past the lag', () => {
    const lag: Signals = { backlog: 64, consumers: 4, servedTotal: 10 };
    expect(acknowledgedBeforeWork(lag)).toBe(lag);
    expect(acknowledgedBeforeWork({ ...lag, inServiceCounted: true })).toEqual({ ...lag, inServiceCounted: false });
  });

  it("μ from the stretches with every replica busy, not from Little's law on the held messages", () => {
    // 4 consumers serving 4 at once for 8 s (2 a second in all) and holding 16 more each, for 5
    // minutes; then the queue is empty (the busy stretch ends, and counts).
    const reading = (t: number): Signals =>
      t <= 300
        ? { backlog: 64, waiting: 0, inFlight: 64, servedTotal: 2 * t, consumers: 4 }
        : { backlog: 0, waiting: 0, inFlight: 0, servedTotal: 600, consumers: 4 };
    const before = { ...scaling, acknowledgement: 'before-work' as const };
    const s = feed(310, (t) => acknowledgedBeforeWork(reading(t)), before);
    expect(s.source).toBe('saturation');
    expect(s.throughputPerReplica).toBeCloseTo(0.5, 2); // 600 served over 4 consumers' 301 s
    // Read as served, the held messages made S 32 s and k 16: the same μ, the wait inside taken for service.
    const after = feed(300, reading);
    expect(after.source).toBe('in-flight');
    expect(after.serviceSeconds).toBeCloseTo(32, 6);
  });
});

/** A minute of readings: in flight per consumer, served per consumer a second, consumers. */
type Minute = readonly [inFlightPerConsumer: number, servedPerConsumer: number, consumers?: number];

/** Feeds one reading a second, each for the second before it, a minute of each; returns what detectConcurrency read at the end. */
function detectOver(minutes: readonly Minute[], reading: (s: Signals) => Signals = (s) => s) {
  let history: TriggerHistory = emptyHistory();
  let served = 0;
  let out = detectConcurrency(reading({ backlog: 0 }), history, 0, 0);
  for (let t = 0; t <= 60 * minutes.length; t++) {
    const [n, x, consumers = 4] = minutes[Math.max(0, Math.floor((t - 1) / 60))]!;
    if (t > 0) served += x * consumers;
    const signals = { backlog: n * consumers, inFlight: n * consumers, consumers, servedTotal: served };
    out = detectConcurrency(reading(signals), history, t * 1000, t === 0 ? 0 : 1);
    history = { ...history, occupancyMinute: out.minute, occupancyMinutes: out.minutes };
  }
  return out;
}

describe('detectConcurrency: consumers that prefetch past what they serve at once', () => {
  // prettier-ignore
  const cases: [string, Minute[], number | undefined][] = [
    // [what, minutes (in flight per consumer, served per consumer a second[, consumers]), concurrency read]
    ['serving all they hold (S 8 s), 1 to 4 each: none', [[1, 1 / 8], [2, 2 / 8], [4, 4 / 8], [3, 3 / 8]], undefined],
    ['4 at once of 12 prefetched (S 8 s): 4', [[2, 2 / 8], [4, 4 / 8], [12, 4 / 8], [10, 4 / 8]], 4],
    ['the same, the first minute holding 3: 4', [[3, 3 / 8], [8, 4 / 8], [12, 4 / 8]], 4],
    ['the same, never holding fewer than 12: cannot tell', [[12, 4 / 8], [12, 4 / 8], [12, 4 / 8]], undefined],
    ['the same, 2 minutes only: not yet', [[2, 2 / 8], [12, 4 / 8]], undefined],
    ['the mix from S 6 s to 10 s, serving all they hold: none', [[3, 3 / 6], [4, 4 / 10], [2, 2 / 6], [4, 4 / 8]], undefined],
    // A trickle's short requests (S 1 s at 0.2 each) beside 8 s ones would read c = 0.5.
    ['serving all they hold, a trickle minute between: none', [[4, 4 / 8], [0.2, 0.2], [4, 4 / 8], [3, 3 / 8]], undefined],
    ['8 prefetched, 2 at once (S 4 s), the fleet growing: 2', [[1, 1 / 4, 3], [8, 2 / 4, 4], [8, 2 / 4, 8], [4, 2 / 4, 8]], 2],
    // A minute's S is the mean of its completions: one replica at 0.35 a second serves 21 a minute,
    // and a long-tailed mix puts one minute's S at 2.5 times another's (S from 2.8 to 7.2 s; a
    // ServeGen client). Read, c = 2.8 s x 0.4 = 1.14 for 4 slots, at most half the 2.5 held. From
    // 40 completions a minute the same minutes are read (a prefetch that holds 2.5 for 1.14).
    ['one replica serving all it holds, 21 a minute, S 2.9 to 7.2 s: none', [[1.05, 0.37, 1], [1.7, 0.37, 1], [2.52, 0.35, 1], [1.16, 0.4, 1], [1.25, 0.38, 1]], undefined],
    ['the same minutes, 2 replicas serving 40-48 a minute: read', [[1.05, 0.37, 2], [1.7, 0.37, 2], [2.52, 0.35, 2], [1.16, 0.4, 2], [1.25, 0.38, 2]], (1.05 / 0.37) * 0.4],
  ];
  it.each(cases)('%s', (_, minutes, concurrency) => {
    const out = detectOver(minutes);
    if (concurrency === undefined) expect(out.concurrency).toBeUndefined();
    else expect(out.concurrency).toBeCloseTo(concurrency, 6);
  });

  it('sums a minute over two of its S at least: 16 held at 0.5 a second (S 32 s) close after 64 s', () => {
    const out = detectOver([
      [16, 4 / 8],
      [16, 4 / 8],
    ]);
    expect(out.minutes).toEqual([{ serviceSeconds: 32, servedPerConsumer: 0.5, inFlightPerConsumer: 16 }]);
    expect(out.minute?.startMs).toBe(64_000);
  });

  it('reads nothing without in-flight counts, consumers or a served counter', () => {
    const prefetching = cases[1]![1];
    expect(detectOver(prefetching).concurrency).toBeDefined();
    for (const drop of ['inFlight', 'consumers', 'servedTotal'] as const) {
      const out = detectOver(prefetching, (s) => ({ ...s, [drop]: undefined }));
      expect(out.concurrency).toBeUndefined();
      expect(out.minutes).toBeUndefined();
    }
  });

  it('keeps the last 10 minutes: a prefetch gone (the concurrency raised to it) is forgotten', () => {
    const before = cases[1]![1];
    const after = Array.from({ length: 10 }, (_, i): Minute => [8 + (i % 3) * 4, (8 + (i % 3) * 4) / 8]);
    expect(detectOver(before).concurrency).toBeCloseTo(4, 6);
    const out = detectOver([...before, ...after]);
    expect(out.minutes).toHaveLength(10);
    expect(out.concurrency).toBeUndefined();
  });
});

describe("learnService: Little's law from in-flight counts", () => {
  it('learns S = in flight / served per second at any load, and μ = k / S', () => {
    // 12 in flight, 3 served per second: S = 4 s. Nothing waits, so k is messagesPerReplica.
    const s = feed(120, (t) => ({ backlog: 12, waiting: 0, inFlight: 12, servedTotal: 3 * t, consumers: 6 }));
    expect(s.source).toBe('in-flight');
    expect(s.serviceSeconds).toBeCloseTo(4, 6);
    expect(s.slotsPerReplica).toBe(5);
    expect(s.throughputPerReplica).toBeCloseTo(5 / 4, 6);
  });

  it('learns k from in-flight per consumer while messages wait', () => {
    const s = feed(120, (t) => ({ backlog: 30, waiting: 6, inFlight: 24, servedTotal: 6 * t, consumers: 6 }));
    expect(s.slotsPerReplica).toBeCloseTo(4, 6);
    expect(s.serviceSeconds).toBeCloseTo(4, 6);
    expect(s.throughputPerReplica).toBeCloseTo(1, 6);
  });

  it.each([
    // [what, in flight, consumers, waiting, messagesPerReplica, k]
    ['more in flight per consumer than messagesPerReplica while none wait: a floor', 48, 3, 0, 5, 16],
    ['less in flight per consumer while none wait: messagesPerReplica stands', 12, 6, 0, 5, 5],
    ['messages wait: the smoothed sample, below messagesPerReplica too', 12, 6, 6, 5, 2],
  ] as const)('k: %s', (_what, inFlight, consumers, waiting, messagesPerReplica, k) => {
    const s = feed(120, (t) => ({ backlog: inFlight + waiting, waiting, inFlight, servedTotal: 3 * t, consumers }), {
      ...scaling,
      messagesPerReplica,
    });
    expect(s.slotsPerReplica).toBeCloseTo(k, 6);
  });

  it('k: a floor raised too far comes back once messages wait', () => {
    // 16 per consumer while a replica drained, then 4 per consumer with messages waiting.
    const s = feed(120, (t) =>
      t < 10
        ? { backlog: 48, waiting: 0, inFlight: 48, servedTotal: 3 * t, consumers: 3 }
        : { backlog: 20, waiting: 8, inFlight: 12, servedTotal: 3 * t, consumers: 3 },
    );
    expect(s.slotsPerReplica).toBeCloseTo(4, 6);
  });

  it.each([
    // [what, messages waiting, k at 70 s]
    // 8 replicas of 4 slots, every slot busy, S = 4 s (8 served per second); at 60 s 6 of them leave
    // and serve the 24 messages they hold for a few seconds: the brokers count 32 on 2 consumers.
    ['none wait: the drain raises no floor', 0, 4],
    ['messages wait: the drain raises no k either', 10, 4],
  ] as const)('k, when consumers leave: %s', (_what, waiting, k) => {
    const s = feed(
      70,
      (t) => {
        const before = t < 60;
        const drained = t >= 60 && t < 66;
        const consumers = before ? 8 : 2;
        const inFlight = before ? 32 : drained ? 32 : 8;
        return { backlog: inFlight + waiting, waiting, inFlight, servedTotal: 8 * t, consumers };
      },
      { ...scaling, messagesPerReplica: 4 },
    );
    expect(s.slotsPerReplica).toBeCloseTo(k, 6);
  });

  it('k, when consumers leave: a sample that lowers k still counts, and a raise counts again after the drain', () => {
    // S = 4 s: the drain lasts 3 S = 12 s after the consumers fell at 60 s.
    const at = (until: number) =>
      feed(until, (t) => {
        if (t < 60) return { backlog: 40, waiting: 8, inFlight: 32, servedTotal: 8 * t, consumers: 8 };
        if (t < 66) return { backlog: 12, waiting: 4, inFlight: 8, servedTotal: 8 * t, consumers: 4 };
        return { backlog: 40, waiting: 8, inFlight: 32, servedTotal: 8 * t, consumers: 4 };
      });
    expect(at(65).slotsPerReplica).toBeLessThan(3);
    expect(at(71).slotsPerReplica).toBeLessThan(3);
    expect(at(120).slotsPerReplica).toBeCloseTo(8, 3);
  });

  it('k, when consumers leave while nothing completes (a hung consumer): the drain lasts at most 3 times 10 minutes', () => {
    // 10 in flight and nothing served for 6 hours: the evidence's S grows without bound (a drain
    // 1.4e10 years long then, Infinity after 5 days, which no stored record can carry).
    let history: TriggerHistory = emptyHistory();
    const hung = 6 * 3600;
    const reading = (t: number): Signals => ({
      backlog: 12,
      waiting: 2,
      inFlight: 10,
      servedTotal: Math.min(t, 600),
      consumers: t < hung ? 2 : 1,
    });
    let service = learnService(reading(0), scaling, history, 0);
    for (let t = 0; t <= hung; t += 15) {
      service = learnService(reading(t), scaling, history, t * 1000);
      history = { ...history, ...service.history, lastDecisionAtMs: t * 1000, lastReady: reading(t).consumers };
    }
    expect(service.history.drainingUntilMs).toBeDefined();
    expect(service.history.drainingUntilMs! - hung * 1000).toBeLessThanOrEqual(3 * 600 * 1000);
  });

  it(`trusts S after ${MIN_SERVED_TO_LEARN} completions over several service times, not before`, () => {
    // 1 served per second, S = 10 s: 50 served after 50 s, but 4 S = 40 s of evidence only at ~40 s.
    const early = feed(30, (t) => ({ backlog: 10, waiting: 0, inFlight: 10, servedTotal: t, consumers: 2 }));
    expect(early.source).toBeUndefined();
    const later = feed(90, (t) => ({ backlog: 10, waiting: 0, inFlight: 10, servedTotal: t, consumers: 2 }));
    expect(later.serviceSeconds).toBeCloseTo(10, 6);
  });

  it('follows a request mix that changes: S halves within minutes, not hours', () => {
    // S = 8 s for 20 minutes (16 in flight, 2 served/s), then S = 4 s (8 in flight).
    const s = feed(1500, (t) =>
      t < 1200
        ? { backlog: 16, waiting: 0, inFlight: 16, servedTotal: 2 * t, consumers: 4 }
        : { backlog: 8, waiting: 0, inFlight: 8, servedTotal: 2 * t, consumers: 4 },
    );
    expect(s.serviceSeconds).toBeLessThan(4.5);
  });

  it('averages over about 200 completions: a minute at high rates, ten at low ones', () => {
    expect(serviceAveragingSeconds({ occupancySeconds: 100, served: 600, averagingSeconds: 60, spanSeconds: 60 })).toBe(60); // 10/s
    expect(serviceAveragingSeconds({ occupancySeconds: 100, served: 120, averagingSeconds: 600, spanSeconds: 600 })).toBe(600); // 0.2/s
    expect(serviceAveragingSeconds({ occupancySeconds: 100, served: 200, averagingSeconds: 200, spanSeconds: 200 })).toBe(200); // 1/s
  });

  it.each([
    // [what, S seconds, served per second]
    ['long services at a high rate (17 s at 3.4/s, a minute holds 4 S only past 15 s)', 17, 3.4],
    ['minute-long generations at a low rate', 45, 0.4],
    ['short completions at a high rate', 4, 10],
  ] as const)("keeps Little's law once trusted, while S wavers: %s", (_what, S, rate) => {
    // In flight λ·S, wavering ±5 % over two minutes; 4 consumers, none waiting.
    let history: TriggerHistory = emptyHistory();
    const sources = new Set<string | undefined>();
    let last: ReturnType<typeof learnService> | undefined;
    for (let t = 0; t <= 1200; t++) {
      const inFlight = rate * S * (1 + 0.05 * Math.sin((2 * Math.PI * t) / 120));
      const reading: Signals = { backlog: inFlight, waiting: 0, inFlight, servedTotal: rate * t, consumers: 4 };
      last = learnService(reading, scaling, history, t * 1000);
      history = { ...history, ...last.history, lastDecisionAtMs: t * 1000, lastReady: 4 };
      if (t >= 600) sources.add(last.source);
    }
    expect([...sources]).toEqual(['in-flight']);
    expect(last!.serviceSeconds).toBeGreaterThan(S * 0.93);
    expect(last!.serviceSeconds).toBeLessThan(S * 1.07);
  });

  it("keeps Little's law trusted while its window lengthens faster than the readings come", () => {
    // Long requests (S 17 s at 3.4/s: the window is 4 S) whose completions come in clumps, 34
    // every 10 s: between clumps S, and the 4 S window with it, grows faster than the evidence
    // ages (more than a second a second). The evidence still spans the window it had: S stays
    // trusted rather than giving way, for those readings, to KEDA's rule.
    let history: TriggerHistory = emptyHistory();
    const sources = new Set<string | undefined>();
    for (let t = 0; t <= 1200; t++) {
      const reading: Signals = { backlog: 58, waiting: 0, inFlight: 58, servedTotal: 34 * Math.floor(t / 10), consumers: 16 };
      const service = learnService(reading, scaling, history, t * 1000);
      history = { ...history, ...service.history, lastDecisionAtMs: t * 1000, lastReady: 16 };
      if (t >= 600) sources.add(service.source);
    }
    expect([...sources]).toEqual(['in-flight']);
  });

  it('averages over at least 4 service times', () => {
    // 3.4 served per second of 17 s each: 200 completions take 59 s, 4 S 68 s.
    expect(serviceAveragingSeconds({ occupancySeconds: 17 * 204, served: 204, averagingSeconds: 60, spanSeconds: 60 })).toBe(68);
  });

  it('prefers a configured throughput', () => {
    const s = feed(60, (t) => ({ backlog: 12, waiting: 0, inFlight: 12, servedTotal: 3 * t, consumers: 6 }), {
      ...scaling,
      throughputPerReplica: 2,
    });
    expect(s.source).toBe('configured');
    expect(s.throughputPerReplica).toBe(2);
    expect(s.serviceSeconds).toBe(2.5);
  });
});

describe('learnService: what each replica served over the current saturated stretch', () => {
  // 6 consumers, backlog >= 6 · messagesPerReplica all along: one stretch from t = 0.
  it.each([
    // served per second by the fleet, seconds fed, per replica (undefined: fewer than 50 served yet)
    { rate: 3, seconds: 10, perReplica: undefined }, // 30 served
    { rate: 3, seconds: 20, perReplica: 0.5 }, // 60 served over 6 · 20 replica-seconds
    { rate: 12, seconds: 10, perReplica: 2 },
  ])('$rate/s for $seconds s: $perReplica per replica', ({ rate, seconds, perReplica }) => {
    const s = feed(seconds, (t) => ({ backlog: 40, waiting: 16, inFlight: 24, servedTotal: rate * t, consumers: 6 }));
    if (perReplica === undefined) expect(s.saturatedPerReplica).toBeUndefined();
    else expect(s.saturatedPerReplica).toBeCloseTo(perReplica, 6);
  });

  // Found by review: a counter that went back (statistics reset under the same consumers) left the
  // stretch counting from before it, serving less than nothing, then too little once it climbed.
  it('starts over when the served counter goes back, the consumers unchanged', () => {
    const reset = feed(40, (t) => ({
      backlog: 40,
      waiting: 16,
      inFlight: 24,
      servedTotal: t < 20 ? 5000 + 12 * t : 12 * (t - 20),
      consumers: 6,
    }));
    // 12 a second since the reset, 2 per replica; counted from before it, 0.9.
    expect(reset.saturatedPerReplica).toBeCloseTo(2, 6);
  });

  it('starts over when the consumers change, and has none while the fleet is not saturated', () => {
    const grown = feed(60, (t) => ({ backlog: 40, waiting: 16, inFlight: 24, servedTotal: 3 * t, consumers: t < 50 ? 6 : 7 }));
    expect(grown.saturatedPerReplica).toBeUndefined(); // 30 served since the 7th joined
    const idle = feed(60, (t) => ({ backlog: 10, waiting: 0, inFlight: 10, servedTotal: 3 * t, consumers: 6 }));
    expect(idle.saturatedPerReplica).toBeUndefined();
  });
});

describe('learnService: a fleet is saturated when its k slots are full and a message waits for each replica', () => {
  // 4 consumers of 16 slots each (learned from in flight while messages wait), messagesPerReplica 5.
  const full = (t: number): Signals => ({ backlog: 72, waiting: 8, inFlight: 64, servedTotal: 6 * t, consumers: 4 });
  it('measures what each served while they were', () => {
    const s = feed(59, full);
    expect(s.slotsPerReplica).toBe(16);
    expect(s.saturatedPerReplica).toBeCloseTo(1.5, 6);
  });

  it('not when a third full: its served rate is not its capacity (read as one, it asked for replicas it did not need)', () => {
    const third = feed(120, (t) =>
      t < 60 ? full(t) : { backlog: 25, waiting: 0, inFlight: 25, servedTotal: 360 + 2 * (t - 60), consumers: 4 },
    );
    expect(third.slotsPerReplica).toBe(16);
    expect(third.saturatedPerReplica).toBeUndefined();
  });
});

describe("Little's law on the whole backlog (a served counter, no in-flight count: Kafka)", () => {
  /** Five minutes of one reading a second; the last Service and history. */
  const lagFeed = (reading: (t: number) => Signals, config = scaling, seconds = 300) => {
    let history: TriggerHistory = emptyHistory();
    let last = learnService(reading(0), config, history, 0);
    for (let t = 0; t <= seconds; t++) {
      last = learnService(reading(t), config, history, t * 1000);
      history = { ...history, ...last.history, lastDecisionAtMs: t * 1000, lastReady: reading(t).consumers };
    }
    return { service: last, history };
  };

  it.each([
    // [what, backlog at t, served per second, minutes' backlog-seconds per served message, their lowest]
    ['steady: 40 in the backlog, 4 served a second', () => 40, 4, [10, 10, 10, 10], 10],
    [
      'a queue in the first two minutes, none after: the lowest minute',
      (t: number) => (t < 120 ? 80 : 40),
      4,
      [20, 20, 10, 10],
      10,
    ],
    ['fewer than 20 served a minute: no minute counts', () => 4, 0.2, undefined, undefined],
  ] as const)('%s', (_what, backlog, rate, ratios, seconds) => {
    const { history } = lagFeed((t) => ({ backlog: backlog(t), servedTotal: rate * t, consumers: 10 }), scaling, 241);
    expect(history.backlogSecondsPerServed?.map((r) => Math.round(r))).toEqual(ratios);
    expect(littleOnBacklog({ backlog: 40, servedTotal: rate * 242 }, history, 242_000, 1).seconds).toBe(seconds);
  });

  it.each([
    // [μ configured, k = messagesPerReplica, bound: the lowest minute or k / μ, whichever is less]
    [0.4, 5, 10],
    [1, 5, 5],
  ])('bounds what one message spends in service: μ %d, k %d -> %d s', (mu, k, bound) => {
    const { service } = lagFeed(() => ({ backlog: 40, servedTotal: 0, consumers: 10 }), scaling, 0);
    expect(service.inServiceBoundSeconds).toBeUndefined();
    const s = lagFeed((t) => ({ backlog: 40, servedTotal: 4 * t, consumers: 10 }), {
      ...scaling,
      throughputPerReplica: mu,
      messagesPerReplica: k,
    }).service;
    expect(s.inServiceBoundSeconds).toBeCloseTo(bound, 6);
  });

  it('is not taken where in-flight counts say what is in service', () => {
    const s = lagFeed((t) => ({ backlog: 40, waiting: 0, inFlight: 40, servedTotal: 4 * t, consumers: 10 }), {
      ...scaling,
      throughputPerReplica: 0.4,
    }).service;
    expect(s.inServiceBoundSeconds).toBeUndefined();
    expect(s.history.backlogSecondsPerServed).toBeUndefined();
  });
});
