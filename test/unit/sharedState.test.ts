// Two replicas' engines on one shared store (test/support/stateCluster.ts: leases, records and
// subscriptions, as Redis keeps them): they answer alike, the writer's state is what followers decide from, a new
// process starts from what was learned, and a store that goes away leaves each on its own.
import { describe, expect, it, vi } from 'vitest';
import { Engine, type EngineOptions } from '../../src/engine.ts';
import { emptyHistory } from '../../src/model/decide.ts';
import { triggerHistorySchema } from '../../src/model/historySchema.ts';
import type { TriggerHistory } from '../../src/model/types.ts';
import type { SourceDriver } from '../../src/sources/source.ts';
import { sharedStateSchema, shiftSharedState } from '../../src/state/payload.ts';
import { SharedState, lineageKey, newerRecord, sameRecord } from '../../src/state/shared.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import type { RabbitmqSourceConfig, TriggerRef } from '../../src/trigger/types.ts';
import { fakeRabbitDriver } from '../support/fakeDriver.ts';
import { engineOn as sharedEngineOn, replicaOn } from '../support/replicas.ts';
import { StateCluster } from '../support/stateCluster.ts';

/** One queue whose backlog (and, when set, arrival counter) the test sets; every replica reads the same broker. */
const broker: { backlog: number; consumers: number; arrived?: number } = { backlog: 0, consumers: 1 };
const driver = fakeRabbitDriver(async () => ({
  backlog: broker.backlog,
  waiting: broker.backlog,
  inFlight: 0,
  consumers: broker.consumers,
  arrivedTotal: broker.arrived,
}));

/** A scaler replica on `cluster`, its sources read by `source` (the broker above unless given). */
function replica(
  cluster: StateCluster,
  name: string,
  source: SourceDriver<RabbitmqSourceConfig> = driver,
  client: ReturnType<StateCluster['client']> = cluster.client(name),
) {
  return replicaOn(cluster, name, source, client);
}

/** An engine on the clock `now`, its sources read by `source` (the broker above unless given), with `shared` when given. */
function engineOn(now: () => number, source: SourceDriver<RabbitmqSourceConfig> = driver, shared?: EngineOptions['shared']) {
  return sharedEngineOn(now, source, shared);
}

/** Replicas a and b on a store of their own, each asked once while 10 messages wait: a writes, b follows. */
/** One replica's SharedState on a cluster of its own, on a clock the test moves. */
function sharedAlone(startMs: number) {
  const clock = { ms: startMs };
  const cluster = new StateCluster(() => clock.ms);
  const store = cluster.client('a');
  const shared = new SharedState(store, { logger: silentLogger(), publishIntervalMs: 5000, now: cluster.now });
  return { clock, cluster, store, shared };
}

async function writerAndFollower(startMs: number) {
  const clock = { ms: startMs };
  const cluster = new StateCluster(() => clock.ms);
  const a = replica(cluster, 'a');
  const b = replica(cluster, 'b');
  broker.backlog = 10;
  clock.ms += 1000;
  await a.engine.evaluate(a.engine.trigger(ref));
  await b.engine.evaluate(b.engine.trigger(ref));
  return { clock, cluster, a, b, id: a.engine.trigger(ref).id };
}

/** a's lease lapses (a paused), b takes it over and publishes what it decides with `backlog` waiting. */
async function bTakesOver({ clock, cluster, b, id }: Awaited<ReturnType<typeof writerAndFollower>>, backlog: number) {
  clock.ms += cluster.leaseMs + 1;
  await b.shared.refresh(false);
  expect(b.shared.role(id)).toBe('writer');
  clock.ms += 1000;
  broker.backlog = backlog;
  await b.engine.evaluate(b.engine.trigger(ref));
  await vi.waitFor(async () => expect((await cluster.client('c').read(id))?.writerId).toBe('b'));
}

/**
 * `client` with its lease and read calls 20 ms away (`onRead` told of each read). With
 * `answerLate`, a call takes effect at once and its answer comes 20 ms later, as on one
 * connection to a real store (a later release lands after it); else it takes effect late.
 */
function slowStore(
  client: ReturnType<StateCluster['client']>,
  onRead: () => void = () => undefined,
  answerLate = false,
): typeof client {
  const wait = () => new Promise((resolve) => setTimeout(resolve, 20));
  return new Proxy(client, {
    get: (target, key, receiver) => {
      const value = Reflect.get(target, key, receiver) as unknown;
      if ((key !== 'acquireLease' && key !== 'acquireLeases' && key !== 'read') || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (key === 'read') onRead();
        if (!answerLate) await wait();
        const answer = (await (value as (...a: unknown[]) => unknown).apply(target, args)) as unknown;
        if (answerLate) await wait();
        return answer;
      };
    },
  });
}

const ref: TriggerRef = {
  name: 'so',
  namespace: 'ns',
  metadata: { 'rabbitmq.host': 'http://broker:15672', 'rabbitmq.queueName': 'q', coldStartSeconds: '10', drainSeconds: '60' },
};

/** Idle gaps of 20 s between bursts, evaluated every second on `replicas` in turn (round robin). */
async function learnGaps(replicas: ReturnType<typeof replica>[], clock: { ms: number }, gaps: number) {
  let turn = 0;
  for (let g = 0; g < gaps; g++) {
    for (let s = 0; s < 25; s++) {
      broker.backlog = s < 5 ? 10 : 0;
      clock.ms += 1000;
      const r = replicas[turn++ % replicas.length]!;
      await r.engine.evaluate(r.engine.trigger(ref));
      if (s % 3 === 0) await Promise.all(replicas.map((x) => x.shared.refresh(true)));
    }
  }
}

/**
 * One replica on a store of its own that learned four idle gaps, then went (its pod gone, its lease
 * with it): the store, its clock, and the last decision the replica made.
 */
async function learnedThenGone(startMs: number) {
  const clock = { ms: startMs };
  const cluster = new StateCluster(() => clock.ms);
  const a = replica(cluster, 'a');
  await learnGaps([a], clock, 4);
  const before = (await a.engine.evaluate(a.engine.trigger(ref))).decision;
  await a.shared.close();
  return { clock, cluster, before };
}

/** Two replicas on a store of their own, after four idle gaps learned round robin. */
async function learnedPair(startMs: number) {
  const clock = { ms: startMs };
  const cluster = new StateCluster(() => clock.ms);
  const a = replica(cluster, 'a');
  const b = replica(cluster, 'b');
  await learnGaps([a, b], clock, 4);
  return { clock, cluster, a, b };
}

