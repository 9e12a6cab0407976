import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Engine, MAX_RETIRED } from '../../src/engine.ts';
import { SourceNotFound, SourceUnavailable } from '../../src/errors.ts';
import type { TriggerRef } from '../../src/trigger/types.ts';
import { SourceRegistry } from '../../src/sources/index.ts';
import type { SourceDriver, SourceReading } from '../../src/sources/source.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import type { RabbitmqSourceConfig } from '../../src/trigger/types.ts';
import { fakeRabbitDriver as fakeDriver, fakeSourceDriver } from '../support/fakeDriver.ts';
import { logLines } from '../support/logLines.ts';

/** A RabbitMQ-kind driver whose queues hold `backlog[queue]` messages; counts the reads. */
function fakeRabbit(backlog: Record<string, number>) {
  const reads: string[] = [];
  const driver = fakeDriver(async (queueName) => {
    reads.push(queueName);
    return { backlog: backlog[queueName] ?? 0 };
  });
  return { driver, reads };
}

function engineWith(
  driver: SourceDriver<RabbitmqSourceConfig>,
  clock: { ms: number; step?: number },
  logger = silentLogger(),
  retentionMs?: number,
) {
  const metrics = new ScalerMetrics(new Registry(), { defaultMetrics: false });
  const engine = new Engine({
    ...(retentionMs !== undefined && { retentionMs }),
    registry: new SourceRegistry([driver as unknown as SourceDriver]),
    cacheTtlMs: 1000,
    sourceTimeoutMs: 2000,
    logger,
    metrics,
    now: () => {
      const ms = clock.ms;
      clock.ms += clock.step ?? 0;
      return ms;
    },
  });
  return { engine, metrics };
}

const ref = (name: string, queueName: string, extra: Record<string, string> = {}): TriggerRef => ({
  name,
  namespace: 'ns',
  metadata: {
    'rabbitmq.host': 'amqp://broker',
    'rabbitmq.queueName': queueName,
    messagesPerReplica: '5',
    keepWarm: '0',
    ...extra,
  },
});

