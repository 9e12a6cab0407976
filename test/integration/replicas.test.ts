// Two scaler processes on one real Redis (through a proxy the test can cut), driven by a client
// that alternates calls between them as KEDA's round_robin does: they answer alike, a process that
// restarts answers from what was learned, and the store going away (stopped, then blackholed)
// leaves both answering on their own state, with a metric and a log line, until it is back. And a
// Kafka trigger (rates the scaler counts from offsets) restarted: its rates come back from the store.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScaledObjectRef } from '../../src/server/protocol.ts';
import { KafkaFixture } from '../support/kafka.ts';
import { ScalerProcess, stopWithSigterm } from '../support/process.ts';
import { RabbitFixture } from '../support/rabbitmq.ts';
import { OwnRedisCluster, rawClient } from '../support/redis.ts';
import { eventually, ref, requireService } from '../support/scaler.ts';
import { TcpProxy } from '../support/tcpProxy.ts';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../bin/keda-inference-scaler.mjs', import.meta.url));

let rabbit: RabbitFixture;
let proxy: TcpProxy;
let env: Record<string, string>;
let a: ScalerProcess;
let b: ScalerProcess;
let queue: string;
let so: ScaledObjectRef;

beforeAll(async () => {
  rabbit = await RabbitFixture.connect(requireService('RABBITMQ_URL'));
  proxy = TcpProxy.forUrl(requireService('STATE_STORE_URL'));
  await proxy.start();
  env = { STATE_STORE_URL: proxy.rewrite(requireService('STATE_STORE_URL')) };
  [a, b] = await Promise.all([ScalerProcess.start(env), ScalerProcess.start(env)]);
  queue = await rabbit.queue(0, 'kis-replicas');
  // A cold start of 10 s within a 60 s objective: a gap shorter than 10 s is worth bridging.
  so = ref(
    { 'rabbitmq.host': requireService('RABBITMQ_URL'), 'rabbitmq.queueName': queue, coldStartSeconds: '10', drainSeconds: '60' },
    'replicas',
    'kis',
  );
}, 60_000);

afterAll(async () => {
  await a?.kill();
  await b?.kill();
  await proxy?.stop();
  await rabbit?.[Symbol.asyncDispose]();
});

async function answer(p: ScalerProcess): Promise<string> {
  const [{ metricValues }, { result }] = await Promise.all([p.client.getMetrics(so), p.client.isActive(so)]);
  return `${metricValues[0]!.metricValueFloat}/${result}`;
}

/**
 * Asks a, b, a in turn for `ms`; where a answered the same before and after b (nothing changed in
 * between), b must have answered it too. Returns how many such checks there were.
 */