describe('replicas on one shared store', () => {
  it('answer alike, round robin: the writer learns, followers decide from its state', async () => {
    const { clock, cluster, a, b } = await learnedPair(1_000_000);
    // Idle now, within the learned keep-warm window: both say so, with the same figures.
    broker.backlog = 0;
    clock.ms += 2000;
    const [ea, eb] = [await a.engine.evaluate(a.engine.trigger(ref)), await b.engine.evaluate(b.engine.trigger(ref))];
    expect(ea.decision.explanation.details.keepWarmSource).toBe('learned');
    expect(eb.decision.explanation.details).toMatchObject({
      keepWarmSource: 'learned',
      keepWarmSeconds: ea.decision.explanation.details.keepWarmSeconds,
    });
    expect([eb.decision.active, eb.metricValue]).toEqual([ea.decision.active, ea.metricValue]);
    // One lease, the trigger's; two records, the trigger's and its lineage's note (written under a lease given up after).
    expect([...cluster.leases.values()].map((l) => l.holder)).toHaveLength(1);
    const trigger = a.engine.trigger(ref);
    expect([...cluster.records.keys()].sort()).toEqual([trigger.id, lineageKey(trigger.lineage)].sort());
  });

  // An audit found the test above blind to a follower ignoring the writer's record: both read the
  // same broker, and round robin taught each the gaps. Here only the writer saw them.
  it("a follower that never read the queue while the gaps were learned decides from the writer's record", async () => {
    const clock = { ms: 1_500_000 };
    const cluster = new StateCluster(() => clock.ms);
    const a = replica(cluster, 'a');
    await learnGaps([a], clock, 4);
    const b = replica(cluster, 'b');
    broker.backlog = 0;
    clock.ms += 2000;
    const ea = await a.engine.evaluate(a.engine.trigger(ref));
    const trigger = b.engine.trigger(ref);
    const eb = await b.engine.evaluate(trigger);
    expect(b.shared.view(trigger.id)?.role).toBe('follower');
    expect(ea.decision.explanation.details.keepWarmSource).toBe('learned');
    expect(eb.decision.explanation.details).toMatchObject({
      keepWarmSource: 'learned',
      keepWarmSeconds: ea.decision.explanation.details.keepWarmSeconds,
    });
    expect(b.engine.sharedState(trigger)?.decidedFromRecordAtMs).toBeDefined();
    expect([eb.decision.active, eb.metricValue]).toEqual([ea.decision.active, ea.metricValue]);
  });

  it('starts an edited trigger on a process that never saw it from the record of the trigger its lineage names', async () => {
    const clock = { ms: 2_500_000 };
    const cluster = new StateCluster(() => clock.ms);
    const a = replica(cluster, 'a');
    await learnGaps([a], clock, 8); // 200 s
    const trigger = a.engine.trigger(ref);
    const [note, own] = [await cluster.client('x').read(lineageKey(trigger.lineage)), await cluster.client('x').read(trigger.id)];
    // The note names the trigger and carries no state of its own; written at the first publish, not at every one.
    expect(note!.payload).toEqual({ trigger: trigger.id, history: emptyHistory() });
    expect(own!.atMs - note!.atMs).toBeGreaterThan(150_000);
    // A new process (a rollout's new pod) asked first for settings nobody has seen: no record of them.
    const fresh = replica(cluster, 'b');
    broker.backlog = 0;
    clock.ms += 1000;
    const edited = fresh.engine.trigger({ ...ref, metadata: { ...ref.metadata, drainSeconds: '45' } });
    const first = await fresh.engine.evaluate(edited);
    expect(fresh.shared.view(edited.id)?.role).toBe('writer');
    expect(first.decision.explanation.details.keepWarmSource).toBe('learned');
    expect(fresh.engine.learnedUnder(edited)).toBe(trigger.id);
    // Another queue is another lineage: nothing to start from.
    const other = fresh.engine.trigger({ ...ref, metadata: { ...ref.metadata, 'rabbitmq.queueName': 'q2' } });
    expect((await fresh.engine.evaluate(other)).decision.explanation.details.keepWarmSource).not.toBe('learned');
    expect(fresh.engine.learnedUnder(other)).toBeUndefined();
  });

  // Found by review: a lineage note that could not be read (its key on a cluster node that is down)
  // failed the whole first sight, and the trigger stayed local at every renewal, its lease held.
  it("shares a trigger whose lineage's note cannot be read, as one with none", async () => {
    const clock = { ms: 4_500_000 };
    const cluster = new StateCluster(() => clock.ms);
    const client = cluster.client('a');
    const store = new Proxy(client, {
      get: (target, key, receiver) => {
        const value = Reflect.get(target, key, receiver) as unknown;
        if (key !== 'read' || typeof value !== 'function') return value;
        return async (k: string) => {
          if (k === lineageKey('lineage-1')) throw new Error('CLUSTERDOWN The cluster is down');
          return (value as (k: string) => unknown).call(target, k);
        };
      },
    });
    const shared = new SharedState(store, { logger: silentLogger(), publishIntervalMs: 5000, now: () => clock.ms });
    await shared.track('ns/so/t', 'lineage-1');
    expect(shared.view('ns/so/t')?.role).toBe('writer');
    shared.offer('ns/so/t', { trigger: 'ns/so/t', history: emptyHistory() }, clock.ms, true);
    await new Promise((r) => setTimeout(r, 0));
    expect(cluster.records.has('ns/so/t')).toBe(true);
    await shared.close();
  });

  it("prefers its own state to its lineage's: replicas that saw the trigger before its edit carry their own on, and agree", async () => {
    const { clock, a, b } = await learnedPair(2_700_000);
    const edited = { ...ref, metadata: { ...ref.metadata, drainSeconds: '45' } };
    broker.backlog = 0;
    clock.ms += 1000;
    // b first: it takes the edited trigger's lease, and carries its own history on.
    const eb = await b.engine.evaluate(b.engine.trigger(edited));
    const ea = await a.engine.evaluate(a.engine.trigger(edited));
    expect(b.shared.view(b.engine.trigger(edited).id)?.role).toBe('writer');
    expect([ea.decision.active, ea.metricValue, ea.decision.explanation.details.keepWarmSeconds]).toEqual([
      eb.decision.active,
      eb.metricValue,
      eb.decision.explanation.details.keepWarmSeconds,
    ]);
    expect(a.engine.learnedUnder(a.engine.trigger(edited))).toBe(a.engine.trigger(ref).id);
  });

  it('starts a new process from what was learned: no break-even prior, the learned window at once', async () => {
    const { clock, cluster, before } = await learnedThenGone(2_000_000);
    const fresh = replica(cluster, 'a2');
    broker.backlog = 0;
    clock.ms += 1000;
    const first = (await fresh.engine.evaluate(fresh.engine.trigger(ref))).decision.explanation.details;
    expect(first.keepWarmSource).toBe('learned');
    expect(first.keepWarmSeconds).toBe(before.explanation.details.keepWarmSeconds);
    expect(fresh.shared.view(fresh.engine.trigger(ref).id)?.role).toBe('writer');
  });

  // Found by review: the second of two first calls skipped the store's round trip the first was
  // in, decided from nothing, and that became the trigger's own history for good.
  it('makes a call that comes during the first sight wait for it: two first calls at once both start from what was learned', async () => {
    const { clock, cluster, before } = await learnedThenGone(2_000_000);
    // A store 20 ms away: the second call comes while the first's lease and read are under way.
    const fresh = replica(cluster, 'a2', driver, slowStore(cluster.client('a2')));
    broker.backlog = 0;
    clock.ms += 1000;
    const trigger = fresh.engine.trigger(ref);
    const answers = await Promise.all([fresh.engine.evaluate(trigger), fresh.engine.evaluate(trigger)]);
    for (const answer of answers) {
      expect(answer.decision.active).toBe(before.active);
      expect(answer.decision.explanation.details.keepWarmSource).toBe('learned');
    }
    expect(fresh.engine.sharedState(trigger)).toMatchObject({ role: 'writer', decidedFromRecordAtMs: expect.any(Number) });
  });

  // Found by review: the first sight went before the reads, so a slow store and a slow broker
  // added up, past KEDA's deadline for a first answer.
  it('reads the sources of a first call while its first sight in the store is under way, and answers from what was learned', async () => {
    const { clock, cluster, before } = await learnedThenGone(2_500_000);
    let open = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    let readWhileStoreAway = false;
    let storeAway = true;
    const slowDriver = fakeRabbitDriver(async () => {
      readWhileStoreAway ||= storeAway;
      return { backlog: 0, waiting: 0, inFlight: 0, consumers: broker.consumers };
    });
    const client = cluster.client('a3');
    const held = new Proxy(client, {
      get: (target, key, receiver) => {
        const value = Reflect.get(target, key, receiver) as unknown;
        if ((key !== 'acquireLease' && key !== 'read') || typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          await gate;
          return (await (value as (...a: unknown[]) => unknown).apply(target, args)) as unknown;
        };
      },
    });
    const fresh = replica(cluster, 'a3', slowDriver, held);
    clock.ms += 1000;
    const answer = fresh.engine.evaluate(fresh.engine.trigger(ref));
    await vi.waitFor(() => expect(readWhileStoreAway).toBe(true));
    storeAway = false;
    open();
    const { decision } = await answer;
    expect(decision.active).toBe(before.active);
    expect(decision.explanation.details.keepWarmSource).toBe('learned');
  });

  // Found by review: a follower started every decision again from a record its writer, not asked
  // any more, no longer moved; a replica that took the lease over kept its own older state and
  // wrote it over the newer record.
  it('learns on a follower whose writer is not asked: KEDA calls all come to it', async () => {
    const { clock, a, b, id } = await writerAndFollower(5_000_000);
    expect([a.shared.view(id)?.role, b.shared.view(id)?.role]).toEqual(['writer', 'follower']);
    // A scaler alone, asked what b is asked, for comparison.
    const lone = engineOn(() => clock.ms);
    await lone.evaluate(lone.trigger(ref));
    // Only b asked, for 100 s (four gaps); a alive and renewing its lease.
    for (let g = 0; g < 4; g++) {
      for (let t = 0; t < 25; t++) {
        broker.backlog = t < 5 ? 10 : 0;
        clock.ms += 1000;
        const [mine, alone] = [await b.engine.evaluate(b.engine.trigger(ref)), await lone.evaluate(lone.trigger(ref))];
        expect([mine.decision.active, mine.decision.desiredReplicas], `second ${g * 25 + t}`).toEqual([
          alone.decision.active,
          alone.decision.desiredReplicas,
        ]);
        if (t % 3 === 0) await Promise.all([a.shared.refresh(false), b.shared.refresh(false)]);
      }
    }
    expect([a.shared.view(id)?.role, b.shared.view(id)?.role]).toEqual(['writer', 'follower']);
    const after = (await b.engine.evaluate(b.engine.trigger(ref))).decision.explanation.details;
    expect(after.keepWarmSource).toBe('learned');
    expect(after.keepWarmSeconds).toBe((await lone.evaluate(lone.trigger(ref))).decision.explanation.details.keepWarmSeconds);
  });

  it('decides from the newer record when it takes the lease over with an older state of its own', async () => {
    const { clock, a, b } = await writerAndFollower(6_000_000); // b's own state, from its one decision
    await learnGaps([a], clock, 4);
    const learned = (await a.engine.evaluate(a.engine.trigger(ref))).decision.explanation.details;
    await b.shared.refresh(true);
    await a.shared.close(); // a's pod is gone, its lease with it
    await b.shared.refresh(true); // b takes the lease
    const id = b.engine.trigger(ref).id;
    expect(b.shared.view(id)?.role).toBe('writer');
    broker.backlog = 0;
    clock.ms += 1000;
    const taken = (await b.engine.evaluate(b.engine.trigger(ref))).decision.explanation.details;
    expect(taken.keepWarmSource).toBe('learned');
    expect(taken.keepWarmSeconds).toBe(learned.keepWarmSeconds);
  });

  it("carries the sources' rate estimates on from the record: a new process does not start from one interval's count", async () => {
    const clock = { ms: 2_500_000 };
    const cluster = new StateCluster(() => clock.ms);
    const a = replica(cluster, 'a');
    const rateOf = async (r: ReturnType<typeof replica>) =>
      (await r.engine.evaluate(r.engine.trigger(ref))).decision.explanation.signals.arrivalRatePerSecond;
    broker.backlog = 2;
    broker.arrived = 0;
    try {
      let learned: number | undefined;
      for (let s = 0; s < 120; s++) {
        broker.arrived += 3;
        clock.ms += 1000;
        learned = await rateOf(a);
      }
      expect(learned).toBeCloseTo(3, 3);
      await a.shared.close();
      const fresh = replica(cluster, 'a2');
      clock.ms += 1000;
      broker.arrived += 3;
      // Its first reading gives no rate of its own: the published estimate carried on with it, not undefined.
      expect(await rateOf(fresh)).toBeCloseTo(3, 3);
      // A second with 12 arrivals moves the 30 s average by a thirtieth of the difference, not to 12.
      clock.ms += 1000;
      broker.arrived += 12;
      const next = await rateOf(fresh);
      expect(next).toBeGreaterThan(3.2);
      expect(next).toBeLessThan(3.4);
    } finally {
      delete broker.arrived;
    }
  });

  it("carries the writer's estimate on at a follower asked every 30 s: a step 7 s old reads as the writer reads it", async () => {
    const clock = { ms: 2_700_000 };
    const cluster = new StateCluster(() => clock.ms);
    const a = replica(cluster, 'a');
    const b = replica(cluster, 'b');
    // Each second: leases renewed (SharedState does it every lease/3), then a answers.
    const rateOf = async (r: ReturnType<typeof replica>) => {
      if (r === a) await Promise.all([a, b].map((x) => x.shared.refresh(false)));
      return (await r.engine.evaluate(r.engine.trigger(ref))).decision.explanation.signals.arrivalRatePerSecond;
    };
    broker.backlog = 0;
    broker.arrived = 0;
    try {
      // a, the writer, reads every second (KEDA's stream); b gets a call now and then.
      for (let s = 0; s < 60; s++) {
        clock.ms += 1000;
        await rateOf(a);
        if (s === 10) await rateOf(b);
      }
      expect(b.shared.view(a.engine.trigger(ref).id)?.role).toBe('follower');
      await rateOf(b);
      // Quiet until now; then 30 a second. b's last reading is 23 s before the step.
      clock.ms += 22_000;
      await rateOf(a);
      let writer: number | undefined;
      for (let s = 0; s < 7; s++) {
        clock.ms += 1000;
        broker.arrived += 30;
        broker.backlog += 30;
        writer = await rateOf(a);
      }
      // The 30 s average of a step 7 s old: 30 · (1 − e^(−7/30)), about 6.2. b's own readings, 30 s
      // apart, would say 0.63 · 210 / 30, about 4.4.
      expect(writer).toBeGreaterThan(5.8);
      expect(await rateOf(b)).toBeCloseTo(writer!, 1);
    } finally {
      delete broker.arrived;
      broker.backlog = 0;
    }
  });

  // Found by review: the writer's estimate, stamped by a clock ahead of the follower's, was kept
  // with that stamp, and the follower's next reading (earlier by its clock) started the estimate
  // over: no arrival rate at all on some calls.
  it("keeps the writer's estimate going at a follower whose clock is 20 s behind the writer's", async () => {
    const clock = { ms: 2_800_000 };
    const cluster = new StateCluster(() => clock.ms);
    const ahead = () => clock.ms + 20_000;
    const a = { shared: new SharedState(cluster.client('a'), { logger: silentLogger(), publishIntervalMs: 5000, now: ahead }) };
    const writer = { ...a, engine: engineOn(ahead, driver, a.shared) };
    const b = replica(cluster, 'b');
    const rateOf = async (r: { engine: Engine }) =>
      (await r.engine.evaluate(r.engine.trigger(ref))).decision.explanation.signals.arrivalRatePerSecond;
    broker.backlog = 2;
    broker.arrived = 0;
    try {
      await rateOf(writer);
      const followed: (number | undefined)[] = [];
      for (let s = 0; s < 120; s++) {
        clock.ms += 1000;
        broker.arrived += 3;
        if (s % 3 === 0) await Promise.all([writer, b].map((x) => x.shared.refresh(true)));
        const rate = await rateOf(s % 2 === 0 ? writer : b);
        if (s % 2 === 1 && s > 60) followed.push(rate);
      }
      expect(b.shared.view(b.engine.trigger(ref).id)?.role).toBe('follower');
      expect(followed.filter((r) => r === undefined)).toEqual([]);
      // The 3 a second the broker counts: the writer's rates, with this replica's own counters and clock.
      for (const r of followed) expect(Math.abs(r! - 3)).toBeLessThan(0.05);
    } finally {
      delete broker.arrived;
    }
  });

  it('goes on from its own state while the store is down, and follows the writer again when it is back', async () => {
    const clock = { ms: 3_000_000 };
    const cluster = new StateCluster(() => clock.ms);
    const a = replica(cluster, 'a');
    const b = replica(cluster, 'b');
    await learnGaps([a, b], clock, 3);
    cluster.setHealth('degraded');
    const id = a.engine.trigger(ref).id;
    expect([a.shared.view(id)?.role, b.shared.view(id)?.role]).toEqual(['local', 'local']);
    // Answers go on (never an error, never a false zero while there is work).
    broker.backlog = 10;
    clock.ms += 1500;
    for (const r of [a, b]) {
      const e = await r.engine.evaluate(r.engine.trigger(ref));
      expect(e.decision.active).toBe(true);
      // 10 waiting at 5 a replica: what a lone scaler would answer (an audit found `> 0` vacuous: minReplicas is 1).
      expect(e.metricValue).toBe(2);
    }
    cluster.setHealth('up');
    await Promise.all([a.shared.refresh(true), b.shared.refresh(true)]);
    expect([a.shared.view(id)?.role, b.shared.view(id)?.role].sort()).toEqual(['follower', 'writer']);
    // A gap the writer alone saw: the follower decides from its record (an audit found the gaps
    // learned by both in turns let a follower that ignored the record pass).
    const [writer, follower] = a.shared.view(id)?.role === 'writer' ? [a, b] : [b, a];
    await learnGaps([writer], clock, 1);
    await follower.shared.refresh(true);
    broker.backlog = 0;
    clock.ms += 2000;
    const [ea, eb] = [await a.engine.evaluate(a.engine.trigger(ref)), await b.engine.evaluate(b.engine.trigger(ref))];
    expect(eb.decision.explanation.details.keepWarmSeconds).toBe(ea.decision.explanation.details.keepWarmSeconds);
    expect(eb.decision.active).toBe(ea.decision.active);
    expect(follower.engine.sharedState(follower.engine.trigger(ref))?.decidedFromRecordAtMs).toBeDefined();
  });

  // Found by review: a replica whose first read the store did not answer took the lease when it
  // came back and wrote over the stored record from nothing, a day of learning lost to a blip.
  it('started while the store was down, reads what was learned once it is back, before it writes', async () => {
    const { clock, cluster, before } = await learnedThenGone(3_500_000);
    const learned = before.explanation.details;
    expect(learned.keepWarmSource).toBe('learned');
    cluster.setHealth('degraded');
    const a2 = replica(cluster, 'a2');
    const id = a2.engine.trigger(ref).id;
    clock.ms += 1000;
    await a2.engine.evaluate(a2.engine.trigger(ref));
    expect(a2.shared.view(id)?.role).toBe('local');
    cluster.setHealth('up');
    await a2.shared.refresh(true);
    expect(a2.shared.view(id)?.role).toBe('writer');
    expect(a2.shared.view(id)?.record?.writerId).toBe('a');
    clock.ms += 1000;
    const after = (await a2.engine.evaluate(a2.engine.trigger(ref))).decision.explanation.details;
    expect(after.keepWarmSource).toBe('learned');
    expect(after.keepWarmSeconds).toBe(learned.keepWarmSeconds);
  });
});