describe('Engine: one decision per reading', () => {
  it('answers calls that get the same cached reading with the same evaluation, and decides again on a new reading', async () => {
    const backlog = { q: 23 };
    const { driver, reads } = fakeRabbit(backlog);
    const clock = { ms: 1_000_000 };
    const { engine } = engineWith(driver, clock);
    const first = await engine.evaluate(engine.trigger(ref('so', 'q')));
    clock.ms += 400;
    const second = await engine.evaluate(engine.trigger(ref('so', 'q')));
    expect(reads).toEqual(['q']);
    expect(second).toBe(first);
    expect(first.metricValue).toBe(5);

    backlog.q = 0;
    clock.ms += 700; // past the cache interval: a new reading, so a new decision
    const third = await engine.evaluate(engine.trigger(ref('so', 'q')));
    expect(reads).toEqual(['q', 'q']);
    expect(third).not.toBe(first);
    expect(third.decision.explanation.signals.backlog).toBe(0);
    // A caller that asks for a fresher reading (a stream's first re-check) gets one, and a decision on it.
    backlog.q = 100;
    const fresh = await engine.evaluate(engine.trigger(ref('so', 'q')), { maxAgeMs: 0 });
    expect(fresh.decision.explanation.signals.backlog).toBe(100);
    expect(fresh.metricValue).toBe(20);
  });

  it('keeps the evaluation it has when a new reading says the same, and makes a new one when it does not', async () => {
    const backlog = { q: 23 };
    const { driver, reads } = fakeRabbit(backlog);
    const clock = { ms: 1_000_000 };
    const { engine } = engineWith(driver, clock);
    await engine.evaluate(engine.trigger(ref('so', 'q')));
    clock.ms += 1100;
    // The second reading gives the first arrival rate (from the backlog's change): a new figure.
    const second = await engine.evaluate(engine.trigger(ref('so', 'q')));
    clock.ms += 1100;
    const third = await engine.evaluate(engine.trigger(ref('so', 'q')));
    expect(reads).toEqual(['q', 'q', 'q']);
    expect(third).toBe(second);

    backlog.q = 24;
    clock.ms += 1100;
    const fourth = await engine.evaluate(engine.trigger(ref('so', 'q')));
    expect(fourth).not.toBe(second);
    expect(fourth.decision.explanation.signals.backlog).toBe(24);
  });

  it('parses a trigger once, whatever order its metadata keys come in (KEDA sends a Go map)', () => {
    const { driver } = fakeRabbit({ q: 1 });
    const { engine } = engineWith(driver, { ms: 1_000_000 });
    const forward = ref('so', 'q');
    const backward: TriggerRef = { ...forward, metadata: Object.fromEntries(Object.entries(forward.metadata).reverse()) };
    expect(Object.keys(backward.metadata)).not.toEqual(Object.keys(forward.metadata));
    expect(engine.trigger(backward)).toBe(engine.trigger(forward));
    expect(engine.trigger(ref('so', 'q', { messagesPerReplica: '6' }))).not.toBe(engine.trigger(forward));
    expect(engine.trigger({ ...forward, name: 'so2' })).not.toBe(engine.trigger(forward));
  });

  // Found by the metadata fuzzer: invalid maps were kept (with their 100 KB values and 1,000 keys)
  // until 20,000 of them filled the memo, some 120 MB per 10,000 fuzzed maps.
  it('keeps only triggers that parse: invalid metadata is refused again on every call, and never kept', () => {
    const { driver } = fakeRabbit({ q: 1 });
    const { engine } = engineWith(driver, { ms: 1_000_000 });
    const memo = (engine as unknown as { parsed: { size: number } }).parsed;
    for (let i = 0; i < 100; i++) {
      const invalid = ref(`so${i}`, 'q', { [`unknown${i}`]: 'x'.repeat(100 * 1024) });
      expect(() => engine.trigger(invalid)).toThrow(/unknown key/);
      expect(() => engine.trigger(invalid)).toThrow(/unknown key/);
    }
    expect(memo.size).toBe(0);
    engine.trigger(ref('so', 'q'));
    expect(memo.size).toBe(1);
  });

  // Found by review: metadata parsed before (an edit reverted) skipped the parse, and its clear.
  it("forgets a ScaledObject's refusal once its metadata is taken again, also metadata it parsed before", () => {
    const { driver } = fakeRabbit({ q: 1 });
    const { engine } = engineWith(driver, { ms: 1_000_000 });
    const good = ref('so', 'q');
    engine.trigger(good);
    expect(() => engine.trigger(ref('so', 'q', { drainSeconds: 'ten' }))).toThrow(/drainSeconds/);
    expect(engine.lastRefusals().map((r) => r.name)).toEqual(['so']);
    engine.trigger(good);
    expect(engine.lastRefusals()).toEqual([]);
  });

  it('answers from fresh cached readings without a promise, and reads stale or failed ones', async () => {
    const backlog = { q: 23 };
    const { driver, reads } = fakeRabbit(backlog);
    const clock = { ms: 1_000_000 };
    const { engine } = engineWith(driver, clock);
    const trigger = engine.trigger(ref('so', 'q'));
    const never = engine.evaluate(trigger); // never read: its sources are not even looked up yet
    expect(never).toBeInstanceOf(Promise);
    const first = await never;
    clock.ms += 500;
    expect(engine.evaluate(trigger)).toBe(first);
    expect(engine.evaluate(trigger, { maxAgeMs: 100 })).toBeInstanceOf(Promise);
    await engine.evaluate(trigger, { maxAgeMs: 100 });
    clock.ms += 1100; // the reading is now older than the cache interval
    backlog.q = 0;
    const stale = engine.evaluate(trigger);
    expect(stale).toBeInstanceOf(Promise);
    const second = await stale;
    expect(reads).toEqual(['q', 'q', 'q']);
    expect(second.decision.explanation.signals.backlog).toBe(0);
    expect(engine.evaluate(trigger)).toBe(second);
  });

  it('decides on a new reading even when it expires while being read (the clock moves on every call)', async () => {
    const backlog = { q: 23 };
    const { driver } = fakeRabbit(backlog);
    const clock = { ms: 1_000_000, step: 0 };
    const { engine } = engineWith(driver, clock);
    // now() reads the clock and then moves it on by `step` ms: every call sees a later time.
    const a = engine.trigger(ref('a', 'q'));
    const b = engine.trigger(ref('b', 'q'));
    for (let offset = 0; offset <= 12; offset++) {
      clock.step = 0;
      const old = await engine.evaluate(a);
      backlog.q++;
      const settledAt = clock.ms;
      await engine.evaluate(b, { maxAgeMs: 0 }); // a new reading of q, which a has not decided on
      // Start `offset` ms before that reading expires (TTL 1000 ms), the clock ticking on every read.
      clock.ms = settledAt + 1000 - offset;
      clock.step = 1;
      const next = await engine.evaluate(a);
      expect(next).not.toBe(old);
      expect(next.decision.explanation.signals.backlog).toBeGreaterThanOrEqual(backlog.q);
      clock.ms += 2000;
    }
  });

  // An audit found the first version vacuous: its source never read, there was no answer to fall back on.
  it('never answers from the cache while the source fails: evaluate rejects, past an answer it had', async () => {
    const clock = { ms: 1_000_000 };
    let down = false;
    const driver = fakeDriver(async () => {
      if (down) throw new Error('connection refused');
      return { backlog: 12 };
    });
    const { engine } = engineWith(driver, clock);
    const trigger = engine.trigger(ref('so', 'q'));
    expect((await engine.evaluate(trigger)).decision.explanation.signals.backlog).toBe(12);
    down = true;
    clock.ms += 5_000;
    await expect(engine.evaluate(trigger)).rejects.toThrow(/connection refused/);
    await expect(engine.evaluate(trigger)).rejects.toThrow(/connection refused/);
  });

  it('keeps the error a trigger was last answered with, for /explain, until it is answered again', async () => {
    const clock = { ms: 1_000_000 };
    let down = false;
    const driver = fakeDriver(async () => {
      if (down) throw new SourceUnavailable('rabbitmq queue "q": connection refused');
      return { backlog: 12 };
    });
    const { engine } = engineWith(driver, clock);
    const trigger = engine.trigger(ref('so', 'q'));
    const other = engine.trigger(ref('other', 'q'));
    await engine.evaluate(trigger);
    expect(engine.lastFailures()).toEqual([]);
    down = true;
    clock.ms += 1500;
    await expect(engine.evaluate(trigger)).rejects.toThrow(/connection refused/);
    expect(engine.lastFailures()).toEqual([
      { trigger, atMs: 1_001_500, code: 'UNAVAILABLE', message: 'rabbitmq queue "q": connection refused' },
    ]);
    // Another trigger of the same source fails on its own account; the first keeps its decision.
    await expect(engine.evaluate(other)).rejects.toThrow(/connection refused/);
    expect(engine.lastFailures().map((f) => f.trigger.name)).toEqual(['so', 'other']);
    expect(engine.lastEvaluations().map((e) => e.trigger.name)).toEqual(['so']);
    down = false;
    clock.ms += 1500;
    await engine.evaluate(trigger);
    expect(engine.lastFailures().map((f) => f.trigger.name)).toEqual(['other']);
  });

  it('keeps each trigger its own decision on a shared reading', async () => {
    const { driver, reads } = fakeRabbit({ q: 23 });
    const { engine } = engineWith(driver, { ms: 1_000_000 });
    const five = await engine.evaluate(engine.trigger(ref('a', 'q')));
    const three = await engine.evaluate(engine.trigger(ref('b', 'q', { messagesPerReplica: '10' })));
    expect(reads).toEqual(['q']);
    expect([five.metricValue, three.metricValue]).toEqual([5, 3]);
    expect((await engine.evaluate(engine.trigger(ref('a', 'q')))).metricValue).toBe(5);
  });

  it('exports the last decision of every trigger in the per-trigger metrics', async () => {
    const { driver } = fakeRabbit({ q: 23, r: 0 });
    const { engine, metrics } = engineWith(driver, { ms: 1_000_000 });
    await engine.evaluate(engine.trigger(ref('a', 'q')));
    await engine.evaluate(engine.trigger(ref('b', 'r')));
    const text = await metrics.render();
    const lines = text.split('\n').filter((l) => l.startsWith('keda_inference_scaler_trigger_desired_replicas{'));
    expect(lines.map((l) => l.replace(/trigger="[^"]+"/, 'trigger="h"')).sort()).toEqual([
      'keda_inference_scaler_trigger_desired_replicas{namespace="ns",scaled_object="a",trigger="h"} 5',
      'keda_inference_scaler_trigger_desired_replicas{namespace="ns",scaled_object="b",trigger="h"} 1',
    ]);
  });

  // Found by review: the line named the queue, not the workloads it held up.
  it("names the ScaledObjects that read a failing source in the log's line", async () => {
    const down: Record<string, boolean> = { q: false };
    const driver = fakeDriver(async (queueName) => {
      if (down[queueName] === true) throw new SourceUnavailable(`fake ${queueName}: connection refused`);
      return { backlog: 1 };
    });
    const { sink, lines } = logLines<{ msg: string; scaledObjects?: string[]; scaledObjectCount?: number }>();
    const clock = { ms: 2_000_000 };
    const { engine } = engineWith(driver, clock, pino({ level: 'warn' }, sink));
    for (const [name, queue] of [
      ['a', 'q'],
      ['b', 'q'],
      ['c', 'r'],
    ] as const)
      await engine.evaluate(engine.trigger(ref(name, queue)));
    down.q = true;
    clock.ms += 1500;
    await expect(engine.evaluate(engine.trigger(ref('a', 'q')))).rejects.toThrow(SourceUnavailable);
    expect(lines.filter((l) => l.msg === 'source query failed')).toEqual([
      expect.objectContaining({ scaledObjects: ['ns/a', 'ns/b'], scaledObjectCount: 2 }),
    ]);
    // A ScaledObject whose very first read fails is named in that read's line too.
    down.z = true;
    await expect(engine.evaluate(engine.trigger(ref('typo', 'z')))).rejects.toThrow(SourceUnavailable);
    expect(lines.filter((l) => l.msg === 'source query failed').at(-1)).toMatchObject({
      scaledObjects: ['ns/typo'],
      scaledObjectCount: 1,
    });
    // One swept as idle and asked again (its parsed trigger and sources kept) is named again too.
    clock.ms += 31 * 60_000;
    engine.sweepIdle();
    down.r = true;
    await expect(engine.evaluate(engine.trigger(ref('c', 'r')))).rejects.toThrow(SourceUnavailable);
    expect(lines.filter((l) => l.msg === 'source query failed').at(-1)).toMatchObject({
      scaledObjects: ['ns/c'],
      scaledObjectCount: 1,
    });
  });

  it('keeps the index of who reads a source bounded: 25,000 distinct triggers on one failing queue', async () => {
    const driver = fakeDriver(async () => {
      throw new SourceUnavailable('fake q: connection refused');
    });
    const { sink, lines } = logLines<{ msg: string; scaledObjectCount?: number }>();
    const clock = { ms: 3_000_000 };
    const { engine } = engineWith(driver, clock, pino({ level: 'warn' }, sink));
    for (let i = 0; i < 25_000; i++) {
      await expect(engine.evaluate(engine.trigger(ref(`so-${i}`, 'q')))).rejects.toThrow(SourceUnavailable);
      clock.ms += 1001; // a read each
    }
    const counts = lines.filter((l) => l.scaledObjectCount !== undefined).map((l) => l.scaledObjectCount!);
    expect(Math.max(...counts)).toBe(20_000);
  });

  // Found by review: a trigger whose queue was deleted (every answer NOT_FOUND) or that KEDA no
  // longer asked about kept its last decision on /metrics, and the at-maxReplicas alert fired on it.
  it('leaves out of the per-trigger metrics a trigger whose last answer was an error, and one not asked about for 10 minutes', async () => {
    const backlog: Record<string, number | undefined> = { q: 23, r: 0 };
    const driver = fakeDriver(async (queueName) => {
      const messages = backlog[queueName];
      if (messages === undefined) throw new SourceNotFound(`fake ${queueName}: no such queue`);
      return { backlog: messages };
    });
    const clock = { ms: 1_000_000 };
    const { engine, metrics } = engineWith(driver, clock);
    const shown = async () =>
      (await metrics.render())
        .split('\n')
        .filter((l) => l.startsWith('keda_inference_scaler_trigger_desired_replicas{'))
        .map((l) => /scaled_object="([^"]+)"/.exec(l)?.[1])
        .sort();
    const a = engine.trigger(ref('a', 'q'));
    const b = engine.trigger(ref('b', 'r'));
    await engine.evaluate(a);
    await engine.evaluate(b);
    expect(await shown()).toEqual(['a', 'b']);
    backlog.q = undefined; // deleted
    clock.ms += 1500;
    await expect(engine.evaluate(a)).rejects.toThrow(SourceNotFound);
    expect(await shown()).toEqual(['b']);
    backlog.q = 4; // back: shown again with its new answer
    clock.ms += 1500;
    await engine.evaluate(a);
    expect(await shown()).toEqual(['a', 'b']);
    // b not asked about for ten minutes and a second (a paused ScaledObject, or one moved elsewhere).
    for (let s = 0; s < 601; s += 30) {
      clock.ms += 30_000;
      await engine.evaluate(a);
    }
    expect(await shown()).toEqual(['a']);
    expect(
      engine
        .lastEvaluations()
        .map((e) => e.trigger.name)
        .sort(),
    ).toEqual(['a', 'b']);
    // Found by review: a's ScaledObject edited (drainSeconds: what it learned carries on) just as
    // its queue was deleted: KEDA gets the edited trigger's errors, and a's last answer was shown as
    // current until it was ten minutes unasked.
    backlog.q = undefined;
    clock.ms += 1500;
    await expect(engine.evaluate(engine.trigger(ref('a', 'q', { drainSeconds: '45' })))).rejects.toThrow(SourceNotFound);
    expect(await shown()).toEqual([]);
  });
});

