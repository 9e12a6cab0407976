import { describe, expect, it } from 'vitest';
import { ceilSafe, decide, emptyHistory } from '../../src/model/decide.ts';
import type { Signals } from '../../src/model/types.ts';
import type { ScalingConfig } from '../../src/trigger/types.ts';

const scaling: ScalingConfig = {
  messagesPerReplica: 5,
  throughputPerReplica: undefined,
  coldStartSeconds: 60,
  drainSeconds: 60,
  activationBacklog: 0,
  minReplicas: 1,
  maxReplicas: 100,
  keepWarm: 0,
};

const run = (signals: Signals, overrides: Partial<ScalingConfig> = {}) =>
  decide({ signals, scaling: { ...scaling, ...overrides }, history: emptyHistory(), nowMs: 0 }).decision;

describe('ceilSafe', () => {
  it.each([
    [7 / 0.7, 10],
    [0.1 + 0.2, 1],
    [3.000001, 4],
    [4, 4],
    [0, 0],
  ])('ceilSafe(%d) = %d', (x, expected) => expect(ceilSafe(x)).toBe(expected));
});

describe('decide without rates (KEDA queue rule)', () => {
  it.each([
    // backlog, messagesPerReplica, min, max, desired
    [0, 5, 1, 100, 1],
    [1, 5, 1, 100, 1],
    [23, 5, 1, 100, 5],
    [1000, 5, 1, 100, 100],
    [1000, 5, 1, 50, 50],
    [7, 0.7, 1, 100, 10],
    [3, 5, 2, 100, 2],
  ])('backlog %d, %d per replica, bounds [%d, %d] -> %d', (backlog, messagesPerReplica, minReplicas, maxReplicas, desired) => {
    const d = run({ backlog }, { messagesPerReplica, minReplicas, maxReplicas });
    expect(d.desiredReplicas).toBe(desired);
  });

  it('is active above the activation backlog only', () => {
    expect(run({ backlog: 0 }).active).toBe(false);
    expect(run({ backlog: 1 }).active).toBe(true);
    expect(run({ backlog: 10 }, { activationBacklog: 10 }).active).toBe(false);
    expect(run({ backlog: 11 }, { activationBacklog: 10 }).active).toBe(true);
  });

  it('caps at the replica cap and says so', () => {
    const d = run({ backlog: 100, replicaCap: 3 });
    expect(d.desiredReplicas).toBe(3);
    expect(d.explanation.winner).toBe('replicaCap');
  });

  it('takes the larger of backlog and GPU demand, and stays active while GPUs are busy', () => {
    const d = run({ backlog: 0, busyGpus: 7, gpuTargetUtilization: 0.7, gpuActivationThreshold: 0.2 });
    expect(d.desiredReplicas).toBe(10);
    expect(d.explanation.winner).toBe('gpu');
    expect(d.active).toBe(true);
    expect(run({ backlog: 0, busyGpus: 0.1, gpuTargetUtilization: 0.7, gpuActivationThreshold: 0.2 }).active).toBe(false);
  });
});
