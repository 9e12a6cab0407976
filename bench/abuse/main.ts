// Abuse benchmark (`npm run bench:abuse`, issue 16): a real scaler process, sized as the Helm chart
// sizes it, against oversized and near-limit messages, 10,000 StreamIsActive streams from one
// client that never reads, 500 clients that vanish, and true-provoking metadata for 10,000
// distinct RabbitMQ queues. A separate client asks GetMetricSpec every ~100 ms throughout; the
// table gives its latency, the scaler's peak RSS against the chart's memory limit, the
// open-streams gauge before, during and after, and what each scenario was answered. See
// docs/reliability.md, "Abuse".
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { ScaledObjectRef } from '../../src/server/protocol.ts';
import { ScalerProcess } from '../../test/support/process.ts';
import { BenchBroker, rabbitmqUrl } from '../server/rabbit.ts';
import { summarize } from '../server/stats.ts';
import type { AbuseEvent, Plan } from './abuser.ts';
import { Watch, openStreams, releasedWithin } from './watch.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOLD_MS = 5000;
const RELEASE_TIMEOUT_MS = 30_000;

const { values: flags } = parseArgs({
  options: {
    streams: { type: 'string', default: '10000' },
    clients: { type: 'string', default: '500' },
    queues: { type: 'string', default: '10000' },
    only: { type: 'string' },
  },
});

interface Row {
  scenario: string;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  probeFailures: number;
  rssBeforeMb: number;
  peakRssMb: number;
  streams: [number, number, number | string];
  outcome: string;
}

/** The chart's memory limit and V8 heap cap: the scaler runs under the same heap cap. */
function chartSizing(): { limitMb: number; heapMb: number } {
  const values = parseYaml(readFileSync(`${ROOT}deploy/helm/keda-inference-scaler/values.yaml`, 'utf8')) as {
    resources: { limits: { memory: string } };
    nodeHeapMb: number;
  };
  const match = /^(\d+)Mi$/.exec(values.resources.limits.memory);
  if (match === null) throw new Error(`chart memory limit ${values.resources.limits.memory} is not in Mi`);
  return { limitMb: Number(match[1]), heapMb: values.nodeHeapMb };
}

/** Abuser processes started, for an interrupted run to end. */
const abusers = new Set<ChildProcess>();

class Abuser {
  readonly child: ChildProcess;
  private readonly events: AbuseEvent[] = [];
  private readonly waiters: (() => void)[] = [];