describe('Engine: consumers that prefetch past their concurrency', () => {
  /** Four consumers; each minute they hold n each and serve x each a second. A reading a second, for the second before it. */
  async function run(minutes: readonly (readonly [n: number, x: number])[], extra: Record<string, string> = {}) {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const clock = { ms: 1_000_000 };
    const startMs = clock.ms;
    let served = 0;
    let n = 0;
    const driver = fakeDriver(async () => ({ backlog: 4 * n, waiting: 0, inFlight: 4 * n, consumers: 4, servedTotal: served }));
    const { engine } = engineWith(driver, clock, logger);
    let evaluation;
    for (let t = 0; t <= 60 * minutes.length; t++) {
      const [held, perConsumer] = minutes[Math.max(0, Math.floor((t - 1) / 60))]!;
      n = held;
      if (t > 0) served += 4 * perConsumer;
      clock.ms = startMs + t * 1000;
      evaluation = await engine.evaluate(engine.trigger(ref('so', 'q', extra)));
    }
    return { lines, details: evaluation!.decision.explanation.details };
  }
  // S 8 s: 2 and 4 held serve a quarter and a half a second, 12 and 10 held a half: c = 4.
  const prefetching = [
    [2, 2 / 8],
    [4, 4 / 8],
    [12, 4 / 8],
    [10, 4 / 8],
  ] as const;

  it('says so once, with the concurrency read, when the model reads it for itself', async () => {
    const { lines, details } = await run([...prefetching, [12, 4 / 8]]);
    expect(details.detectedConcurrencyPerReplica).toBe(4);
    expect(details.prefetchedWaiting).toBe(32);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, detectedConcurrencyPerReplica: 4, consumers: 4 });
    expect(lines[0]!.msg).toContain('concurrencyPerReplica');
  });

  it('says nothing when told the concurrency, or when the consumers serve all they hold', async () => {
    const told = await run(prefetching, { concurrencyPerReplica: '4' });
    expect(told.details.detectedConcurrencyPerReplica).toBeUndefined();
    expect(told.details.prefetchedWaiting).toBe(24);
    expect(told.lines).toEqual([]);
    const serving = await run([
      [2, 2 / 8],
      [4, 4 / 8],
      [3, 3 / 8],
      [4, 4 / 8],
    ]);
    expect(serving.details.detectedConcurrencyPerReplica).toBeUndefined();
    expect(serving.lines).toEqual([]);
  });
});

