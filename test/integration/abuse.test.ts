// Issue 16's abuse, scaled down to run in under a minute (npm run bench:abuse runs it full size):
// a real scaler process with the chart's heap cap, the abusive clients in a child process
// (bench/abuse/abuser.ts, killed to make their connections vanish), a separate client asking
// GetMetricSpec every ~100 ms throughout, and the real RabbitMQ for true-provoking metadata.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AbuseEvent, Plan } from '../../bench/abuse/abuser.ts';
import { Watch, openStreams, releasedWithin } from '../../bench/abuse/watch.ts';
import { BenchBroker } from '../../bench/server/rabbit.ts';
import { summarize } from '../../bench/server/stats.ts';
import type { ScaledObjectRef } from '../../src/server/protocol.ts';
import { ScalerProcess } from '../support/process.ts';
import { requireService } from '../support/scaler.ts';

const abuserScript = fileURLToPath(new URL('../../bench/abuse/abuser.ts', import.meta.url));
/** The chart's sizing: nodeHeapMb 160 under a 256 Mi limit. */
const CHART_HEAP = '--max-old-space-size=160 --max-semi-space-size=4';
const LIMIT_MB = 256 * 1.048576;
/** What "keeps answering" means here: the median probe. The tail is left to bench:abuse (a shared CI box stalls whole processes). */
const MEDIAN_MS = 50;
/** Enough probes for a median: a scenario that ends sooner keeps the probe going until they answer. */
const MIN_PROBES = 10;

