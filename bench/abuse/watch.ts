// What `npm run bench:abuse` measures while a scenario runs: a GetMetricSpec from a client of its
// own every ~100 ms (latency, and whether it failed), the scaler's resident memory from /proc, and
// the open-streams gauge from /metrics.
import * as grpc from '@grpc/grpc-js';
import { ExternalScalerClient, type ScaledObjectRef } from '../../src/server/protocol.ts';
import { sampleProcess, sumMetric } from '../server/procStats.ts';

const OPEN_STREAMS = 'keda_inference_scaler_grpc_open_streams';
const PROBE_INTERVAL_MS = 100;
/** A probe that takes longer than this is recorded at this latency and counted as failed. */
const PROBE_DEADLINE_MS = 2000;

export interface Watched {
  readonly latenciesMs: number[];
  readonly probeFailures: number;
  readonly peakRssMb: number;
}

type UnaryCall = (r: unknown, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void;

/** GetMetricSpec every PROBE_INTERVAL_MS on a connection of its own, and RSS at the same pace, until stopped. */
export class Watch {
  private readonly client: grpc.Client & { GetMetricSpec: UnaryCall };
  private readonly ref: ScaledObjectRef;
  private readonly pid: number;
  private latenciesMs: number[] = [];
  private probeFailures = 0;
  private peakRssMb = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly pending = new Set<Promise<void>>();

  constructor(address: string, pid: number, ref: ScaledObjectRef) {
    this.client = new ExternalScalerClient(address, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
    }) as unknown as Watch['client'];
    this.pid = pid;
    this.ref = ref;
  }

  /** One GetMetricSpec; resolves with its latency (ms) and whether it answered OK. */
  probe(): Promise<{ ms: number; ok: boolean }> {
    const startedMs = performance.now();
    return new Promise((resolve) => {
      this.client.GetMetricSpec(this.ref, { deadline: Date.now() + PROBE_DEADLINE_MS }, (err) =>
        resolve({ ms: performance.now() - startedMs, ok: err === null }),
      );
    });
  }

  start(): void {
    this.latenciesMs = [];
    this.probeFailures = 0;
    this.peakRssMb = this.rssMb();
    const tick = () => {
      this.peakRssMb = Math.max(this.peakRssMb, this.rssMb());
      // Open loop: the next probe is sent on time even while this one waits.
      const answered = this.probe().then(({ ms, ok }) => {
        this.latenciesMs.push(ok ? ms : Math.max(ms, PROBE_DEADLINE_MS));
        if (!ok) this.probeFailures++;
      });
      this.pending.add(answered);
      void answered.finally(() => this.pending.delete(answered));
    };
    tick();
    this.timer = setInterval(tick, PROBE_INTERVAL_MS);
  }

  /**
   * Stops probing once at least `minProbes` have answered (a scenario that ends in a few hundred
   * ms would otherwise leave too few to judge), and waits for the probes in flight, whose latency
   * is the one that matters most.
   */
  async stop(minProbes = 0): Promise<Watched> {
    const until = performance.now() + minProbes * PROBE_INTERVAL_MS + PROBE_DEADLINE_MS;
    while (this.latenciesMs.length < minProbes && performance.now() < until) {
      await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
    }
    clearInterval(this.timer);
    await Promise.all(this.pending);
    return { latenciesMs: this.latenciesMs, probeFailures: this.probeFailures, peakRssMb: this.peakRssMb };
  }

  rssMb(): number {
    try {
      return sampleProcess(this.pid).rssMb;
    } catch {
      return 0; // the process has exited
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.client.close();
  }
}

/** The open-streams gauge (all methods), from a fresh scrape. */
export async function openStreams(metricsPort: number): Promise<number> {
  // Scanned a chunk at a time as it arrives: split whole, the 10 MB text of 10,000 triggers held
  // this process (and the probe it times) for 50-80 ms.
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  const decoder = new TextDecoder();
  let total = 0;
  let rest = '';
  for await (const bytes of response.body!) {
    const text = rest + decoder.decode(bytes as Uint8Array, { stream: true });
    const cut = text.lastIndexOf('\n') + 1;
    total += sumMetric(text.slice(0, cut), OPEN_STREAMS);
    rest = text.slice(cut);
  }
  return total + sumMetric(rest + decoder.decode(), OPEN_STREAMS);
}

/** Polls the gauge until it is back at `baseline`; the time that took, or undefined after `timeoutMs`. */
export async function releasedWithin(metricsPort: number, baseline: number, timeoutMs: number): Promise<number | undefined> {
  const startedMs = performance.now();
  while (performance.now() - startedMs < timeoutMs) {
    if ((await openStreams(metricsPort)) === baseline) return performance.now() - startedMs;
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}