describe('Engine: more consumers than replicas asked', () => {
  /** Two replicas asked (minReplicas = maxReplicas = 2), eight consumers on the queue: a reading a second for `seconds`. */
  async function run(seconds: number, extra: Record<string, string> = {}) {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const clock = { ms: 1_000_000 };
    const driver = fakeDriver(async () => ({ backlog: 2, waiting: 0, inFlight: 2, consumers: 8 }));
    const { engine } = engineWith(driver, clock, logger);
    const trigger = engine.trigger(ref('so', 'q', { minReplicas: '2', maxReplicas: '2', ...extra }));
    let evaluation;
    for (let t = 0; t <= seconds; t++) {
      clock.ms = 1_000_000 + t * 1000;
      evaluation = await engine.evaluate(trigger);
    }
    return { lines, details: evaluation!.decision.explanation.details };
  }

  it('says once, after ten minutes, the consumersPerReplica the consumers suggest', async () => {
    const early = await run(540);
    expect(early.details.consumersPerReplicaSuggested).toBeUndefined();
    expect(early.lines).toEqual([]);
    const { lines, details } = await run(900);
    expect(details.consumersPerReplicaSuggested).toBe(4);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, consumersPerReplicaSuggested: 4, consumers: 8, consumersPerReplica: 1 });
    expect(lines[0]!.msg).toContain('counted about 4 consumers for each replica');
  });

  it('says nothing when told the consumers a replica opens', async () => {
    const told = await run(900, { consumersPerReplica: '4' });
    expect(told.details.consumersPerReplicaSuggested).toBeUndefined();
    expect(told.lines).toEqual([]);
  });
});

