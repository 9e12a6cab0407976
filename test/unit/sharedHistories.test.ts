// Which history a replica goes on from when the shared store holds another's: after deciding alone
// through an outage, and after an edit of the trigger's settings.
//
// A replica that decided alone while the shared store was out of reach, then takes the record from
// before the outage: what it learned comes from the record, what it counted stays its own. Found by
// review: the backlog's rises summed (the arrival counter of a source without one) came from the
// record while the arrival marks compared with it stayed the replica's, and the difference of the
// two totals read as arrivals of the last seconds: maxReplicas for 15 s, and a burst of need 112
// learned and published to every replica.
import { describe, expect, it } from 'vitest';
import type { TriggerRef } from '../../src/trigger/types.ts';
import { fakeRabbitDriver } from '../support/fakeDriver.ts';
import { engineOn, replicaOn } from '../support/replicas.ts';
import { StateCluster } from '../support/stateCluster.ts';

/** A queue read without arrival counters (as over amqp, or SQS): the model sums the backlog's rises. */
const broker = { backlog: 0, inFlight: 0 };
const driver = fakeRabbitDriver(async () => ({
  backlog: broker.backlog + broker.inFlight,
  waiting: broker.backlog,
  inFlight: broker.inFlight,
  consumers: 1,
}));

const ref: TriggerRef = {
  name: 'so',
  namespace: 'ns',
  metadata: {
    'rabbitmq.host': 'http://broker:15672',
    'rabbitmq.queueName': 'q',
    coldStartSeconds: '10',
    drainSeconds: '5',
    throughputPerReplica: '2',
    maxReplicas: '50',
  },
};

/** A store of its own on a clock the test moves, and replicas on it reading the broker above. */
function onOneStore(startMs: number) {
  const clock = { ms: startMs };
  const cluster = new StateCluster(() => clock.ms);
  return { clock, cluster, replica: (name: string) => replicaOn(cluster, name, driver) };
}

describe('a replica that decided alone takes the record from before the outage', () => {
  it('counts no arrivals from the record: no fleet above what one process alone asks for, no burst learned', async () => {
    const { clock, cluster, replica } = onOneStore(4_000_000);
    // The writer learns for 10 minutes: bursts of 40 messages, served.
    const a = replica('a');
    for (let i = 0; i < 600; i++) {
      const phase = i % 20;
      broker.backlog = phase < 3 ? 40 - phase * 13 : 0;
      broker.inFlight = phase < 5 ? 1 : 0;
      clock.ms += 1000;
      await a.engine.evaluate(a.engine.trigger(ref));
      if (i % 3 === 0) await a.shared.refresh(true);
    }
    await a.shared.close();
    // The store out of reach: another replica, started meanwhile, decides alone for 20 minutes.
    cluster.setHealth('degraded');
    const b = replica('b');
    const lone = engineOn(() => clock.ms, driver);
    broker.backlog = 5;
    broker.inFlight = 1;
    for (let i = 0; i < 80; i++) {
      clock.ms += 15_000;
      await b.engine.evaluate(b.engine.trigger(ref));
      await lone.evaluate(lone.trigger(ref));
    }
    // Back: it takes the record, and goes on.
    cluster.setHealth('up');
    await b.shared.refresh(true);
    const above: number[] = [];
    for (let i = 0; i < 300; i++) {
      clock.ms += 1000;
      broker.backlog = 5 + (i % 2);
      if (i % 3 === 0) await b.shared.refresh(true);
      const shared = await b.engine.evaluate(b.engine.trigger(ref));
      const alone = await lone.evaluate(lone.trigger(ref));
      if (shared.decision.desiredReplicas > alone.decision.desiredReplicas + 2) above.push(i);
    }
    expect(above).toEqual([]);
    const record = await cluster.client('z').read(b.engine.trigger(ref).id);
    const needs = (record?.payload.history.bursts ?? []).map((burst) => burst.need);
    expect(Math.max(0, ...needs)).toBeLessThan(10);
    await b.shared.close();
  });
});

// Found by review: the first call after an edit landed on the replica KEDA had not been asking (its
// connection stayed on the other for minutes), which carried on its own stale history of the old
// settings instead of the newer record it held, published that as the edited trigger's, and the
// other replica then took it: what was learned meanwhile lost on both.
describe('an edit whose first call lands on the replica KEDA was not asking', () => {
  it("carries on from the other replica's newer record of the previous settings", async () => {
    const { clock, replica } = onOneStore(15_000_000);
    const a = replica('a');
    const b = replica('b');
    const metadata = {
      'rabbitmq.host': 'http://broker:15672',
      'rabbitmq.queueName': 'q',
      coldStartSeconds: '10',
      drainSeconds: '60',
    };
    const before: TriggerRef = { name: 'edited', namespace: 'ns', metadata };
    const after: TriggerRef = { name: 'edited', namespace: 'ns', metadata: { ...metadata, maxReplicas: '40' } };
    broker.inFlight = 0;
    broker.backlog = 10;
    clock.ms += 1000;
    await a.engine.evaluate(a.engine.trigger(before));
    await b.engine.evaluate(b.engine.trigger(before));
    // KEDA's connection on b for 10 minutes: b learns idle gaps of 20 s.
    for (let s = 0; s < 600; s++) {
      broker.backlog = s % 25 < 5 ? 10 : 0;
      clock.ms += 1000;
      await Promise.all([a.shared.refresh(s % 3 === 0), b.shared.refresh(s % 3 === 0)]);
      await b.engine.evaluate(b.engine.trigger(before));
    }
    broker.backlog = 0;
    clock.ms += 2000;
    const onB = await b.engine.evaluate(b.engine.trigger(before));
    expect(onB.decision.explanation.details.keepWarmSource).toBe('learned');
    const edited = await a.engine.evaluate(a.engine.trigger(after));
    expect(edited.decision.explanation.details.keepWarmSource).toBe('learned');
    expect(a.engine.learnedUnder(a.engine.trigger(after))).toBe(a.engine.trigger(before).id);
    await Promise.all([a, b].map((r) => r.shared.close()));
  });
});