describe('a replica that decided alone while the store was out of reach', () => {
  // Found by review: the record read once the store was back was the one written before the
  // outage, taken whole, and its moment (idle since then, the keep-warm window long over) answered
  // inactive for a workload busy all through the outage, 3 s after its work stopped.
  it('takes what the record learned, not its moment: still warm after 20 minutes busy, with the learned window', async () => {
    const clock = { ms: 4_000_000 };
    const cluster = new StateCluster(() => clock.ms);
    const a = replica(cluster, 'a');
    // Gaps of 6 s, shorter than the cold start (10 s): a learns to keep the workload warm through them.
    for (let i = 0; i < 8 * 9; i++) {
      broker.backlog = i % 9 < 3 ? 10 : 0;
      clock.ms += 1000;
      await a.engine.evaluate(a.engine.trigger(ref));
      if (i % 3 === 0) await a.shared.refresh(true);
    }
    const learned = (await a.engine.evaluate(a.engine.trigger(ref))).decision.explanation.details;
    expect(learned).toMatchObject({ keepWarmSource: 'learned', keepWarmSeconds: expect.any(Number) as number });
    expect(learned.keepWarmSeconds).toBeGreaterThan(5);
    await a.shared.close();
    cluster.setHealth('degraded');
    const b = replica(cluster, 'b');
    const id = b.engine.trigger(ref).id;
    broker.backlog = 10;
    for (let i = 0; i < 80; i++) {
      clock.ms += 15_000; // 20 minutes busy, asked every 15 s
      await b.engine.evaluate(b.engine.trigger(ref));
    }
    expect(b.shared.view(id)?.role).toBe('local');
    broker.backlog = 0;
    clock.ms += 2000;
    expect((await b.engine.evaluate(b.engine.trigger(ref))).decision.active).toBe(true);
    cluster.setHealth('up');
    await b.shared.refresh(true);
    expect(b.shared.view(id)?.record?.writerId).toBe('a');
    clock.ms += 1000;
    const after = (await b.engine.evaluate(b.engine.trigger(ref))).decision;
    expect(after.active).toBe(true);
    expect(after.explanation.details.resumedAfterSilenceSeconds).toBeUndefined();
    // The window a learned before the outage (b saw no gap: busy all through it).
    expect(after.explanation.details).toMatchObject({ keepWarmSource: 'learned', keepWarmSeconds: learned.keepWarmSeconds });
  });
});