describe('Engine: a trigger whose settings are edited', () => {
  /** Busy, then idle: the old trigger learns that the workload went idle at `idleAtMs`. */
  async function learnIdle(extra: Record<string, string> = {}) {
    const backlog = { q: 8, r: 0 };
    const { driver } = fakeRabbit(backlog);
    const clock = { ms: 1_000_000 };
    const logs: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
    const { engine, metrics } = engineWith(driver, clock, logger);
    const before = ref('so', 'q', { keepWarm: '600', ...extra });
    expect((await engine.evaluate(engine.trigger(before))).decision.active).toBe(true);
    clock.ms += 2000;
    backlog.q = 0;
    const idle = await engine.evaluate(engine.trigger(before));
    expect(idle.decision.explanation.activeReason).toMatch(/^idle since .*: keep warm until/);
    clock.ms += 2000;
    return { engine, metrics, clock, logs, backlog, idleReason: idle.decision.explanation.activeReason };
  }

  it('carries on from what was learned under the old settings: the same ScaledObject and queue, another maxReplicas', async () => {
    const { engine, logs, idleReason } = await learnIdle();
    const edited = engine.trigger(ref('so', 'q', { keepWarm: '600', maxReplicas: '7' }));
    const after = await engine.evaluate(edited);
    // Idle since the old trigger saw the queue empty, and kept warm through the window: a trigger
    // that starts over has never seen work, and would be inactive.
    expect(after.decision.active).toBe(true);
    expect(after.decision.explanation.activeReason).toBe(idleReason);
    expect(engine.learnedUnder(edited)).toBe(engine.trigger(ref('so', 'q', { keepWarm: '600' })).id);
    expect(logs.join('')).toContain('trigger settings edited: it carries on from what was learned under its previous settings');
  });

  it('shows the edited trigger alone in the per-trigger metrics, not the old one beside it until the sweep; /explain shows both', async () => {
    const { engine, metrics } = await learnIdle();
    const scaledObjects = async () =>
      (await metrics.render()).split('\n').filter((l) => l.startsWith('keda_inference_scaler_trigger_desired_replicas{')).length;
    expect(await scaledObjects()).toBe(1);
    const edited = engine.trigger(ref('so', 'q', { keepWarm: '600', maxReplicas: '7' }));
    await engine.evaluate(edited);
    expect(await scaledObjects()).toBe(1);
    expect(engine.lastEvaluations()).toHaveLength(2);
    // Another ScaledObject on the same queue is its own lineage: both show.
    await engine.evaluate(engine.trigger(ref('other', 'q', { keepWarm: '600' })));
    expect(await scaledObjects()).toBe(2);
  });

  it('says when KEDA last asked about each trigger, and which trigger an edit replaced it with, for /explain', async () => {
    const { engine, clock } = await learnIdle();
    const original = engine.trigger(ref('so', 'q', { keepWarm: '600' }));
    const askedAt = clock.ms - 2000;
    expect(engine.lastAsked(original)).toEqual({ atMs: askedAt, agoMs: 2000 });
    const edited = engine.trigger(ref('so', 'q', { keepWarm: '600', maxReplicas: '7' }));
    clock.ms += 5000;
    await engine.evaluate(edited);
    clock.ms += 1000;
    expect(engine.lastAsked(original)).toEqual({ atMs: askedAt, agoMs: 8000, replacedBy: edited.id });
    expect(engine.lastAsked(edited)).toEqual({ atMs: clock.ms - 1000, agoMs: 1000 });
    // An answer served from the cache is a call KEDA made too, though the decision is the last one.
    await engine.evaluate(edited);
    expect(engine.lastAsked(edited)?.agoMs).toBe(0);
    expect(engine.lastAsked(engine.trigger(ref('never', 'q')))).toBeUndefined();
  });

  it.each([
    ['another queue', ref('so', 'r', { keepWarm: '600' })],
    ['another ScaledObject', ref('other', 'q', { keepWarm: '600' })],
    ['workers that acknowledge before the work', ref('so', 'q', { keepWarm: '600', acknowledgement: 'before-work' })],
    ['another concurrency', ref('so', 'q', { keepWarm: '600', concurrencyPerReplica: '2' })],
  ])('starts over for %s: what was learned was about other readings', async (_, other) => {
    const { engine, logs } = await learnIdle();
    const after = await engine.evaluate(engine.trigger(other));
    expect(after.decision.active).toBe(false);
    expect(engine.learnedUnder(after.trigger)).toBeUndefined();
    expect(after.decision.explanation.activeReason).toMatch(/^backlog 0 <= activationBacklog 0/);
    expect(logs.join('')).not.toContain('trigger settings edited');
  });

  it("carries on from the edited trigger's state when the edit is undone, not from its own, minutes stale", async () => {
    const { engine, clock, backlog, idleReason } = await learnIdle();
    const original = engine.trigger(ref('so', 'q', { keepWarm: '600' }));
    const edited = engine.trigger(ref('so', 'q', { keepWarm: '600', maxReplicas: '7' }));
    // Under the edit: work again, then idle from a later moment.
    backlog.q = 6;
    await engine.evaluate(edited);
    clock.ms += 5 * 60_000;
    backlog.q = 0;
    const idleUnderEdit = (await engine.evaluate(edited)).decision.explanation.activeReason;
    expect(idleUnderEdit).toMatch(/^idle since/);
    expect(idleUnderEdit).not.toBe(idleReason);
    clock.ms += 2000;
    const undone = await engine.evaluate(original);
    expect(undone.decision.explanation.activeReason).toBe(idleUnderEdit);
    expect(engine.learnedUnder(original)).toBe(edited.id);
  });

  it('keeps each its own state when two triggers of one lineage are asked in turn (both in use)', async () => {
    const { engine, clock } = await learnIdle();
    const a = engine.trigger(ref('so', 'q', { keepWarm: '600' }));
    const b = engine.trigger(ref('so', 'q', { keepWarm: '600', maxReplicas: '7' }));
    for (let i = 0; i < 10; i++) {
      await engine.evaluate(i % 2 === 0 ? b : a);
      clock.ms += 15_000;
    }
    expect(engine.learnedUnder(b)).toBe(a.id);
    expect(engine.learnedUnder(a)).toBeUndefined();
  });

  it('says so once per pair when two triggers of one lineage are asked in turn less often than a minute', async () => {
    const { engine, clock, logs } = await learnIdle();
    const a = engine.trigger(ref('so', 'q', { keepWarm: '600' }));
    const b = engine.trigger(ref('so', 'q', { keepWarm: '600', maxReplicas: '7' }));
    for (let i = 0; i < 6; i++) {
      clock.ms += 2 * 60_000;
      await engine.evaluate(i % 2 === 0 ? b : a);
    }
    const said = logs.filter((l) => l.includes('trigger settings edited'));
    expect(said.map((l) => (JSON.parse(l) as { trigger: string }).trigger)).toEqual([b.id, a.id]);
  });

  it('starts over once the old trigger was forgotten (no one asked about it for triggerIdleMs)', async () => {
    const { engine, clock } = await learnIdle();
    clock.ms += 31 * 60_000; // past the default 30 minutes: swept at the next decision
    await engine.evaluate(engine.trigger(ref('unrelated', 'r')));
    const after = await engine.evaluate(engine.trigger(ref('so', 'q', { keepWarm: '600', maxReplicas: '7' })));
    expect(after.decision.active).toBe(false);
  });
});

