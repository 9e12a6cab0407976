import { describe, expect, it } from 'vitest';
import { ASK_PEAK_WINDOW_MS, HINT_AFTER_SECONDS, readConsumers } from '../../src/model/consumerRatio.ts';
import { decide, emptyHistory } from '../../src/model/decide.ts';
import type { ConsumerRatio, ReplicaMark, Signals, TriggerHistory } from '../../src/model/types.ts';
import { scaling } from '../support/scaling.ts';

/** `seconds` of readings a second apart, each with these consumers (as replicas) and this ask. */
function readFor(seconds: number, replicas: number, asked: number, perReplica = 1, start?: ConsumerRatio) {
  let peaks: readonly ReplicaMark[] = [];
  let ratio = start;
  let suggested: number | undefined;
  for (let s = 1; s <= seconds; s++) {
    const read = readConsumers(replicas, asked, perReplica, peaks, ratio, s * 1000, 1);
    peaks = read.askPeaks;
    ratio = read.ratio;
    suggested = read.suggested;
  }
  return { ratio, suggested };
}

describe('readConsumers: consumers read against the replicas asked', () => {
  it.each([
    // consumers as replicas, asked, the trigger's consumersPerReplica, seconds read, what it suggests
    { replicas: 8, asked: 2, perReplica: 1, seconds: HINT_AFTER_SECONDS, suggested: 4 },
    { replicas: 4, asked: 2, perReplica: 1, seconds: HINT_AFTER_SECONDS, suggested: 2 },
    // Told 2 where the replicas open 4: read as replicas, twice the ask.
    { replicas: 4, asked: 2, perReplica: 2, seconds: HINT_AFTER_SECONDS, suggested: 4 },
    // As many as asked, or fewer (replicas starting): nothing to say.
    { replicas: 2, asked: 2, perReplica: 1, seconds: HINT_AFTER_SECONDS, suggested: undefined },
    { replicas: 1, asked: 4, perReplica: 1, seconds: HINT_AFTER_SECONDS, suggested: undefined },
    // Half again as many (a minReplicaCount of 3 under an ask of 2): under the ratio that is said.
    { replicas: 3, asked: 2, perReplica: 1, seconds: HINT_AFTER_SECONDS, suggested: undefined },
    // Not read for long enough.
    { replicas: 8, asked: 2, perReplica: 1, seconds: HINT_AFTER_SECONDS - 1, suggested: undefined },
  ])('$replicas consumers a replica-count, $asked asked, told $perReplica, $seconds s: $suggested', (c) => {
    expect(readFor(c.seconds, c.replicas, c.asked, c.perReplica).suggested).toBe(c.suggested);
  });

  it('reads nothing while nothing is asked, nor where the sources count no consumers', () => {
    expect(readFor(HINT_AFTER_SECONDS, 4, 0).ratio).toBeUndefined();
    const none = readConsumers(undefined, 2, 1, [], undefined, 1000, 1);
    expect(none).toEqual({ askPeaks: [], ratio: undefined, suggested: undefined });
  });

  it('reads only while the ask is near the largest of the window: a fleet the HPA still holds from a larger one is no evidence', () => {
    // Asked 8 a minute ago, 2 now: the HPA may keep 8 for its stabilization window.
    const peaks = [{ atMs: 0, replicas: 8 }];
    const held = readConsumers(8, 2, 1, peaks, undefined, 60_000, 1);
    expect(held.ratio).toBeUndefined();
    expect(held.askPeaks).toEqual([...peaks, { atMs: 60_000, replicas: 2 }]);
    // Once the larger ask has left the window, the smaller one is the fleet's size.
    const after = readConsumers(8, 2, 1, held.askPeaks, undefined, ASK_PEAK_WINDOW_MS + 1, 1);
    expect(after.ratio).toEqual({ log2: 2, seconds: 1 });
  });

  it('takes a silence as a minute at most, and lets a corrected setting fade the ratio', () => {
    const read = readConsumers(8, 2, 1, [], { log2: 2, seconds: 10 }, 1_000_000, 900);
    expect(read.ratio!.seconds).toBe(70);
    // Told 4 after reading 4: the ratio falls under the hint within a few minutes of the readings.
    const fixed = readFor(300, 2, 2, 4, { log2: 2, seconds: HINT_AFTER_SECONDS });
    expect(fixed.suggested).toBeUndefined();
    expect(fixed.ratio!.log2).toBeLessThan(1);
  });
});

describe('decide: says the consumersPerReplica the consumers suggest', () => {
  const signals: Signals = {
    backlog: 4,
    waiting: 0,
    inFlight: 4,
    consumers: 8,
    arrivalRatePerSecond: 1,
    serviceRatePerSecond: 1,
  };

  it('after ten minutes of 8 consumers for 2 replicas asked, and not before', () => {
    const cfg = { ...scaling, maxReplicas: 2, minReplicas: 2 };
    let history: TriggerHistory = emptyHistory();
    const details: (number | string | boolean | undefined)[] = [];
    for (let s = 0; s <= HINT_AFTER_SECONDS + 1; s++) {
      const out = decide({ signals, scaling: cfg, history, nowMs: 1_000_000 + s * 1000 });
      history = out.history;
      details.push(out.decision.explanation.details.consumersPerReplicaSuggested);
    }
    expect(details.slice(0, HINT_AFTER_SECONDS - 1).every((d) => d === undefined)).toBe(true);
    expect(details.at(-1)).toBe(4);
  });
});