  constructor(address: string, plan: Plan) {
    this.child = spawn(process.execPath, [`${ROOT}bench/abuse/abuser.ts`, address, JSON.stringify(plan)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    abusers.add(this.child);
    this.child.once('exit', () => abusers.delete(this.child));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.events.push(JSON.parse(line) as AbuseEvent);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.child.once('exit', () => {
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  async next<K extends AbuseEvent['event']>(event: K): Promise<Extract<AbuseEvent, { event: K }>> {
    for (;;) {
      const found = this.events.find((e) => e.event === event);
      if (found !== undefined) return found as Extract<AbuseEvent, { event: K }>;
      if (this.child.exitCode !== null) throw new Error(`abuser exited (${this.child.exitCode}) before '${event}'`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Gone at once, connections and all, as a crashed client goes. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }
}

function codes(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([code, n]) => `${n} ${code}`)
    .join(', ');
}

async function scenario(
  scaler: ScalerProcess,
  watch: Watch,
  name: string,
  run: (address: string) => Promise<Outcome>,
): Promise<Row> {
  const before = await openStreams(scaler.metricsPort);
  const rssBeforeMb = watch.rssMb();
  watch.start();
  let during = Number.NaN;
  let outcome: string;
  try {
    ({ outcome, during } = await run(`127.0.0.1:${scaler.grpcPort}`));
  } catch (err) {
    outcome = `failed: ${(err as Error).message}`;
  }
  const releasedMs =
    scaler.child.exitCode === null ? await releasedWithin(scaler.metricsPort, before, RELEASE_TIMEOUT_MS) : undefined;
  const watched = await watch.stop();
  const after = scaler.child.exitCode === null ? await openStreams(scaler.metricsPort) : Number.NaN;
  const latency = summarize(watched.latenciesMs);
  if (scaler.child.exitCode !== null || scaler.child.signalCode !== null) outcome += '; SCALER DIED';
  return {
    scenario: name,
    p50Ms: latency.p50Ms,
    p99Ms: latency.p99Ms,
    maxMs: latency.maxMs,
    probeFailures: watched.probeFailures,
    rssBeforeMb,
    peakRssMb: watched.peakRssMb,
    streams: [
      before,
      during,
      releasedMs === undefined ? `${after} (not released in 30 s)` : `${after} (${(releasedMs / 1000).toFixed(1)} s)`,
    ],
    outcome,
  };
}

/** What a scenario's clients were answered, and the gauge while they held their streams. */
interface Outcome {
  readonly outcome: string;
  readonly during: number;
}

/** Holds the abuse for HOLD_MS (the probe goes on), then reads the gauge. */
async function hold(scaler: ScalerProcess): Promise<number> {
  await new Promise((r) => setTimeout(r, HOLD_MS));
  return openStreams(scaler.metricsPort);
}

function table(rows: readonly Row[], limitMb: number): string {
  const head = `| scenario | GetMetricSpec p50 / p99 / max (ms) | probe failures | RSS before -> peak (MB), limit ${limitMb} MiB | open streams before / during / after (release) | outcome |`;
  const lines = rows.map(
    (r) =>
      `| ${r.scenario} | ${r.p50Ms.toFixed(1)} / ${r.p99Ms.toFixed(1)} / ${r.maxMs.toFixed(1)} | ${r.probeFailures} | ${r.rssBeforeMb.toFixed(0)} -> ${r.peakRssMb.toFixed(0)} | ${r.streams[0]} / ${r.streams[1]} / ${r.streams[2]} | ${r.outcome} |`,
  );
  return [head, '|---|---|---|---|---|---|', ...lines].join('\n');
}

async function main(): Promise<void> {
  const { limitMb, heapMb } = chartSizing();
  const url = rabbitmqUrl();
  const prefix = `kis-abuse-${process.pid}`;
  const broker = await BenchBroker.connect(url, (reason) => {
    throw new Error(`RabbitMQ connection lost: ${reason}`);
  });
  await broker.declare(`${prefix}-busy`, 1);
  const rabbit = (queue: string, name = 'abuse'): ScaledObjectRef => ({
    name,
    namespace: 'abuse',
    scalerMetadata: { 'rabbitmq.host': url, 'rabbitmq.queueName': queue },
  });
  const busy = rabbit(`${prefix}-busy`);
  const scaler = await ScalerProcess.start({
    NODE_OPTIONS: `--max-old-space-size=${heapMb} --max-semi-space-size=4`,
    TRIGGER_METRICS: 'true',
    // The chart's default: state in memory (the test bed's env may name a store).
    STATE_STORE_URL: undefined,
  });
  // Interrupted (Ctrl-C, a timeout): the scaler and any abuser go too, rather than live on orphaned.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      scaler.child.kill('SIGKILL');
      for (const child of abusers) child.kill('SIGKILL');
      process.exit(130);
    });
  }
  const watch = new Watch(`127.0.0.1:${scaler.grpcPort}`, scaler.child.pid!, rabbit(`${prefix}-probe`, 'probe'));
  const wanted = (name: string) => flags.only === undefined || flags.only.split(',').includes(name);
  const rows: Row[] = [];
  try {
    // Not measured: the probe's first calls connect and meet the scaler's cold code, and set the
    // baseline's tail (docs/reliability.md, "Abuse").
    for (let i = 0; i < 10; i++) await watch.probe();
    // The probe with nothing else going on: what this machine's own noise looks like.
    rows.push(
      await scenario(scaler, watch, 'baseline: no abuse', async () => ({ outcome: 'probe only', during: await hold(scaler) })),
    );
    if (wanted('oversized')) {
      rows.push(
        await scenario(scaler, watch, 'oversized: 50 x 4 MiB GetMetricSpec', async (address) => {
          const abuser = new Abuser(address, {
            kind: 'largeMessages',
            count: 50,
            bytes: 4 * 1024 * 1024,
            concurrency: 10,
            ref: busy,
          });
          const { codes: answered } = await abuser.next('done');
          const during = await hold(scaler);
          await abuser.kill();
          return { outcome: codes(answered), during };
        }),
      );
    }
    if (wanted('nearLimit')) {
      rows.push(
        await scenario(scaler, watch, 'near the limit: 1,000 x 200 KB invalid, distinct names', async (address) => {
          const abuser = new Abuser(address, { kind: 'largeMessages', count: 1000, bytes: 200_000, concurrency: 10, ref: busy });
          const { codes: answered } = await abuser.next('done');
          const during = await hold(scaler);
          await abuser.kill();
          return { outcome: codes(answered), during };
        }),
      );
    }
    if (wanted('unreadStreams')) {
      const count = Number(flags.streams);
      rows.push(
        await scenario(
          scaler,
          watch,
          `${count.toLocaleString('en')} unread StreamIsActive, one client, then killed`,
          async (address) => {
            const abuser = new Abuser(address, { kind: 'unreadStreams', count, ref: busy });
            const ready = await abuser.next('ready');
            const during = await hold(scaler);
            await abuser.kill();
            return { outcome: `${ready.opened} opened, ${ready.failed} refused`, during };
          },
        ),
      );
    }
    if (wanted('vanishingClients')) {
      const clients = Number(flags.clients);
      rows.push(
        await scenario(scaler, watch, `${clients} clients (2 streams each) killed`, async (address) => {
          const abuser = new Abuser(address, { kind: 'vanishingClients', clients, ref: busy });
          const ready = await abuser.next('ready');
          const during = await hold(scaler);
          await abuser.kill();
          return { outcome: `${ready.opened} streams opened, ${ready.failed} refused`, during };
        }),
      );
    }
    if (wanted('manyQueues')) {
      const count = Number(flags.queues);
      const queuePrefix = `${prefix}-q`;
      const declaredMs = performance.now();
      await declareQueues(broker, queuePrefix, count);
      process.stderr.write(
        `declared ${count} queues with one message each in ${((performance.now() - declaredMs) / 1000).toFixed(1)} s\n`,
      );
      rows.push(
        await scenario(
          scaler,
          watch,
          `true-provoking metadata, ${count.toLocaleString('en')} distinct queues`,
          async (address) => {
            const abuser = new Abuser(address, {
              kind: 'manyQueues',
              count,
              queuePrefix,
              ref: rabbit('unused'),
              concurrency: 1000,
            });
            const done = await abuser.next('done');
            const during = await hold(scaler);
            await abuser.kill();
            const answered = codes(done.codes);
            return {
              outcome: `IsActive ${done.trueCount}/${count} true in ${((done.tookMs ?? 0) / 1000).toFixed(1)} s (${answered})`,
              during,
            };
          },
        ),
      );
    }
  } finally {
    watch.close();
    await scaler.kill();
    await broker.close();
  }
  process.stdout.write(
    `scaler: node ${process.version}, --max-old-space-size=${heapMb} (chart nodeHeapMb), chart memory limit ${limitMb} MiB\n\n`,
  );
  process.stdout.write(`${table(rows, limitMb)}\n`);
  const warnings = scaler.lines().filter((l) => l.level === 'warn' || l.level === 'error' || l.level === 'fatal');
  const byMessage = new Map<string, number>();
  for (const w of warnings) byMessage.set(String(w.msg), (byMessage.get(String(w.msg)) ?? 0) + 1);
  for (const [msg, n] of byMessage) process.stdout.write(`\nscaler logged ${n} x warn+ "${msg}"`);
  process.stdout.write(
    `\nload average (1, 5, 15 min) at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(', ')} on ${availableParallelism()} CPUs\n`,
  );
}

/** `count` queues with one ready message each; BenchBroker deletes them on close (and they expire if this crashes). */
async function declareQueues(broker: BenchBroker, prefix: string, count: number): Promise<void> {
  const BATCH = 500;
  for (let start = 0; start < count; start += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - start) }, (_, i) => broker.declare(`${prefix}-${start + i}`, 1));
    await Promise.all(batch);
  }
}

await main();