describe('Engine: the sources of triggers no one asks about', () => {
  it('leave the registry with their triggers (each holds a config, credentials and CAs included)', async () => {
    const backlog: Record<string, number> = {};
    for (let i = 0; i < 50; i++) backlog[`q${i}`] = 1;
    const { driver } = fakeRabbit(backlog);
    const registry = new SourceRegistry([driver as unknown as SourceDriver]);
    const clock = { ms: 1_000_000 };
    const engine = new Engine({
      registry,
      cacheTtlMs: 1000,
      sourceTimeoutMs: 2000,
      logger: silentLogger(),
      metrics: new ScalerMetrics(new Registry(), { defaultMetrics: false }),
      now: () => clock.ms,
    });
    // 50 ScaledObjects, each on its own queue (preview environments, per-tenant queues).
    for (let i = 0; i < 50; i++) await engine.evaluate(engine.trigger(ref(`so-${i}`, `q${i}`)));
    expect(registry.size).toBe(50);
    // All but one deleted: no one asks about them for longer than the idle window.
    clock.ms += 31 * 60_000;
    await engine.evaluate(engine.trigger(ref('so-0', 'q0')));
    expect(registry.size).toBe(1);
    // Found by review: once KEDA asks about nothing (the last ScaledObject deleted), no call came
    // to sweep, and the last source's connection stayed for good. The server's timer sweeps.
    clock.ms += 31 * 60_000;
    engine.sweepIdle();
    expect(registry.size).toBe(0);
    expect(engine.lastEvaluations()).toEqual([]);
  });
});

describe('Engine: a trigger no one asks about for longer than triggerIdleMs (a paused ScaledObject)', () => {
  const HOUR = 60 * 60_000;

  /** An engine that keeps what a forgotten trigger learned for `retentionMs`, and a trigger that worked and went idle on it. */
  async function paused(retentionMs: number) {
    const backlog: Record<string, number> = { q: 8 };
    const { driver } = fakeRabbit(backlog);
    const clock = { ms: 1_000_000 };
    const logs: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
    const { engine, metrics } = engineWith(driver, clock, logger, retentionMs);
    const so = ref('so', 'q', { keepWarm: '600' });
    await engine.evaluate(engine.trigger(so));
    clock.ms += 2000;
    backlog.q = 0;
    await engine.evaluate(engine.trigger(so));
    return { engine, clock, logs, backlog, so, metrics };
  }

  /** The silence passes; another trigger's call sweeps the engine's idle triggers. */
  async function silence(engine: Engine, clock: { ms: number }, ms: number) {
    clock.ms += ms;
    await engine.evaluate(engine.trigger(ref('other', 'r')));
  }

  it('carries on from what it learned before, within the retention, and says so', async () => {
    const { engine, clock, logs, so, metrics } = await paused(24 * HOUR);
    await silence(engine, clock, 2 * HOUR);
    // Kept while no one asks about it: the gauge counts it until it is asked about again.
    expect(await metrics.registry.getSingleMetricAsString('keda_inference_scaler_triggers_retained')).toMatch(/ 1$/m);
    const resumed = await engine.evaluate(engine.trigger(so));
    // A history resumed: the model says how long the silence was (decide.ts, resumedHistory).
    expect(resumed.decision.explanation.details.resumedAfterSilenceSeconds).toBe(2 * 3600);
    expect(resumed.decision.active).toBe(false);
    expect(engine.learnedUnder(resumed.trigger)).toBeUndefined();
    expect(logs.join('')).toContain('trigger asked about again after a silence (a paused ScaledObject): it carries on');
    expect(await metrics.registry.getSingleMetricAsString('keda_inference_scaler_triggers_retained')).toMatch(/ 0$/m);
  });

  it('carries on from the last trigger of its lineage when the ScaledObject was edited while paused', async () => {
    const { engine, clock, so } = await paused(24 * HOUR);
    await silence(engine, clock, 2 * HOUR);
    const edited = await engine.evaluate(engine.trigger(ref('so', 'q', { keepWarm: '600', maxReplicas: '7' })));
    expect(edited.decision.explanation.details.resumedAfterSilenceSeconds).toBe(2 * 3600);
    expect(engine.learnedUnder(edited.trigger)).toBe(engine.trigger(so).id);
  });

  it.each([
    { what: 'past the retention', retentionMs: 24 * HOUR, silenceMs: 25 * HOUR },
    { what: 'with no retention past the idle sweep (the engine default)', retentionMs: 0, silenceMs: 31 * 60_000 },
  ])('starts over $what', async ({ retentionMs, silenceMs }) => {
    const { engine, clock, logs, so } = await paused(retentionMs);
    await silence(engine, clock, silenceMs);
    const after = await engine.evaluate(engine.trigger(so));
    expect(after.decision.explanation.details.resumedAfterSilenceSeconds).toBeUndefined();
    expect(logs.join('')).not.toContain('trigger asked about again');
  });

  it(`keeps the ${MAX_RETIRED} most recently asked about: an older one starts over`, async () => {
    const { driver } = fakeRabbit({});
    const clock = { ms: 1_000_000 };
    const { engine } = engineWith(driver, clock, silentLogger(), 24 * HOUR);
    const names = Array.from({ length: MAX_RETIRED + 1 }, (_, i) => `so-${i}`);
    for (const name of names) {
      await engine.evaluate(engine.trigger(ref(name, 'q')));
      clock.ms += 1;
    }
    await silence(engine, clock, HOUR);
    const first = await engine.evaluate(engine.trigger(ref(names[0]!, 'q')));
    const last = await engine.evaluate(engine.trigger(ref(names.at(-1)!, 'q')));
    expect(first.decision.explanation.details.resumedAfterSilenceSeconds).toBeUndefined();
    expect(last.decision.explanation.details.resumedAfterSilenceSeconds).toBeGreaterThan(3600);
  });
});

