// The load generator: a separate Node process (forked by main.ts) that speaks KEDA's side of the
// protocol with grpc-js. Open loop: pair k (GetMetrics, then IsActive, as KEDA's
// GetMetricsAndActivity does) is due at a fixed time whatever earlier answers did, and latency
// counts from that intended time, so a stalled server cannot hide its stall (no coordinated
// omission). Commands arrive over IPC; each gets one reply.
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { ExternalScalerClient, type ScaledObjectRef } from '../../src/server/protocol.ts';
import { OpenLoopSchedule, Samples, summarize, type LatencySummary } from './stats.ts';
import { type TriggerSpec, triggerRef, triggerRefs } from './triggers.ts';

/** KEDA's HPA path gives GetMetrics and IsActive a 3 s deadline. */
const DEADLINE_MS = 3000;

type Callback<Res> = (err: grpc.ServiceError | null, res: Res) => void;
type UnaryFn = (request: unknown, options: grpc.CallOptions, callback: Callback<unknown>) => void;
interface ScalerClient extends grpc.Client {
  GetMetrics: UnaryFn;
  IsActive: UnaryFn;
  GetMetricSpec: UnaryFn;
  StreamIsActive: (request: unknown, options: grpc.CallOptions) => grpc.ClientReadableStream<{ result: boolean }>;
}

export type Command =
  | { cmd: 'connect'; target: string; connections: number }
  | { cmd: 'register'; spec: TriggerSpec; concurrency: number }
  | { cmd: 'streams'; spec: TriggerSpec; count: number }
  | { cmd: 'closeStreams' }
  | { cmd: 'run'; spec: TriggerSpec; rate: number; durationMs: number }
  | { cmd: 'exit' };

export interface RunResult {
  readonly offeredRps: number;
  readonly achievedRps: number;
  readonly ok: number;
  readonly errors: number;
  readonly errorCodes: Record<string, number>;
  readonly latency: LatencySummary;
  readonly sendLag: LatencySummary;
  readonly streamErrors: number;
  readonly streamMessages: number;
  readonly loadgenCpuCores: number;
  /** The load generator's own stalls: event-loop delay p99 and its longest GC pause. */
  readonly loadgenLoopDelayP99Ms: number;
  readonly loadgenGcMaxMs: number;
}

let clients: ScalerClient[] = [];
let streams: grpc.ClientReadableStream<{ result: boolean }>[] = [];
let streamErrors = 0;
let streamMessages = 0;

function call(
  client: ScalerClient,
  method: 'GetMetrics' | 'IsActive' | 'GetMetricSpec',
  request: unknown,
): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    client[method](request, { deadline: Date.now() + DEADLINE_MS }, (err) => resolve(err));
  });
}

function connect(target: string, connections: number): void {
  for (const c of clients) c.close();
  // A local subchannel pool per client gives each its own TCP connection.
  clients = Array.from(
    { length: connections },
    () =>
      new ExternalScalerClient(target, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
      }) as unknown as ScalerClient,
  );
}

/** GetMetricSpec then GetMetrics for every trigger, closed loop, `concurrency` in flight. */
async function register(spec: TriggerSpec, concurrency: number) {
  const refs = triggerRefs(spec);
  let next = 0;
  let errors = 0;
  const started = performance.now();
  const worker = async (w: number) => {
    const client = clients[w % clients.length]!;
    while (next < refs.length) {
      const ref = refs[next++]!;
      if ((await call(client, 'GetMetricSpec', ref)) !== null) errors++;
      if ((await call(client, 'GetMetrics', { scaledObjectRef: ref, metricName: 'inference-desired-replicas' })) !== null)
        errors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return { triggers: refs.length, errors, ms: performance.now() - started };
}

/** Opens `count` StreamIsActive streams (stream k watches trigger k mod T); resolves when each sent its first answer. */
async function openStreams(spec: TriggerSpec, count: number) {
  const started = performance.now();
  const firsts: Promise<boolean>[] = [];
  for (let k = 0; k < count; k++) {
    const ref: ScaledObjectRef = triggerRef(spec, k % spec.triggers);
    const stream = clients[k % clients.length]!.StreamIsActive(ref, {});
    streams.push(stream);
    firsts.push(
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), 30_000);
        stream.once('data', () => {
          clearTimeout(timer);
          resolve(true);
        });
        stream.once('error', () => {
          clearTimeout(timer);
          resolve(false);
        });
      }),
    );
    stream.on('data', () => streamMessages++);
    stream.on('error', (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) streamErrors++;
    });
  }
  const answered = (await Promise.all(firsts)).filter(Boolean).length;
  return { opened: count, answered, ms: performance.now() - started };
}