describe('SharedState.roles', () => {
  it('counts the triggers it tracks by role, for the state_triggers gauge', async () => {
    const { a, b, cluster } = await writerAndFollower(7_000_000);
    expect(a.shared.roles()).toEqual({ writer: 1, follower: 0, local: 0 });
    expect(b.shared.roles()).toEqual({ writer: 0, follower: 1, local: 0 });
    cluster.setHealth('degraded');
    expect(a.shared.roles()).toEqual({ writer: 0, follower: 0, local: 1 });
  });
});

// Found by review: records were ordered by their writers' clocks, so after a change of writer a
// follower kept the last writer's record for as long as that writer's clock was ahead of the next's.
describe("SharedState: records in the store's order, whatever their writers' clocks", () => {
  const at = (atMs: number, storedAtMs?: number, writerId = 'w') => ({
    writerId,
    atMs,
    payload: {},
    ...(storedAtMs !== undefined && { storedAtMs }),
  });
  it.each([
    ["stored later, its writer's clock behind", at(1_000, 2_001), at(9_000, 2_000), true, false],
    ["stored earlier, its writer's clock ahead", at(9_000, 2_000), at(1_000, 2_001), false, false],
    ["two writers' stored in the same millisecond: their clocks decide", at(1_001, 2_000, 'v'), at(1_000, 2_000), true, false],
    ["one from a scaler before the store's time: the writers' clocks decide", at(1_000, 2_001), at(9_000), false, false],
    ["neither with the store's time", at(9_000), at(1_000), true, false],
    ['the same record', at(1_000, 2_000), at(1_000, 2_000), false, true],
    // Found by review: each reading of the store's clock moved the record's times by its jitter, and
    // the record read again was taken for a newer one.
    ['the same record read on a clock offset that moved', at(1_300, 2_000), at(1_000, 2_000), false, true],
    ['the same writer without the store time, at another time', at(1_300), at(1_000), true, false],
  ])('%s', (_name, a, b, newer, same) => {
    expect(newerRecord(a, b)).toBe(newer);
    expect(sameRecord(a, b)).toBe(same);
  });

  it("a follower takes the next writer's record though that writer's clock is 10 s behind the last one's", async () => {
    const clock = { ms: 5_000_000 };
    const cluster = new StateCluster(() => clock.ms);
    const ahead = () => clock.ms + 10_000;
    const aShared = new SharedState(cluster.client('a'), { logger: silentLogger(), publishIntervalMs: 5000, now: ahead });
    const a = { engine: engineOn(ahead, driver, aShared), shared: aShared };
    const b = replica(cluster, 'b');
    const c = replica(cluster, 'c');
    const id = b.engine.trigger(ref).id;
    broker.backlog = 10;
    clock.ms += 1000;
    for (const r of [a, b, c]) await r.engine.evaluate(r.engine.trigger(ref));
    expect([a, b, c].map((r) => r.shared.view(id)?.role)).toEqual(['writer', 'follower', 'follower']);
    await vi.waitFor(() => expect(c.shared.view(id)?.record?.atMs).toBe(clock.ms + 10_000));
    await a.shared.close(); // a rollout: a gives its lease up
    await b.shared.refresh(false);
    expect(b.shared.view(id)?.role).toBe('writer');
    broker.backlog = 40;
    clock.ms += 1000;
    const answer = await b.engine.evaluate(b.engine.trigger(ref));
    await vi.waitFor(() => expect(c.shared.view(id)?.record?.atMs).toBe(clock.ms));
    expect((await c.engine.evaluate(c.engine.trigger(ref))).metricValue).toBe(answer.metricValue);
  });
});

// Found by review: a replica taking a lease over compared the last writer's record time (its clock)
// with its own last decision (its own clock), and went on from its older state when the last writer's
// clock was behind.
describe('SharedState: a lease taken over from a writer whose clock is behind', () => {
  it("decides from the last writer's record it heard since its own last decision", async () => {
    const clock = { ms: 6_000_000 };
    const cluster = new StateCluster(() => clock.ms);
    const behind = () => clock.ms - 10_000;
    const aShared = new SharedState(cluster.client('a'), { logger: silentLogger(), publishIntervalMs: 5000, now: behind });
    const a = { engine: engineOn(behind, driver, aShared), shared: aShared };
    const b = replica(cluster, 'b');
    const trigger = b.engine.trigger(ref);
    broker.backlog = 10;
    clock.ms += 1000;
    for (const r of [a, b]) await r.engine.evaluate(r.engine.trigger(ref));
    expect([a, b].map((r) => r.shared.view(trigger.id)?.role)).toEqual(['writer', 'follower']);
    // a's last word, heard by b, which decides nothing before a goes (a rollout).
    broker.backlog = 30;
    clock.ms += 1000;
    await a.engine.evaluate(a.engine.trigger(ref));
    await vi.waitFor(() => expect(b.shared.view(trigger.id)?.record?.atMs).toBe(behind()));
    const last = b.shared.view(trigger.id)!.record!;
    await a.shared.close();
    await b.shared.refresh(false);
    expect(b.shared.view(trigger.id)?.role).toBe('writer');
    clock.ms += 1000;
    await b.engine.evaluate(trigger);
    expect(b.engine.sharedState(trigger)).toEqual({ role: 'writer', decidedFromRecordAtMs: last.atMs });
  });
});