// Found by review: a trigger with a GPU source alone and a selector that matches nothing read as
// a workload at zero on every call, and nothing said so.
describe('Engine: a GPU query that matches nothing, on a trigger that reads no queue', () => {
  function gpuEngine(reading: { current: SourceReading }, clock: { ms: number }) {
    const driver = fakeSourceDriver('gpu', () => Promise.resolve(reading.current));
    const { sink, lines } = logLines<{ msg: string; level: number; silentForMinutes?: number; sources?: string[] }>();
    const registry = new Registry();
    const engine = new Engine({
      registry: new SourceRegistry([driver]),
      cacheTtlMs: 1000,
      sourceTimeoutMs: 2000,
      logger: pino({ level: 'info' }, sink),
      metrics: new ScalerMetrics(registry, { defaultMetrics: false }),
      now: () => clock.ms,
    });
    const trigger = engine.trigger({
      name: 'vision',
      namespace: 'ml',
      metadata: { 'gpu.serverAddress': 'http://prom:9090', 'gpu.namespace': 'ml', 'gpu.podSelector': 'vison-.*' },
    });
    const silence = () => lines.filter((l) => l.msg.includes('GPU query has matched no series'));
    return { engine, trigger, silence, lines, registry };
  }

  // Found by review: the edit starts a new lineage, whose trigger had no answer of its own, and
  // read the typo's empty answer as a workload at zero (inactive, minReplicas) while it ran busy.
  it("takes the ScaledObject's last answer for a trigger edited into a query that matches nothing: NOT_FOUND while it ran", async () => {
    const reading = { current: { backlog: 0, busyGpus: 6 } as SourceReading };
    const clock = { ms: 0 };
    const { engine, trigger } = gpuEngine(reading, clock);
    expect((await engine.evaluate(trigger)).decision.active).toBe(true);
    const edited = engine.trigger({
      name: 'vision',
      namespace: 'ml',
      metadata: { 'gpu.serverAddress': 'http://prom:9090', 'gpu.namespace': 'ml', 'gpu.podSelector': 'vison-typo-.*' },
    });
    expect(edited.lineage).not.toBe(trigger.lineage);
    clock.ms = 15_000;
    reading.current = { backlog: 0, noSeries: true };
    const refused = await Promise.resolve(engine.evaluate(edited)).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SourceNotFound);
    expect((refused as Error).message).toMatch(/the ScaledObject's last, before its settings were edited, was active/);
    // Another ScaledObject's answers say nothing of this one's workload.
    const other = engine.trigger({
      name: 'other',
      namespace: 'ml',
      metadata: { 'gpu.serverAddress': 'http://prom:9090', 'gpu.namespace': 'ml', 'gpu.podSelector': 'other-.*' },
    });
    expect((await engine.evaluate(other)).decision.active).toBe(false);
  });

  // Found by review: the query succeeds, so no source failure said it; NOT_FOUND went to KEDA for
  // half an hour with nothing above debug in the log and no alert.
  it('says a GPU query without series while the workload runs once it lasts 2 minutes, every 10 minutes on, and when series are back; counted for the alert', async () => {
    const reading = { current: { backlog: 0, busyGpus: 6 } as SourceReading };
    const clock = { ms: 0 };
    const { engine, trigger, lines, registry } = gpuEngine(reading, clock);
    expect((await engine.evaluate(trigger)).decision.active).toBe(true);
    // A scrape or two without series (a new pod's GPUs not yet labelled after a wake): not said.
    reading.current = { backlog: 0, noSeries: true };
    clock.ms = 5_000;
    await expect(Promise.resolve(engine.evaluate(trigger))).rejects.toBeInstanceOf(SourceNotFound);
    reading.current = { backlog: 0, busyGpus: 6 };
    clock.ms = 10_000;
    expect((await engine.evaluate(trigger)).decision.active).toBe(true);
    expect(lines.filter((l) => l.msg.includes('series'))).toEqual([]);
    reading.current = { backlog: 0, noSeries: true };
    for (let s = 15; s <= 25 * 60; s += 15) {
      clock.ms = s * 1000;
      await expect(Promise.resolve(engine.evaluate(trigger))).rejects.toBeInstanceOf(SourceNotFound);
    }
    const said = () => lines.filter((l) => l.msg.includes('matches no series while its workload runs')).map((l) => l.msg);
    expect(said()).toHaveLength(3); // once it has lasted 2 minutes, then 10 and 20 minutes on
    expect(said()[0]).toMatch(/^the trigger's GPU query matches no series/);
    const counted = async () =>
      (await registry.getSingleMetric('keda_inference_scaler_source_errors_total')!.get()).values.find(
        (v) => v.labels.kind === 'gpu' && v.labels.code === 'NOT_FOUND',
      )?.value;
    // Once per reading (a call every 15 s, a reading each), not per call: more calls on the same reading count nothing.
    expect(await counted()).toBe(101);
    // (From fresh cached readings the refusal is thrown at once, not returned in a promise.)
    for (let i = 0; i < 5; i++)
      await expect(Promise.resolve().then(() => engine.evaluate(trigger))).rejects.toBeInstanceOf(SourceNotFound);
    expect(await counted()).toBe(101);
    reading.current = { backlog: 0, busyGpus: 6 };
    clock.ms += 15_000;
    expect((await engine.evaluate(trigger)).decision.active).toBe(true);
    expect(lines.at(-1)).toMatchObject({ level: 30, msg: "the trigger's GPU query matches series again: answered again" });
  });

  it('answers as a workload at zero, and warns once that has lasted 10 minutes, then hourly, until a series comes', async () => {
    const reading = { current: { backlog: 0, noSeries: true } as SourceReading };
    const clock = { ms: 0 };
    const { engine, trigger, silence } = gpuEngine(reading, clock);
    const minute = async (m: number) => {
      clock.ms = m * 60_000;
      return engine.evaluate(trigger);
    };
    for (let m = 0; m < 10; m++) expect((await minute(m)).decision.active).toBe(false);
    expect(silence()).toEqual([]);
    await minute(10);
    expect(silence()).toEqual([expect.objectContaining({ silentForMinutes: 10, sources: ['fake gpu'] })]);
    for (let m = 11; m < 70; m++) await minute(m);
    expect(silence()).toHaveLength(1);
    await minute(70);
    expect(silence()).toHaveLength(2);
    // Series again: the silence is over, and a new one starts its 10 minutes afresh.
    reading.current = { backlog: 0, busyGpus: 0 }; // idle GPUs: a series, and still inactive
    await minute(71);
    reading.current = { backlog: 0, noSeries: true };
    for (let m = 72; m < 82; m++) await minute(m);
    expect(silence()).toHaveLength(2);
    await minute(82);
    expect(silence()).toHaveLength(3);
  });
});

describe('Engine: a Kafka group that commits on a timer', () => {
  /** A Kafka-kind driver: a lag of 100, two members, 4 messages served (committed) a second. */
  function kafkaDriver(): SourceDriver {
    let served = 0;
    return fakeSourceDriver('kafka', async () => ({ backlog: 100, consumers: 2, servedTotal: (served += 4) }));
  }

  const kafkaRef = (extra: Record<string, string>): TriggerRef => ({
    name: 'so',
    namespace: 'ns',
    metadata: { 'kafka.bootstrapServers': 'broker:9092', 'kafka.consumerGroup': 'g', 'kafka.topic': 't', ...extra },
  });

  async function signalsAfter(extra: Record<string, string>) {
    const clock = { ms: 1_000_000 };
    const { engine } = engineWith(kafkaDriver() as unknown as SourceDriver<RabbitmqSourceConfig>, clock);
    let evaluation;
    for (let t = 0; t < 10; t++, clock.ms += 1000) evaluation = await engine.evaluate(engine.trigger(kafkaRef(extra)));
    return evaluation!.decision.explanation.signals;
  }

  it('takes the served rate times the interval out of the lag it sizes, the whole lag still counted as work', async () => {
    const told = await signalsAfter({ 'kafka.commitIntervalSeconds': '5' });
    expect(told.uncommittedServed).toBeGreaterThan(0);
    expect(told.backlog + told.uncommittedServed!).toBe(100);
    const untold = await signalsAfter({});
    expect(untold.uncommittedServed).toBeUndefined();
    expect(untold.backlog).toBe(100);
  });
});

// Found by review: a trigger's reads that finish out of order (a slow one, awaited by a call that
// started before another call decided on newer readings) stepped its history back to an older one.
describe('Engine: readings that finish out of order', () => {
  it('decides no call on a reading older than the one its last decision used', async () => {
    let rabbitRead: (backlog: number) => void = () => undefined;
    let rabbitSlow = false;
    const rabbit = fakeDriver(async () =>
      rabbitSlow ? new Promise<SourceReading>((resolve) => (rabbitRead = (backlog) => resolve({ backlog }))) : { backlog: 10 },
    );
    let sqsBacklog = 1;
    const sqs = fakeSourceDriver('sqs', async () => ({ backlog: sqsBacklog }));
    const clock = { ms: 1_000_000 };
    const metrics = new ScalerMetrics(new Registry(), { defaultMetrics: false });
    const engine = new Engine({
      registry: new SourceRegistry([rabbit as unknown as SourceDriver, sqs]),
      cacheTtlMs: 1000,
      sourceTimeoutMs: 2000,
      logger: silentLogger(),
      metrics,
      now: () => clock.ms,
    });
    const both = engine.trigger(ref('so', 'q', { 'sqs.queueURL': 'https://sqs.eu-west-1.amazonaws.com/111122223333/batch' }));
    await engine.evaluate(both);
    clock.ms += 500;
    rabbitSlow = true;
    sqsBacklog = 2;
    const c1 = engine.evaluate(both, { maxAgeMs: 100 });
    await new Promise((r) => setImmediate(r));
    clock.ms += 200;
    sqsBacklog = 3;
    const c3 = engine.evaluate(both, { maxAgeMs: 100 });
    await new Promise((r) => setImmediate(r));
    // The queue's old reading is fresh to a call that takes the TTL: it decides on the newest SQS one.
    const c2 = await engine.evaluate(both);
    expect(c2.decision.explanation.signals.backlog).toBe(13);
    rabbitRead(20);
    const [first, third] = await Promise.all([c1, c3]);
    // c1's SQS reading (2) is older than the one c2 decided on (3): c1 gets the last evaluation.
    expect(first.decision.explanation.signals.backlog).toBe(13);
    expect(third.decision.explanation.signals.backlog).toBe(23);
  });
});

// Found by review: ScaledObject names churned within the idle window each kept a state (60,000 of
// them some 274 MB of heap); parsed triggers were capped, their states not.
describe('Engine: at most maxTriggers triggers kept', () => {
  it('forgets the least recently asked tenth at the limit, keeping what they learned by lineage', async () => {
    const { driver } = fakeRabbit({ q: 3 });
    const clock = { ms: 1_000_000 };
    const metrics = new ScalerMetrics(new Registry(), { defaultMetrics: false });
    const engine = new Engine({
      registry: new SourceRegistry([driver as unknown as SourceDriver]),
      cacheTtlMs: 1000,
      sourceTimeoutMs: 2000,
      logger: silentLogger(),
      metrics,
      now: () => clock.ms,
      maxTriggers: 100,
      retentionMs: 24 * 3_600_000,
    });
    for (let i = 0; i < 250; i++) {
      clock.ms += 10;
      await engine.evaluate(engine.trigger(ref(`so-${i}`, 'q')));
    }
    const kept = engine.lastEvaluations().map((e) => e.trigger.name);
    expect(kept.length).toBeLessThanOrEqual(100);
    expect(kept).toContain('so-249');
    expect(kept).not.toContain('so-0');
    // What the forgotten ones learned is kept by lineage, as the idle sweep keeps it.
    const retained = await metrics.registry.getSingleMetricAsString('keda_inference_scaler_triggers_retained');
    expect(Number(/ (\d+)$/m.exec(retained)![1])).toBeGreaterThan(0);
  });
});