async function alike(ms: number, first: ScalerProcess, second: ScalerProcess): Promise<number> {
  let checks = 0;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const before = await answer(first);
    const other = await answer(second);
    const after = await answer(first);
    if (before === after) {
      expect(other, `${first.grpcPort} said ${before}`).toBe(before);
      checks++;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return checks;
}

/**
 * Work, then 3 s idle, four times, asked in turn (alike): the writer learns gaps of ~3 s, worth
 * bridging. Returns how many checks alike() made.
 */
async function learnIdleGaps(first: ScalerProcess, second: ScalerProcess): Promise<number> {
  let checks = 0;
  for (let cycle = 0; cycle < 4; cycle++) {
    await rabbit.publish(queue, 5);
    checks += await alike(1500, first, second);
    await rabbit.purge(queue);
    checks += await alike(3000, cycle % 2 === 0 ? second : first, cycle % 2 === 0 ? first : second);
  }
  return checks;
}

/** What the explain CLI prints for the ScaledObject on one replica. */
async function explainCli(p: ScalerProcess): Promise<string> {
  const url = `http://127.0.0.1:${p.metricsPort}`;
  return (await run(process.execPath, [cli, 'explain', '--url', url, '--namespace', 'kis', '--name', 'replicas'])).stdout;
}

/** The explanation's details of the trigger with `so`'s metadata (the explain lists every trigger of the ScaledObject). */
async function details(p: ScalerProcess): Promise<Record<string, unknown>> {
  const views = await p.explain('kis', 'replicas');
  const view = views.find((v) => v.trigger.scaling.drainSeconds === Number(so.scalerMetadata.drainSeconds));
  return view!.explanation!.details;
}

describe('two scaler replicas on one shared store', () => {
  it('answer alike, round robin, while the trigger learns its idle gaps', async () => {
    expect(await learnIdleGaps(a, b)).toBeGreaterThan(20);
    const [da, db] = [await details(a), await details(b)];
    expect(da.keepWarmSource).toBe('learned');
    expect(db).toMatchObject({ keepWarmSource: 'learned', keepWarmSeconds: da.keepWarmSeconds });
    // One of them writes the trigger's state, the other follows it, and /explain says which.
    const leases = await Promise.all([a, b].map(async (p) => Number(/state_leases_held (\d+)/.exec(await p.metrics())?.[1])));
    expect(leases.sort()).toEqual([0, 1]);
    const roles = await Promise.all(
      [a, b].map(async (p) => {
        const text = await p.metrics();
        return ['writer', 'follower', 'local'].map((role) =>
          Number(new RegExp(`state_triggers\\{role="${role}"\\} (\\d+)`).exec(text)?.[1]),
        );
      }),
    );
    // One trigger: a writer on one replica, a follower on the other, local on neither.
    expect(roles.sort()).toEqual([
      [0, 1, 0],
      [1, 0, 0],
    ]);
    const shared = await Promise.all([a, b].map(async (p) => (await p.explain('kis', 'replicas'))[0]!.sharedState!));
    const follower = shared.find((v) => v.role === 'follower');
    expect(shared.map((v) => v.role).sort()).toEqual(['follower', 'writer']);
    expect(shared.find((v) => v.role === 'writer')!.decidedFrom).toBe('its own state');
    expect(follower!.decidedFrom).toMatch(/^the state another replica published at \d{4}-\d\d-\d\dT/);
    // The explain CLI says it in a line.
    const lines = await Promise.all(
      [a, b].map(async (p) => (await explainCli(p)).split('\n').find((l) => l.includes('shared state:'))),
    );
    expect(lines.sort()).toEqual([
      expect.stringMatching(/^ {2}shared state: follower on this replica, decided from the state another replica published at /),
      '  shared state: writer on this replica, decided from its own state',
    ]);
  }, 60_000);

  it('restarted, a replica answers with what was learned at once, not the break-even prior', async () => {
    const learned = (await details(a)).keepWarmSeconds;
    await b.kill();
    b = await ScalerProcess.start(env);
    await answer(b);
    expect(await details(b)).toMatchObject({ keepWarmSource: 'learned', keepWarmSeconds: learned });
    expect(await alike(2000, a, b)).toBeGreaterThan(3);
  }, 60_000);

  for (const outage of ['stopped', 'blackholed'] as const) {
    it(`keeps answering on its own state while the store is ${outage}, says so, and converges when it is back`, async () => {
      await rabbit.publish(queue, 7);
      await eventually(async () => ((await answer(a)).endsWith('/true') ? true : undefined), 5000);
      const warnedBefore = [a, b].map((p) => p.lines().filter((l) => String(l.msg).startsWith('state store unreachable')).length);
      if (outage === 'stopped') await proxy.stop();
      else proxy.blackhole();
      // Every call is answered within KEDA's 3 s deadline, from the work there is: never an error, never a false zero.
      const until = Date.now() + 5000;
      while (Date.now() < until) {
        for (const p of [a, b]) {
          const started = Date.now();
          expect(await answer(p)).toMatch(/^[1-9]\d*\/true$/);
          expect(Date.now() - started).toBeLessThan(3000);
        }
      }
      for (const [i, p] of [a, b].entries()) {
        await eventually(async () => (/state_store_up 0/.test(await p.metrics()) ? true : undefined), 10_000);
        // Every trigger it tracks decides from its own state, and the gauge says so.
        expect(await p.metrics()).toMatch(/state_triggers\{role="local"\} [1-9]/);
        const warned = p.lines().filter((l) => String(l.msg).startsWith('state store unreachable')).length;
        // One line for the outage, not one per call.
        expect(warned - warnedBefore[i]!).toBe(1);
      }
      if (outage === 'stopped') await proxy.start();
      else proxy.heal();
      for (const p of [a, b])
        await eventually(async () => (/state_store_up 1/.test(await p.metrics()) ? true : undefined), 20_000, 250);
      // Back: one writer again, and the two answer alike without a restart.
      await eventually(
        async () => {
          const leases = await Promise.all(
            [a, b].map(async (p) => Number(/state_leases_held (\d+)/.exec(await p.metrics())?.[1])),
          );
          return leases.sort().join() === '0,1' ? true : undefined;
        },
        10_000,
        250,
      );
      expect(await alike(3000, a, b)).toBeGreaterThan(3);
      await rabbit.purge(queue);
    }, 60_000);
  }

  it('edited (drainSeconds 60 to 45), the trigger carries on what was learned, on both replicas alike', async () => {
    const learned = (await details(a)).keepWarmSeconds;
    const before = so;
    // A new trigger id for KEDA's calls from now on: the same ScaledObject and queue.
    so = ref({ ...before.scalerMetadata, drainSeconds: '45' }, 'replicas', 'kis');
    try {
      await Promise.all([answer(a), answer(b)]);
      for (const p of [a, b]) expect(await details(p)).toMatchObject({ keepWarmSource: 'learned', keepWarmSeconds: learned });
      expect(await alike(2000, a, b)).toBeGreaterThan(3);
      // /explain and the CLI name the trigger it carried on from.
      const views = await a.explain('kis', 'replicas');
      const old = views.find((v) => v.trigger.scaling.drainSeconds === 60)!.trigger.id;
      expect(views.find((v) => v.trigger.scaling.drainSeconds === 45)!.learnedUnder).toBe(old);
      expect(await explainCli(a)).toContain(
        `  learned under: trigger ${old}, before its settings were edited (carried on from there)`,
      );
      const logs = a.logs + b.logs;
      expect(logs).toContain('trigger settings edited: it carries on from what was learned under its previous settings');
    } finally {
      so = before;
    }
  }, 60_000);

  it('restarted and edited at once, a replica that never saw the trigger starts from its lineage in the store', async () => {
    const before = so;
    await b.kill();
    b = await ScalerProcess.start(env);
    // Settings no replica has seen: b, asked first, takes the lease and finds no record of them.
    so = ref({ ...before.scalerMetadata, drainSeconds: '50' }, 'replicas', 'kis');
    try {
      await answer(b);
      const [view] = (await b.explain('kis', 'replicas')).filter((v) => v.trigger.scaling.drainSeconds === 50);
      expect(view!.sharedState!.role).toBe('writer');
      expect(view!.explanation!.details).toMatchObject({ keepWarmSource: 'learned' });
      expect(view!.learnedUnder).toMatch(/^kis\/replicas\//);
      await answer(a);
      expect(await alike(2000, a, b)).toBeGreaterThan(3);
    } finally {
      so = before;
    }
  }, 60_000);
});

describe('a replica stopped by SIGTERM (a rollout)', () => {
  it('publishes what it decided since its last publish before it goes, not a state up to 5 s older', async () => {
    const c = await ScalerProcess.start(env);
    // A name of this run's: the store keeps records of earlier runs for their retention.
    const name = `replicas-stop-${Date.now()}`;
    const lone = ref({ ...so.scalerMetadata }, name, 'kis');
    const record = async () => {
      using raw = rawClient(requireService('STATE_STORE_URL'));
      const [key] = await raw.keys(`kis:v1:{kis/${name}/*}:record`);
      return JSON.parse((await raw.get(key!))!) as { writerId: string; atMs: number };
    };
    try {
      await c.client.getMetrics(lone);
      const first = await eventually(async () => (await record().catch(() => undefined))?.atMs, 5000, 50);
      // A second decision 2 s later (its reading 1 s old at most), the same answer: not yet published.
      await new Promise((r) => setTimeout(r, 2000));
      const decidedAfterMs = Date.now();
      await c.client.getMetrics(lone);
      expect((await record()).atMs).toBe(first);
      const exited = new Promise<number | null>((resolve) => c.child.once('exit', resolve));
      expect((await stopWithSigterm(c.child, exited)).code).toBe(0);
      // The record's time is the writer's, moved by its offset to the store's clock: the same host here.
      expect((await record()).atMs).toBeGreaterThanOrEqual(decidedAfterMs - 100);
    } finally {
      await c.kill();
    }
  }, 30_000);

  // Found by review: the leases were given up after the sources closed, and a broker that never
  // answers the close took the whole budget: the process exited holding them, and no replica could
  // write the trigger's state for a lease.
  it('gives its leases up though its broker never answers the close', async () => {
    await using amqp = TcpProxy.forUrl(requireService('RABBITMQ_URL'));
    await amqp.start();
    const c = await ScalerProcess.start({ ...env, SHUTDOWN_TIMEOUT_MS: '3000' });
    const held = ref(
      { 'rabbitmq.host': amqp.rewrite(requireService('RABBITMQ_URL')), 'rabbitmq.queueName': queue },
      'replicas-held',
      'kis',
    );
    const leases = async () => {
      using raw = rawClient(requireService('STATE_STORE_URL'));
      return (await raw.keys('kis:v1:{kis/replicas-held/*}:lease')).length;
    };
    try {
      await c.client.getMetrics(held);
      expect(await leases()).toBe(1);
      amqp.blackhole();
      const exited = new Promise<number | null>((resolve) => c.child.once('exit', resolve));
      const stopped = stopWithSigterm(c.child, exited);
      const sigtermMs = Date.now();
      // Given up once the calls have drained (none here), not once the sources' close gave up (3 s).
      await eventually(async () => ((await leases()) === 0 ? true : undefined), 3000, 20);
      expect(Date.now() - sigtermMs).toBeLessThan(2000);
      expect((await stopped).code).toBe(0);
    } finally {
      await c.kill();
    }
  }, 30_000);
});

describe('a restarted replica, on a source whose rates the scaler counts itself (Kafka)', () => {
  it("carries the sources' rate estimates on from the store at its first answer, not a first one-interval count", async () => {
    const kafka = await KafkaFixture.connect(requireService('KAFKA_BROKERS'));
    const store = { STATE_STORE_URL: requireService('STATE_STORE_URL') };
    let c: ScalerProcess | undefined;
    try {
      const topic = await kafka.topic([0]);
      const group = KafkaFixture.uniqueName('kis-restart');
      await kafka.commit(group, topic, [0]);
      const kso = ref(
        { 'kafka.bootstrapServers': requireService('KAFKA_BROKERS'), 'kafka.topic': topic, 'kafka.consumerGroup': group },
        'kafka-restart',
        'kis',
      );
      const rate = async (p: ScalerProcess) => {
        await p.client.getMetrics(kso);
        const [view] = await p.explain('kis', 'kafka-restart');
        return (view!.explanation as { signals?: { arrivalRatePerSecond?: number } } | null)?.signals?.arrivalRatePerSecond;
      };
      c = await ScalerProcess.start(store);
      // About 20 messages a second for 8 s: the log-end offsets are the arrival counter. Judged
      // against the rate sent, which a loaded machine makes lower than 20.
      const startedMs = Date.now();
      const until = startedMs + 8000;
      let learned: number | undefined;
      let sent = 0;
      while (Date.now() < until) {
        await kafka.produce(topic, [10]);
        sent += 10;
        learned = await rate(c);
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(learned).toBeGreaterThan((0.5 * sent) / ((Date.now() - startedMs) / 1000));
      await c.kill();
      c = await ScalerProcess.start(store);
      // Its own first reading gives no rate (a counter needs two); the published one is there at once.
      const first = await rate(c);
      expect(first).toBeGreaterThan(learned! / 2);
      expect(first).toBeLessThan(learned! * 2);
    } finally {
      await c?.kill();
      await kafka[Symbol.asyncDispose]();
    }
  }, 60_000);
});

describe('two scaler replicas on a Redis cluster (STATE_STORE_CLUSTER=true)', () => {
  it('answer alike while the trigger learns, and a restarted one answers with what was learned', async () => {
    await using cluster = await OwnRedisCluster.start();
    const clusterEnv = { STATE_STORE_URL: cluster.url, STATE_STORE_CLUSTER: 'true' };
    const c = await ScalerProcess.start(clusterEnv);
    let d = await ScalerProcess.start(clusterEnv);
    try {
      expect(await learnIdleGaps(c, d)).toBeGreaterThan(20);
      const learned = await details(c);
      expect(learned.keepWarmSource).toBe('learned');
      expect(await details(d)).toMatchObject({ keepWarmSource: 'learned', keepWarmSeconds: learned.keepWarmSeconds });
      await d.kill();
      d = await ScalerProcess.start(clusterEnv);
      await answer(d);
      expect(await details(d)).toMatchObject({ keepWarmSource: 'learned', keepWarmSeconds: learned.keepWarmSeconds });
      expect([c, d].flatMap((p) => p.lines()).filter((l) => l.level === 40)).toEqual([]);
    } finally {
      await Promise.all([c.kill(), d.kill()]);
    }
  }, 90_000);
});