// Found by review: the full re-read a store coming back asks for was dropped when a renewal was
// under way at that moment; the followers then waited for their round's re-read.
describe('SharedState: a re-read asked for during a renewal', () => {
  it('runs right after the renewal', async () => {
    const clock = { ms: 4_000_000 };
    const cluster = new StateCluster(() => clock.ms);
    const writer = replica(cluster, 'w');
    await learnGaps([writer], clock, 1);
    let reads = 0;
    const follower = replica(
      cluster,
      'f',
      driver,
      slowStore(cluster.client('f'), () => reads++),
    );
    const id = follower.engine.trigger(ref).id;
    await follower.shared.track(id);
    expect(follower.shared.view(id)?.role).toBe('follower');
    const before = reads;
    const renewal = follower.shared.refresh(false); // a renewal without re-reads, under way
    await follower.shared.refresh(true); // the store came back meanwhile
    await renewal;
    await vi.waitFor(() => expect(reads).toBe(before + 1));
  });

  // Found by review: the re-read asked for during a renewal ran after the trigger was forgotten,
  // and took its lease again (held, never renewed, by a replica that no longer tracks it).
  it('is not run for a trigger forgotten meanwhile: its lease stays given up', async () => {
    vi.useFakeTimers();
    try {
      const clock = { ms: 4_000_000 };
      const cluster = new StateCluster(() => clock.ms);
      const writer = replica(cluster, 'w', driver, slowStore(cluster.client('w'), undefined, true));
      const id = writer.engine.trigger(ref).id;
      const tracked = writer.shared.track(id);
      await vi.advanceTimersByTimeAsync(100);
      await tracked;
      expect(writer.shared.view(id)?.role).toBe('writer');
      const renewal = writer.shared.refresh(false);
      const reread = writer.shared.refresh(true); // waits for the renewal under way
      writer.shared.forget(id);
      // Every store answer (20 ms each), a follow-up's included, however many there are.
      await vi.advanceTimersByTimeAsync(1000);
      await Promise.all([renewal, reread]);
      expect(vi.getTimerCount()).toBe(0);
      expect(writer.shared.size).toBe(0);
      expect(cluster.leases.get(id)).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('the shared history’s schema', () => {
  it('reads back every field of a history the model made, and nothing else', async () => {
    // A history with every field the model writes: a replay with counters, in-flight counts, bursts and gaps.
    const { decide } = await import('../../src/model/decide.ts');
    let history: TriggerHistory = emptyHistory();
    const scaling = {
      messagesPerReplica: 4,
      throughputPerReplica: undefined,
      concurrencyPerReplica: undefined,
      consumersPerReplica: 1,
      acknowledgement: 'after-work' as const,
      coldStartSeconds: 60,
      coldStartPriorSeconds: 60,
      drainSeconds: 15,
      lateRequestCost: 10,
      activationBacklog: 0,
      minReplicas: 1,
      maxReplicas: 100,
      keepWarm: 'auto' as const,
    };
    let arrived = 0;
    let served = 0;
    const seen = new Set<string>();
    for (let t = 0; t < 2000; t++) {
      const burst = t % 200 < 10;
      arrived += burst ? 40 : 0;
      served = Math.min(arrived, served + 12);
      const inFlight = Math.min(16, arrived - served);
      const waiting = arrived - served - inFlight;
      history = decide({
        signals: {
          backlog: waiting + inFlight,
          waiting,
          inFlight,
          arrivedTotal: arrived,
          servedTotal: served,
          consumers: 4,
          arrivalRatePerSecond: burst ? 40 : 0.1,
        },
        scaling,
        history,
        nowMs: t * 1000,
      }).history;
      for (const [key, value] of Object.entries(history)) if (value !== undefined) seen.add(key);
      // Every step's history survives JSON and the schema whole: no field is dropped.
      if (t % 50 === 0 || t % 200 === 5) {
        const plain = JSON.parse(JSON.stringify(history)) as unknown;
        const parsed = triggerHistorySchema.safeParse(plain);
        expect(parsed.success, `step ${t}`).toBe(true);
        expect(JSON.parse(JSON.stringify(parsed.data)), `step ${t}`).toEqual(plain);
      }
    }
    // The replay wrote (nearly) every field a history has.
    expect(seen.size).toBeGreaterThanOrEqual(24);
  });

  it.each([
    ['not an object', 42],
    ['no gaps list', {}],
    ['a gap that is not a number', { idleGapsSeconds: ['x'] }],
    ['a negative gap', { idleGapsSeconds: [-5] }],
    ['NaN as JSON null', { idleGapsSeconds: [], lastDesiredReplicas: null }],
    ['a list past its bound', { idleGapsSeconds: new Array(1000).fill(1) }],
    // Found by review: a fleet no trigger may ask for sized the model's work (1e8: 3 s, 1.8 GiB).
    ['a fleet past what a trigger may ask for', { idleGapsSeconds: [], lastDesiredReplicas: 1e8 }],
    ['an ask past it', { idleGapsSeconds: [], recentAsks: [{ atMs: 0, replicas: 1e6 }] }],
    [
      'a wrong type deep inside',
      { idleGapsSeconds: [], serviceEvidence: { occupancySeconds: 'a', served: 1, averagingSeconds: 60, spanSeconds: 1 } },
    ],
  ])('refuses %s', (_name, value) => {
    expect(sharedStateSchema.safeParse({ history: value }).success).toBe(false);
  });

  it.each([
    ['no rates (a record from before they were shared)', undefined, true],
    ['an estimate per source, or none', [{ atMs: 5, backlog: 2, arrivedTotal: 90, arrivalRatePerSecond: 3 }, null], true],
    ['a negative rate', [{ atMs: 5, backlog: 0, arrivalRatePerSecond: -1 }], false],
    ['a rate that is not a number', [{ atMs: 5, backlog: 0, serviceRatePerSecond: '2' }], false],
    ['an estimate without the time of its reading', [{ backlog: 0, arrivalRatePerSecond: 3 }], false],
    ['more sources than a trigger has', new Array(9).fill(null), false],
  ])('reads the sources’ rate estimates: %s', (_name, rates, ok) => {
    expect(sharedStateSchema.safeParse({ history: emptyHistory(), ...(rates !== undefined && { rates }) }).success).toBe(ok);
  });

  it("moves the history's times and each rate estimate's reading to another clock, and nothing else", () => {
    const state = {
      trigger: 't1',
      history: { ...emptyHistory(), lastWorkAtMs: 1000, idleGapsSeconds: [30] },
      rates: [{ atMs: 900, backlog: 2, arrivedTotal: 90, arrivalRatePerSecond: 3 }, null],
    };
    expect(shiftSharedState(state, 30_000)).toEqual({
      trigger: 't1',
      history: { ...emptyHistory(), lastWorkAtMs: 31_000, idleGapsSeconds: [30] },
      rates: [{ atMs: 30_900, backlog: 2, arrivedTotal: 90, arrivalRatePerSecond: 3 }, null],
    });
    const { rates: _, ...withoutRates } = state;
    expect(shiftSharedState(withoutRates, -500)).toEqual({ ...withoutRates, history: { ...state.history, lastWorkAtMs: 500 } });
  });
});

describe('SharedState lease renewals', () => {
  it('renews every lease once a round (leaseMs / 3), a tenth of the triggers per tick in one store call, never all at once', async () => {
    vi.useFakeTimers();
    try {
      const store = new StateCluster(() => Date.now()).client('a');
      const calls: number[] = [];
      const byKey = new Map<string, number[]>();
      const acquire = store.acquireLeases.bind(store);
      store.acquireLeases = (keys: readonly string[]) => {
        calls.push(Date.now());
        for (const key of keys) byKey.set(key, [...(byKey.get(key) ?? []), Date.now()]);
        return acquire(keys);
      };
      const shared = new SharedState(store, { logger: silentLogger(), publishIntervalMs: 5000 });
      for (let i = 0; i < 1000; i++) await shared.track(`k${i}`);
      const before = store.leaseCalls;
      shared.start();
      // Two rounds of 1,000 ms (leaseMs 3,000 / 3), ticks of 100 ms: a call of 100 leases each.
      await vi.advanceTimersByTimeAsync(2000);
      expect(calls).toHaveLength(20);
      expect(new Set(calls).size).toBe(20);
      expect(store.leaseCalls - before).toBe(20);
      // Every lease was renewed once in each round, a round (1 s) apart: well within its 3 s.
      expect(byKey.size).toBe(1000);
      for (const [key, at] of byKey) expect(at.length === 2 && at[1]! - at[0]! === 1000, `${key}: ${at.join(', ')}`).toBe(true);
      await shared.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

// Found by review: the intervals read the wall clock, so a step forward past 3 minutes (an NTP
// step, a VM resumed) took every trigger for unasked and gave its lease up.
describe('SharedState on a wall clock stepped forward', () => {
  it('keeps renewing the leases of triggers asked about a moment ago (its own clock is monotonic)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] });
    try {
      const cluster = new StateCluster(() => performance.timeOrigin + performance.now());
      const store = cluster.client('a');
      const released: string[] = [];
      const release = store.releaseLease.bind(store);
      store.releaseLease = (key: string) => {
        released.push(key);
        return release(key);
      };
      const shared = new SharedState(store, { logger: silentLogger(), publishIntervalMs: 5000 });
      await shared.track('k');
      shared.start();
      await vi.advanceTimersByTimeAsync(1000);
      vi.setSystemTime(Date.now() + 10 * 60_000);
      await vi.advanceTimersByTimeAsync(2000);
      expect(released).toEqual([]);
      expect(shared.role('k')).toBe('writer');
      await shared.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('SharedState lease renewals in one call', () => {
  it('take each answer for its own trigger: a lease held, one another holds, one the store refused', async () => {
    const { clock, cluster, store, shared } = sharedAlone(6_000_000);
    for (const key of ['mine', 'theirs', 'refused']) await shared.track(key);
    expect(['mine', 'theirs', 'refused'].map((k) => shared.role(k))).toEqual(['writer', 'writer', 'writer']);
    // b takes 'theirs' once a's lease lapsed; the store refuses 'refused' (another kind of value under it).
    clock.ms += cluster.leaseMs + 1;
    expect(await cluster.client('b').acquireLease('theirs')).toBe(true);
    const acquire = store.acquireLeases.bind(store);
    store.acquireLeases = async (keys) => (await acquire(keys)).map((held, i) => (keys[i] === 'refused' ? undefined : held));
    const before = store.leaseCalls;
    await shared.refresh(false);
    // One call for the three, and one more for 'mine': its lease lapsed with a's too, so winning it
    // back is taking it anew, after a read (another replica may have held it and published meanwhile).
    await vi.waitFor(() =>
      expect(['mine', 'theirs', 'refused'].map((k) => shared.role(k))).toEqual(['writer', 'follower', 'local']),
    );
    expect(store.leaseCalls - before).toBe(2);
    // Within its lease, one call for all.
    const within = store.leaseCalls;
    await shared.refresh(false);
    expect(store.leaseCalls - within).toBe(1);
    expect(['mine', 'theirs', 'refused'].map((k) => shared.role(k))).toEqual(['writer', 'follower', 'local']);
    // The store not answering: every trigger of the call on its own state.
    store.acquireLeases = () => Promise.reject(new Error('store down'));
    await shared.refresh(false);
    expect(['mine', 'theirs', 'refused'].map((k) => shared.role(k))).toEqual(['local', 'local', 'local']);
    await shared.close();
  });

  it("a writer that lost its lease in a round that re-reads reads its new writer's record", async () => {
    const pair = await writerAndFollower(7_000_000);
    const { cluster, a, b, id } = pair;
    expect([a.shared.role(id), b.shared.role(id)]).toEqual(['writer', 'follower']);
    // a paused past its lease, its subscription lost meanwhile: b takes the lease over and publishes.
    const aClient = a.shared.store as ReturnType<StateCluster['client']>;
    cluster.clients.delete(aClient);
    await bTakesOver(pair, 12);
    cluster.clients.add(aClient);
    expect(a.shared.view(id)?.record?.writerId).not.toBe('b');
    // The re-read round brings b's record.
    await a.shared.refresh(true);
    expect(a.shared.role(id)).toBe('follower');
    await vi.waitFor(() => expect(a.shared.view(id)?.record?.writerId).toBe('b'));
    await Promise.all([a, b].map((x) => x.shared.close()));
  });

  it("a writer paused past its lease that wins it back free reads its successor's record before writing", async () => {
    // Found by review (2026-12-08): b took the lease over, published and gave it up (a rollout)
    // while a was paused with its subscription lost; a's plain renewal won the free lease as if it
    // had kept it, stayed the writer, and published its own history over b's unread.
    const pair = await writerAndFollower(7_500_000);
    const { cluster, a, b, id } = pair;
    const aClient = a.shared.store as ReturnType<StateCluster['client']>;
    cluster.clients.delete(aClient);
    await bTakesOver(pair, 12);
    await b.shared.close();
    cluster.clients.add(aClient);
    expect(a.shared.role(id)).toBe('writer');
    expect(a.shared.view(id)?.record?.writerId).not.toBe('b');
    await a.shared.refresh(false);
    await vi.waitFor(() => expect(a.shared.view(id)?.record?.writerId).toBe('b'));
    expect(a.shared.role(id)).toBe('writer');
    await a.shared.close();
  });
});

describe('giving a lease up', () => {
  it('gives up a lease it won and has not written under (its read failed), not only a writer’s', async () => {
    // Found by review (2026-12-08): only the writer's role gave its lease up, and one won during a
    // takeover whose read failed stayed until its term ran out, the next replica kept waiting.
    const { clock, cluster, store, shared } = sharedAlone(9_000_000);
    await shared.track('k');
    expect(shared.role('k')).toBe('writer');
    clock.ms += cluster.leaseMs + 1;
    store.read = () => Promise.reject(new Error('a read the store did not answer'));
    await shared.refresh(false);
    // Won back after its term: a takeover, whose read failed: a follower holding the lease.
    await vi.waitFor(() => expect(shared.role('k')).toBe('follower'));
    expect(await cluster.client('b').acquireLease('k')).toBe(false);
    shared.forget('k');
    await vi.waitFor(async () => expect(await cluster.client('b').acquireLease('k')).toBe(true));
    await shared.close();
  });
});

describe('what a writer keeps of the records', () => {
  it("not its own once published (its history is newer), and the next writer's once it takes over", async () => {
    const pair = await writerAndFollower(8_000_000);
    const { cluster, a, b, id } = pair;
    await vi.waitFor(async () => expect((await cluster.client('c').read(id))?.writerId).toBe('a'));
    expect(a.shared.view(id)?.record).toBeUndefined();
    expect(b.shared.view(id)?.record?.writerId).toBe('a');
    // b takes the lease over once a's lapsed, and publishes: a takes b's record.
    const old = (await cluster.client('c').read(id))!;
    await bTakesOver(pair, 14);
    await vi.waitFor(() => expect(a.shared.view(id)?.record?.writerId).toBe('b'));
    expect(a.shared.view(id)!.record!.atMs).toBeGreaterThan(old.atMs);
    await Promise.all([a, b].map((x) => x.shared.close()));
  });
});

describe('a writer KEDA stopped asking (its calls go to the other replica)', () => {
  it('gives its lease up after 3 minutes, and the replica asked writes, from its own decisions, not a frozen record', async () => {
    const clock = { ms: 5_000_000 };
    const cluster = new StateCluster(() => clock.ms);
    const a = replica(cluster, 'a');
    const b = replica(cluster, 'b');
    const id = a.engine.trigger(ref).id;
    broker.backlog = 6;
    await a.engine.evaluate(a.engine.trigger(ref));
    await b.engine.evaluate(b.engine.trigger(ref));
    expect([a.shared.view(id)?.role, b.shared.view(id)?.role]).toEqual(['writer', 'follower']);
    // From now on KEDA asks b only (a Service that is not headless, one stream on b); leases renewed every second.
    for (let s = 1; s <= 240; s++) {
      clock.ms += 1000;
      await Promise.all([a, b].map((x) => x.shared.refresh(false)));
      await b.engine.evaluate(b.engine.trigger(ref));
      // Someone reads /explain on a now and then: that is not KEDA asking (found by review: it was).
      if (s % 30 === 0) expect(a.engine.sharedState(a.engine.trigger(ref))?.role).toBeDefined();
      if (s === 170) expect(b.shared.view(id)?.role).toBe('follower');
    }
    expect([a.shared.view(id)?.role, b.shared.view(id)?.role]).toEqual(['follower', 'writer']);
    // b publishes what it decides: the record is seconds old, not the 4 minutes since a last decided.
    expect(clock.ms - (await cluster.client('c').read(id))!.atMs).toBeLessThan(10_000);
    await Promise.all([a, b].map((x) => x.shared.close()));
  });
});

// Found by review: KEDA asking each replica less often than the 3 minutes a writer keeps an unasked
// lease (a ScaledObject at zero polled every pollingInterval) left the replica asked a follower at
// each call, taking the lease only after it answered: nothing was published again, and the record
// froze, then expired.
describe('replicas KEDA asks less often than a writer keeps an unasked lease', () => {
  it.each([
    ['one replica asked every 200 s', 1, 200],
    ['two replicas in turn, every 100 s', 2, 100],
  ])('%s: the replica that takes the lease over publishes what it decided as a follower', async (_name, count, everyS) => {
    const clock = { ms: 7_000_000 };
    const cluster = new StateCluster(() => clock.ms);
    const replicas = ['a', 'b'].slice(0, count).map((name) => replica(cluster, name));
    const id = replicas[0]!.engine.trigger(ref).id;
    broker.backlog = 3;
    for (let call = 0; call < 8; call++) {
      const r = replicas[call % count]!;
      await r.engine.evaluate(r.engine.trigger(ref));
      // Leases renewed every second until the next call.
      for (let s = 0; s < everyS; s++) {
        clock.ms += 1000;
        await Promise.all(replicas.map((x) => x.shared.refresh(false)));
      }
    }
    // Within one interval between calls of the last: not the first call's record of 1,400 s before.
    expect(clock.ms - (await cluster.client('c').read(id))!.atMs).toBeLessThanOrEqual(everyS * 1000);
    await Promise.all(replicas.map((x) => x.shared.close()));
  });
});

// Found by review: the lease won beside a read that failed made the replica writer all the same,
// free to publish over a newer record it never saw.
describe('a replica whose read fails as it wins the lease', () => {
  it('stays a follower until it has read the record, then writes', async () => {
    const clock = { ms: 8_000_000 };
    const cluster = new StateCluster(() => clock.ms);
    let readsFail = false;
    const client = cluster.client('b');
    const failing = new Proxy(client, {
      get: (target, key, receiver) => {
        const value = Reflect.get(target, key, receiver) as unknown;
        if (key !== 'read' || typeof value !== 'function') return value;
        return (...args: unknown[]) =>
          readsFail ? Promise.reject(new Error('read timed out')) : (value as (...a: unknown[]) => unknown).apply(target, args);
      },
    });
    const a = replica(cluster, 'a');
    const b = replica(cluster, 'b', driver, failing);
    broker.backlog = 10;
    clock.ms += 1000;
    await a.engine.evaluate(a.engine.trigger(ref));
    await b.engine.evaluate(b.engine.trigger(ref));
    const id = a.engine.trigger(ref).id;
    expect(b.shared.role(id)).toBe('follower');
    await a.shared.close();
    readsFail = true;
    await b.shared.refresh(true);
    expect(b.shared.role(id)).toBe('follower');
    readsFail = false;
    await b.shared.refresh(true);
    expect(b.shared.role(id)).toBe('writer');
    await b.shared.close();
  });
});

// Found by review: a round began only once the clock passed the last round's start plus a round,
// so a clock stepped back an hour stopped every renewal for the hour, the role still 'writer'.
describe('SharedState with the wall clock stepped back', () => {
  it('goes on renewing its leases', async () => {
    vi.useFakeTimers();
    try {
      vi.setSystemTime(10 * 3_600_000);
      const store = new StateCluster(() => Date.now()).client('a');
      const shared = new SharedState(store, { logger: silentLogger(), publishIntervalMs: 5000 });
      await shared.track('k');
      shared.start();
      await vi.advanceTimersByTimeAsync(2000);
      vi.setSystemTime(Date.now() - 3_600_000);
      const before = store.leaseCalls;
      await vi.advanceTimersByTimeAsync(3000);
      // Rounds of 1,000 ms (leaseMs 3,000 / 3): about three in 3 s, as before the step.
      expect(store.leaseCalls - before).toBeGreaterThanOrEqual(2);
      await shared.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('SharedState entries of triggers that never answered', () => {
  it('are forgotten, their leases released, once no one asked about them for the idle window', async () => {
    const clock = { ms: 1_000_000 };
    const cluster = new StateCluster(() => clock.ms);
    const failing = fakeRabbitDriver(async (queue) => {
      if (queue.startsWith('typo')) throw new Error('NOT_FOUND - no queue');
      return { backlog: 1, waiting: 1, inFlight: 0, consumers: 1 };
    });
    const { engine, shared } = replica(cluster, 'a', failing);
    const so = (name: string, queue: string): TriggerRef => ({
      name,
      namespace: 'ns',
      metadata: { 'rabbitmq.host': 'http://broker:15672', 'rabbitmq.queueName': queue },
    });
    // 20 triggers whose queue name is a typo: tracked (a lease each) at first sight, never decided.
    for (let i = 0; i < 20; i++) await expect(engine.evaluate(engine.trigger(so(`bad-${i}`, `typo-${i}`)))).rejects.toThrow();
    await engine.evaluate(engine.trigger(so('good', 'q')));
    expect(shared.size).toBe(21);
    // Fixed or deleted: no one asks about them again; the good one is asked about past the idle window.
    clock.ms += 31 * 60_000;
    await engine.evaluate(engine.trigger(so('good', 'q')));
    expect(shared.size).toBe(1);
    await shared.close();
  });
});

describe("the engine's sweep during a first sight", () => {
  it('keeps the trigger whose first sight is under way: a restarted replica decides it from what was learned', async () => {
    const clock = { ms: 1_000_000 };
    const cluster = new StateCluster(() => clock.ms);
    const so = (name: string, queue: string): TriggerRef => ({
      name,
      namespace: 'ns',
      metadata: { 'rabbitmq.host': 'http://broker:15672', 'rabbitmq.queueName': queue },
    });
    // Learned before: a writer that saw both triggers, then went.
    const before = replica(cluster, 'old');
    for (const name of ['a', 'b']) await before.engine.evaluate(before.engine.trigger(so(name, name)));
    await before.shared.close();
    // A replica started afresh: b's queue answers only once a's call has been decided (and swept).
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = fakeRabbitDriver(async (queue) => {
      if (queue === 'b') await held;
      return { backlog: 0, waiting: 0, inFlight: 0, consumers: 1 };
    });
    const { engine, shared } = replica(cluster, 'new', slow);
    const b = engine.evaluate(engine.trigger(so('b', 'b')));
    await engine.evaluate(engine.trigger(so('a', 'a')));
    expect(shared.size).toBe(2);
    release();
    await b;
    expect(shared.view(engine.trigger(so('b', 'b')).id)?.record).toBeDefined();
    await shared.close();
  });
});

/** b's subscription lost a while: a publishes a newer state b does not hear, then goes. Its last record. */
async function aPublishesUnheardAndGoes({ clock, cluster, a, b, id }: Awaited<ReturnType<typeof writerAndFollower>>) {
  const bClient = b.shared.store as ReturnType<StateCluster['client']>;
  cluster.clients.delete(bClient);
  clock.ms += 6000;
  await a.shared.refresh(false);
  broker.backlog = 12;
  await a.engine.evaluate(a.engine.trigger(ref));
  const last = (await cluster.client('c').read(id))!;
  expect(last.writerId).toBe('a');
  await a.shared.close();
  cluster.clients.add(bClient);
  expect(b.shared.view(id)?.record?.storedAtMs).not.toBe(last.storedAtMs);
  return last;
}

describe('a replica that takes the lease in a re-read round', () => {
  it('keeps the record it read beside the lease: the writer it replaces published one it did not hear', async () => {
    const pair = await writerAndFollower(8_000_000);
    const { b, id } = pair;
    const last = await aPublishesUnheardAndGoes(pair);
    // The re-read round: b wins the lease, and decides on from a's last record, not its own older one.
    await b.shared.refresh(true);
    expect(b.shared.role(id)).toBe('writer');
    expect(b.shared.view(id)?.record?.storedAtMs).toBe(last.storedAtMs);
    await b.shared.close();
    broker.backlog = 0;
  });
});

describe('a replica that takes the lease in a plain renewal round', () => {
  /** b left local by one renewal the store did not answer (its health unchanged). */
  async function leftLocal({ b, id }: Awaited<ReturnType<typeof writerAndFollower>>) {
    const bClient = b.shared.store as ReturnType<StateCluster['client']>;
    const acquire = bClient.acquireLeases.bind(bClient);
    bClient.acquireLeases = () => Promise.reject(new Error('a renewal the store did not answer'));
    await b.shared.refresh(false);
    expect(b.shared.role(id)).toBe('local');
    bClient.acquireLeases = acquire;
  }

  // Found by review: the batched renewal (two rounds in three) made a follower that won the lease a
  // writer without reading the record, and it wrote over a newer one whose announcement it missed;
  // the fix covered a follower, not an entry one failed renewal left local (found by review of it).
  it.each([
    { what: 'a follower', before: async () => undefined, startMs: 8_500_000 },
    { what: 'an entry one failed renewal left local', before: leftLocal, startMs: 8_600_000 },
  ])(
    '$what reads the record before it writes: the writer it replaces published one it did not hear',
    async ({ before, startMs }) => {
      const pair = await writerAndFollower(startMs);
      const { b, id } = pair;
      await before(pair);
      const last = await aPublishesUnheardAndGoes(pair);
      await b.shared.refresh(false);
      // A writer only once it has read a's last record, which it decides on from.
      await vi.waitFor(() => expect(b.shared.role(id)).toBe('writer'));
      expect(b.shared.view(id)?.record?.storedAtMs).toBe(last.storedAtMs);
      await b.shared.close();
      broker.backlog = 0;
    },
  );
});

describe('the store back after an outage', () => {
  it('re-reads every trigger in a round of ticks, not all at once as it comes back', async () => {
    vi.useFakeTimers();
    try {
      const cluster = new StateCluster(() => Date.now());
      const store = cluster.client('a');
      const reads: number[] = [];
      const read = store.read.bind(store);
      store.read = (key: string) => {
        reads.push(Date.now());
        return read(key);
      };
      const shared = new SharedState(store, { logger: silentLogger(), publishIntervalMs: 5000 });
      for (let i = 0; i < 100; i++) await shared.track(`k${i}`);
      shared.start();
      cluster.setHealth('degraded');
      await vi.advanceTimersByTimeAsync(500);
      reads.length = 0;
      cluster.setHealth('up');
      await vi.advanceTimersByTimeAsync(0);
      expect(reads).toHaveLength(0);
      // One round (1,000 ms, ticks of 100 ms): every trigger read once, a tenth a tick.
      await vi.advanceTimersByTimeAsync(1000);
      expect(reads).toHaveLength(100);
      expect(new Set(reads).size).toBe(10);
      expect(shared.roles()).toEqual({ writer: 100, follower: 0, local: 0 });
      await shared.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

/** writerAndFollower, then a decides again a second later with the same answer: owed, not yet published. */
async function aOwesOne(startMs: number) {
  const pair = await writerAndFollower(startMs);
  await pair.a.shared.publishesLanded();
  pair.clock.ms += 1000;
  await pair.a.engine.evaluate(pair.a.engine.trigger(ref));
  expect(pair.a.shared.owed()).toEqual([pair.id]);
  return pair;
}

describe('a writer that publishes', () => {
  /** `client` whose publishes land only when the test opens the gate (`open`), as on a store far away. */
  function gatedPublishes(client: ReturnType<StateCluster['client']>) {
    const gate = { open: () => undefined as void, opened: Promise.resolve() };
    gate.opened = new Promise<void>((resolve) => (gate.open = resolve));
    const publish = client.publish.bind(client);
    client.publish = async (...args) => {
      await gate.opened;
      return publish(...args);
    };
    return gate;
  }

  // Found by review: a changed answer that came while a publish was in flight was dropped, and the
  // record stayed at the answer before it until the interval (5 s) let the next one through.
  it('publishes a changed answer that came while its last publish was in flight at the next decision', async () => {
    const clock = { ms: 9_000_000 };
    const cluster = new StateCluster(() => clock.ms);
    const client = cluster.client('a');
    const gate = gatedPublishes(client);
    const a = replica(cluster, 'a', driver, client);
    const id = a.engine.trigger(ref).id;
    broker.backlog = 0;
    await a.engine.evaluate(a.engine.trigger(ref));
    expect(a.shared.role(id)).toBe('writer');
    // The first publish is in flight; the answer changes (work arrives), then stays.
    clock.ms += 1500;
    broker.backlog = 40;
    const changed = (await a.engine.evaluate(a.engine.trigger(ref))).decision;
    gate.open();
    await a.shared.publishesLanded();
    expect((await cluster.client('c').read(id))!.payload.history.lastDesiredReplicas).not.toBe(changed.desiredReplicas);
    clock.ms += 1500;
    await a.shared.refresh(false);
    await a.engine.evaluate(a.engine.trigger(ref));
    await a.shared.publishesLanded();
    const record = (await cluster.client('c').read(id))!;
    expect(record.atMs).toBe(clock.ms);
    expect(record.payload.history.lastDesiredReplicas).toBe(changed.desiredReplicas);
    await a.shared.close();
  });

  it('publishes what it decided since its last publish before it stops (publishOwed), not up to 5 s older', async () => {
    const clock = { ms: 9_100_000 };
    const cluster = new StateCluster(() => clock.ms);
    const a = replica(cluster, 'a');
    const id = a.engine.trigger(ref).id;
    broker.backlog = 10;
    const before = await a.engine.evaluate(a.engine.trigger(ref));
    await a.shared.publishesLanded();
    const first = (await cluster.client('c').read(id))!.atMs;
    // A reading 2 s later with the same answer: within the interval, not published.
    clock.ms += 2000;
    const again = await a.engine.evaluate(a.engine.trigger(ref));
    expect([again.decision.desiredReplicas, again.decision.active]).toEqual([
      before.decision.desiredReplicas,
      before.decision.active,
    ]);
    await a.shared.publishesLanded();
    expect((await cluster.client('c').read(id))!.atMs).toBe(first);
    await a.engine.publishOwed();
    expect((await cluster.client('c').read(id))!.atMs).toBe(clock.ms);
    // Nothing more owed: a second call publishes nothing.
    const calls = vi.spyOn(a.shared.store, 'publish');
    await a.engine.publishOwed();
    expect(calls).not.toHaveBeenCalled();
    await a.shared.close();
  });

  // Found by review of publishOwed: stored at the stop, a writer's decision made minutes before (KEDA
  // asking the other replica meanwhile) was the newest record, and the follower went back to it.
  it('publishes at its stop no decision older than the publish interval: the replicas asked since learned past it', async () => {
    const { clock, cluster, a, b, id } = await aOwesOne(9_300_000);
    // Only b is asked for 100 s.
    const stored = (await cluster.client('c').read(id))!;
    for (let s = 0; s < 100; s++) {
      clock.ms += 1000;
      await Promise.all([a, b].map((x) => x.shared.refresh(false)));
      await b.engine.evaluate(b.engine.trigger(ref));
    }
    expect(a.shared.role(id)).toBe('writer');
    expect(a.shared.owed()).toEqual([]);
    await a.engine.publishOwed();
    expect((await cluster.client('c').read(id))!.storedAtMs).toBe(stored.storedAtMs);
    await Promise.all([a, b].map((x) => x.shared.close()));
  });

  // Found by review of publishOwed: a decision left unpublished when the lease went to another
  // replica stayed owed, and with the lease back the replica stored it over that writer's newer record.
  it("owes nothing once another writer's newer record is taken, its lease back or not", async () => {
    const { clock, cluster, a, b, id } = await aOwesOne(9_400_000);
    // a paused past its lease: b takes it over and publishes; a hears it.
    clock.ms += cluster.leaseMs + 1;
    await b.shared.refresh(false);
    broker.backlog = 14;
    await b.engine.evaluate(b.engine.trigger(ref));
    await b.shared.publishesLanded();
    expect(a.shared.view(id)?.record?.writerId).toBe('b');
    // b goes; a takes the lease back, within the interval of its own unpublished decision.
    await b.shared.close();
    await a.shared.refresh(true);
    expect(a.shared.role(id)).toBe('writer');
    expect(a.shared.owed()).toEqual([]);
    await a.shared.close();
    broker.backlog = 0;
  });

  // Found by review: the engine's answer from fresh cached readings did not track a trigger in the
  // store, so one the idle sweep had forgotten, asked again while another trigger on its queue kept
  // the reading fresh, was decided on its own from then on, never shared again.
  it('tracks again a trigger the idle sweep forgot, asked again while another trigger keeps its queue fresh', async () => {
    const clock = { ms: 9_200_000 };
    const cluster = new StateCluster(() => clock.ms);
    const a = replica(cluster, 'a');
    const other: TriggerRef = { ...ref, name: 'other' };
    const id = a.engine.trigger(ref).id;
    broker.backlog = 3;
    await a.engine.evaluate(a.engine.trigger(ref));
    expect(a.shared.role(id)).toBe('writer');
    // 34 minutes of calls for the other trigger only (its lease renewed): the first is swept.
    for (let m = 1; m <= 34; m++) {
      clock.ms += 60_000;
      await a.shared.refresh(false);
      await a.engine.evaluate(a.engine.trigger(other));
    }
    expect(a.shared.role(id)).toBeUndefined();
    // Asked again in the same second as the other, whose call left the queue's reading fresh.
    await a.engine.evaluate(a.engine.trigger(ref));
    expect(a.shared.role(id)).toBe('writer');
    await a.shared.publishesLanded();
    expect((await cluster.client('c').read(id))!.atMs).toBe(clock.ms);
    await a.shared.close();
  });
});
