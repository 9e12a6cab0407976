// Counts and counters a broker gets wrong now and then, through the model: what it learns must not
// keep the mistake, and its history must stay one the shared store reads back (found by review).
import { describe, expect, it } from 'vitest';
import { decide, emptyHistory } from '../../src/model/decide.ts';
import { triggerHistorySchema } from '../../src/model/historySchema.ts';
import type { Signals, TriggerHistory } from '../../src/model/types.ts';
import { MAX_REPLICAS } from '../../src/trigger/types.ts';
import { scaling } from '../support/scaling.ts';

/** The history as the store reads it back: the schema's issues, none when it parses. */
const issues = (h: TriggerHistory) =>
  triggerHistorySchema.safeParse(JSON.parse(JSON.stringify(h))).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ??
  [];

describe('a negative count (RabbitMQ has reported negative unacknowledged messages)', () => {
  it.each([
    ['in flight', { backlog: -4, waiting: 0, inFlight: -4 }],
    ['waiting', { backlog: 6, waiting: -4, inFlight: 10 }],
    ['consumers', { backlog: 6, waiting: 2, inFlight: 4, consumers: -1 }],
  ] as const)('once, %s: every history after it is one the store reads back', (_, odd) => {
    let history = emptyHistory();
    for (let i = 0; i < 20; i++) {
      const signals: Signals = {
        backlog: 0,
        waiting: 0,
        inFlight: 0,
        consumers: 1,
        arrivedTotal: 100 + i,
        servedTotal: 100 + i,
        ...(i === 3 && odd),
      };
      const out = decide({ signals, scaling, history, nowMs: 1.7e12 + i * 15_000 });
      expect(issues(out.history), `decision ${i}`).toEqual([]);
      expect(out.decision.desiredReplicas).toBeGreaterThanOrEqual(scaling.minReplicas);
      history = out.history;
    }
  });
});

/**
 * A Kafka consumer group read every 15 s (or `stepMs` later) through the model: `read` gives μ as
 * the model then explains it.
 */
function kafkaGroup() {
  const kafka = { ...scaling, coldStartSeconds: 60 as const, keepWarm: 0 as const };
  let history = emptyHistory();
  let nowMs = 1.7e12;
  const group = { arrived: 1_000_000, served: 900_000, backlog: 100_000 };
  const read = (consumers: number, servedNow: number, arrivedNow = servedNow, stepMs = 15_000) => {
    nowMs += stepMs;
    group.arrived += arrivedNow;
    group.served += servedNow;
    group.backlog += arrivedNow - servedNow;
    const { backlog, arrived, served } = group;
    const signals: Signals = {
      backlog,
      arrivedTotal: arrived,
      servedTotal: served,
      orderedQueues: 1,
      counterBasis: 'p',
      consumers,
    };
    const out = decide({ signals, scaling: kafka, history, nowMs });
    history = out.history;
    return out.decision.explanation.details.throughputPerReplica;
  };
  return { group, read };
}

describe("a Kafka consumer group's offsets reset to the latest", () => {
  it('is no throughput: μ learned from the saturated stretches stays what they served', () => {
    const { group, read } = kafkaGroup();
    // Saturated at 2 a second a consumer: 4 consumers, then 5.
    for (let i = 0; i < 40; i++) read(4, 120);
    read(5, 120);
    for (let i = 0; i < 40; i++) read(5, 150);
    expect(read(5, 150)).toBeCloseTo(2, 1);
    // kafka-consumer-groups --reset-offsets --to-latest: the whole lag "served" in one interval.
    read(5, group.backlog, 0);
    expect(read(5, 150)).toBeCloseTo(2, 1);
  });
});

describe('a saturated stretch that closes just after the clock stepped back a little', () => {
  // Found by review of the stretch's close: dt is 0 then, and the stretch closed at this reading.
  it.each([0, 60_000, 110_000])('is measured to its last busy reading (stepped back %i ms): μ what it served', (stepMs) => {
    const { read } = kafkaGroup();
    for (let i = 0; i < 40; i++) read(4, 120);
    expect(read(5, 120, 120, -stepMs)).toBeCloseTo(2, 1);
  });
});

describe('asks a large fleet flaps through', () => {
  it(`are remembered as at most ${MAX_REPLICAS} replicas: the history stays one the store reads back`, () => {
    const flapping = {
      ...scaling,
      messagesPerReplica: 1,
      maxReplicas: MAX_REPLICAS,
      coldStartSeconds: 300 as const,
      keepWarm: 0 as const,
    };
    let history = emptyHistory();
    for (let i = 0; i < 200; i++) {
      const signals: Signals = { backlog: i % 2 === 0 ? MAX_REPLICAS : 0 };
      history = decide({ signals, scaling: flapping, history, nowMs: 1.7e12 + i * 1000 }).history;
      expect(issues(history), `decision ${i}`).toEqual([]);
    }
  });
});