function closeStreams(): void {
  for (const s of streams) s.cancel();
  streams = [];
}

async function run(spec: TriggerSpec, rate: number, durationMs: number): Promise<RunResult> {
  const pairRate = rate / 2;
  const latencies = new Samples();
  const lags = new Samples();
  const errorCodes: Record<string, number> = {};
  let ok = 0;
  let errors = 0;
  let outstanding = 0;
  let lastDoneMs = 0;
  const streamErrorsBefore = streamErrors;
  const streamMessagesBefore = streamMessages;
  const cpuBefore = process.cpuUsage();
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  let gcMaxMs = 0;
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcMaxMs = Math.max(gcMaxMs, entry.duration);
      if (process.env.BENCH_GC_DEBUG && entry.duration > 5)
        process.stderr.write(`gc ${JSON.stringify((entry as { detail?: unknown }).detail)} ${entry.duration.toFixed(1)} ms\n`);
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const schedule = new OpenLoopSchedule(performance.now() + 5, pairRate, durationMs);
  const fail = (err: grpc.ServiceError) => {
    errors++;
    const name = grpc.status[err.code] ?? String(err.code);
    errorCodes[name] = (errorCodes[name] ?? 0) + 1;
  };
  const sendPair = async (k: number, intendedMs: number) => {
    outstanding++;
    const ref = triggerRef(spec, k % spec.triggers);
    const client = clients[k % clients.length]!;
    lags.push(performance.now() - intendedMs);
    const err1 = await call(client, 'GetMetrics', { scaledObjectRef: ref, metricName: 'inference-desired-replicas' });
    const done1 = performance.now();
    latencies.push(done1 - intendedMs);
    if (err1 !== null) fail(err1);
    else {
      ok++;
      const err2 = await call(client, 'IsActive', ref);
      const done2 = performance.now();
      // IsActive goes out the moment GetMetrics answers: that is its intended time.
      latencies.push(done2 - done1);
      if (err2 !== null) fail(err2);
      else ok++;
    }
    lastDoneMs = performance.now();
    outstanding--;
  };
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = schedule.dueBy(performance.now());
      while (sent < due) {
        void sendPair(sent, schedule.intendedMs(sent));
        sent++;
      }
      if (sent < schedule.total) setTimeout(tick, 1);
      else resolve();
    };
    setTimeout(tick, 5);
  });
  while (outstanding > 0) await new Promise((r) => setTimeout(r, 5));
  const cpu = process.cpuUsage(cpuBefore);
  loopDelay.disable();
  gcObserver.disconnect();
  const elapsedMs = lastDoneMs - schedule.startMs;
  return {
    offeredRps: rate,
    achievedRps: ((ok + errors) / elapsedMs) * 1000,
    ok,
    errors,
    errorCodes,
    latency: summarize(latencies.values()),
    sendLag: summarize(lags.values()),
    streamErrors: streamErrors - streamErrorsBefore,
    streamMessages: streamMessages - streamMessagesBefore,
    loadgenCpuCores: (cpu.user + cpu.system) / 1000 / elapsedMs,
    loadgenLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    loadgenGcMaxMs: gcMaxMs,
  };
}

async function handle(command: Command): Promise<unknown> {
  switch (command.cmd) {
    case 'connect':
      connect(command.target, command.connections);
      return { ok: true };
    case 'register':
      return register(command.spec, command.concurrency);
    case 'streams':
      return openStreams(command.spec, command.count);
    case 'closeStreams':
      closeStreams();
      return { ok: true };
    case 'run':
      return run(command.spec, command.rate, command.durationMs);
    case 'exit':
      closeStreams();
      for (const c of clients) c.close();
      setTimeout(() => process.exit(0), 50);
      return { ok: true };
  }
}

process.on('message', (command: Command) => {
  handle(command).then(
    (reply) => process.send?.({ ok: true, reply }),
    (err: unknown) => process.send?.({ ok: false, error: String(err) }),
  );
});