/** Runs the abuser with `plan` and resolves with its first event of `kind`; kill() makes its connections vanish. */
function abuse(address: string, plan: Plan) {
  const child: ChildProcess = spawn(process.execPath, [abuserScript, address, JSON.stringify(plan)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const events: AbuseEvent[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => events.push(JSON.parse(line) as AbuseEvent));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    async next<K extends AbuseEvent['event']>(kind: K, timeoutMs = 30_000): Promise<Extract<AbuseEvent, { event: K }>> {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const found = events.find((e) => e.event === kind);
        if (found !== undefined) return found as Extract<AbuseEvent, { event: K }>;
        if (child.exitCode !== null || Date.now() > until) throw new Error(`abuser: no '${kind}' event`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async kill(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

let broker: BenchBroker;
let scaler: ScalerProcess;
let watch: Watch;
let rabbit: (queue: string, name?: string) => ScaledObjectRef;
const prefix = `kis-abuse-it-${process.pid}`;

beforeAll(async () => {
  const url = requireService('RABBITMQ_URL');
  broker = await BenchBroker.connect(url, () => undefined);
  await broker.declare(`${prefix}-busy`, 1);
  rabbit = (queue, name = 'abuse') => ({
    name,
    namespace: 'abuse',
    scalerMetadata: { 'rabbitmq.host': url, 'rabbitmq.queueName': queue },
  });
  scaler = await ScalerProcess.start({ NODE_OPTIONS: CHART_HEAP, STATE_STORE_URL: undefined });
  watch = new Watch(`127.0.0.1:${scaler.grpcPort}`, scaler.child.pid!, rabbit(`${prefix}-probe`, 'probe'));
});

afterAll(async () => {
  watch?.close();
  await scaler?.kill();
  await broker?.close();
});

/** Runs `during` with the probe going, then checks the probe's answers and the scaler's memory. */
async function probed(during: () => Promise<void>): Promise<void> {
  watch.start();
  try {
    await during();
  } finally {
    const watched = await watch.stop(MIN_PROBES);
    const latency = summarize(watched.latenciesMs);
    expect(scaler.child.exitCode, scaler.logs.slice(-2000)).toBeNull();
    expect(watched.probeFailures).toBe(0);
    expect(latency.count).toBeGreaterThanOrEqual(MIN_PROBES);
    expect(latency.p50Ms).toBeLessThan(MEDIAN_MS);
    expect(watched.peakRssMb).toBeLessThan(LIMIT_MB);
  }
}

describe('abuse', () => {
  it('refuses oversized requests with RESOURCE_EXHAUSTED and goes on answering', async () => {
    await probed(async () => {
      const client = abuse(`127.0.0.1:${scaler.grpcPort}`, {
        kind: 'largeMessages',
        count: 10,
        bytes: 1024 * 1024,
        concurrency: 5,
        ref: rabbit(`${prefix}-busy`),
      });
      expect((await client.next('done')).codes).toEqual({ RESOURCE_EXHAUSTED: 10 });
      await client.kill();
    });
  });

  it('holds 2,000 streams that are never read, and releases them all when their client vanishes', async () => {
    const baseline = await openStreams(scaler.metricsPort);
    await probed(async () => {
      const client = abuse(`127.0.0.1:${scaler.grpcPort}`, { kind: 'unreadStreams', count: 2000, ref: rabbit(`${prefix}-busy`) });
      expect(await client.next('ready')).toMatchObject({ opened: 2000, failed: 0 });
      expect(await openStreams(scaler.metricsPort)).toBe(baseline + 2000);
      await new Promise((r) => setTimeout(r, 1500));
      await client.kill();
      expect(await releasedWithin(scaler.metricsPort, baseline, 10_000)).toBeDefined();
    });
  });

  it('releases the streams of 100 clients that vanish at once', async () => {
    const baseline = await openStreams(scaler.metricsPort);
    await probed(async () => {
      const client = abuse(`127.0.0.1:${scaler.grpcPort}`, {
        kind: 'vanishingClients',
        clients: 100,
        ref: rabbit(`${prefix}-busy`),
      });
      expect(await client.next('ready')).toMatchObject({ opened: 200, failed: 0 });
      expect(await openStreams(scaler.metricsPort)).toBe(baseline + 200);
      await client.kill();
      expect(await releasedWithin(scaler.metricsPort, baseline, 10_000)).toBeDefined();
    });
  });

  it('answers true for 300 distinct queues with a message each, all asked at once', async () => {
    const count = 300;
    await Promise.all(Array.from({ length: count }, (_, i) => broker.declare(`${prefix}-q-${i}`, 1)));
    await probed(async () => {
      const client = abuse(`127.0.0.1:${scaler.grpcPort}`, {
        kind: 'manyQueues',
        count,
        queuePrefix: `${prefix}-q`,
        ref: rabbit('unused'),
        concurrency: count,
      });
      const done = await client.next('done');
      expect(done.codes).toEqual({ OK: count });
      expect(done.trueCount).toBe(count);
      await client.kill();
    });
  });
});

describe('abuse near the message limit', () => {
  // A heap cap of 64 MB so that what the unbounded parse memo kept (200 KB per distinct name; at
  // the chart's cap the scaler died after 703) shows within seconds: with the memo bounded by entries
  // only, the scaler stalled in garbage collection here and this test ran out of time.
  it('answers 400 invalid 200 KB refs under distinct names with INVALID_ARGUMENT, and lives', async () => {
    await using small = await ScalerProcess.start({
      NODE_OPTIONS: '--max-old-space-size=64 --max-semi-space-size=4',
      STATE_STORE_URL: undefined,
    });
    const client = abuse(`127.0.0.1:${small.grpcPort}`, {
      kind: 'largeMessages',
      count: 400,
      bytes: 200_000,
      concurrency: 4,
      ref: rabbit(`${prefix}-busy`),
    });
    const done = await client.next('done', 50_000);
    await client.kill();
    expect(small.child.exitCode, small.logs.slice(-1000)).toBeNull();
    expect(small.child.signalCode).toBeNull();
    expect(done.codes).toEqual({ INVALID_ARGUMENT: 400 });
  });

  // Found by review: a name no ScaledObject has was kept whole by the refusals of metadata that does
  // not parse (and in its warning); 300 calls with 200 KB names took the chart's 160 MB heap to its end.
  it('answers 400 calls with 200 KB names and refused metadata with INVALID_ARGUMENT, and lives', async () => {
    await using small = await ScalerProcess.start({
      NODE_OPTIONS: '--max-old-space-size=64 --max-semi-space-size=4',
      STATE_STORE_URL: undefined,
    });
    const busy = rabbit(`${prefix}-busy`);
    const client = abuse(`127.0.0.1:${small.grpcPort}`, {
      kind: 'largeMessages',
      count: 400,
      bytes: 200_000,
      concurrency: 4,
      ref: { ...busy, scalerMetadata: { ...busy.scalerMetadata, maxReplicas: 'zero' } },
      inName: true,
    });
    const done = await client.next('done', 50_000);
    await client.kill();
    expect(small.child.exitCode, small.logs.slice(-1000)).toBeNull();
    expect(small.child.signalCode).toBeNull();
    expect(done.codes).toEqual({ INVALID_ARGUMENT: 400 });
    expect(small.logs.length).toBeLessThan(400 * 2_000);
  });
});
