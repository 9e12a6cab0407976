// The scaler under test as its own process (bench/faults/scalerChild.ts), and what it holds:
// file descriptors and sockets from /proc, timers, handles, memory and open streams from its
// /metrics (prom-client's default metrics: process.getActiveResourcesInfo() by type).
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { firstJsonLine, scalerChildEnv, stopChild } from '../server/children.ts';
import { shippedNodeArgs } from '../../test/support/process.ts';
import { labelValues, sumMetric } from '../server/procStats.ts';
import { track } from './bed.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PREFIX = 'keda_inference_scaler_';

export interface Resources {
  readonly fds: number;
  readonly sockets: number;
  /** Active timers (Timeout resources). */
  readonly timers: number;
  /** Every active resource (sockets, timers, servers, ...). */
  readonly resources: number;
  readonly rssMb: number;
  readonly heapUsedMb: number;
  readonly openStreams: number;
}

export class ScalerChild {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly metricsPort: number;
  /** The last log lines (JSON), for a post-mortem. */
  readonly tail: string[];

  private constructor(child: ChildProcess, grpcPort: number, metricsPort: number, tail: string[]) {
    this.child = child;
    this.grpcPort = grpcPort;
    this.metricsPort = metricsPort;
    this.tail = tail;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get address(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  static async start(env: Record<string, string>): Promise<ScalerChild> {
    const child = track(
      spawn(process.execPath, [...shippedNodeArgs(), 'bench/faults/scalerChild.ts'], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...scalerChildEnv(), ...env },
      }),
    );
    const tail: string[] = [];
    const keep = (line: string) => {
      tail.push(line);
      if (tail.length > 200) tail.shift();
    };
    createInterface({ input: child.stderr! }).on('line', keep);
    createInterface({ input: child.stdout! }).on('line', keep);
    const ready = await firstJsonLine(child, 'grpcPort', 'scaler').catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: ${tail.join('\n')}`);
    });
    return new ScalerChild(child, Number(ready.grpcPort), Number(ready.metricsPort), tail);
  }

  async scrape(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
  }

  /** One sample of what the process holds. */
  async resources(): Promise<Resources> {
    const dir = `/proc/${this.pid}/fd`;
    let fds = 0;
    let sockets = 0;
    for (const fd of readdirSync(dir)) {
      fds++;
      try {
        if (readlinkSync(`${dir}/${fd}`).startsWith('socket:')) sockets++;
      } catch {
        // closed between the listing and the look
      }
    }
    const text = await this.scrape();
    const byType = labelValues(text, `${PREFIX}nodejs_active_resources`, 'type');
    return {
      fds,
      sockets,
      timers: byType.get('Timeout') ?? 0,
      resources: sumMetric(text, `${PREFIX}nodejs_active_resources_total`),
      rssMb: sumMetric(text, `${PREFIX}process_resident_memory_bytes`) / 2 ** 20,
      heapUsedMb: sumMetric(text, `${PREFIX}nodejs_heap_size_used_bytes`) / 2 ** 20,
      openStreams: labelValues(text, `${PREFIX}grpc_open_streams`, 'method').get('StreamIsActive') ?? 0,
    };
  }

  /**
   * The process's holdings at a quiet moment: the median of `samples` samples (a source query or a
   * scrape in flight holds a socket and a timer for a moment).
   */
  async settledResources(samples = 5, everyMs = 300): Promise<Resources> {
    const all: Resources[] = [];
    for (let i = 0; i < samples; i++) {
      all.push(await this.resources());
      await new Promise((r) => setTimeout(r, everyMs));
    }
    const med = (pick: (r: Resources) => number) => {
      const sorted = all.map(pick).sort((a, b) => a - b);
      return sorted[Math.floor(sorted.length / 2)]!;
    };
    return {
      fds: med((r) => r.fds),
      sockets: med((r) => r.sockets),
      timers: med((r) => r.timers),
      resources: med((r) => r.resources),
      rssMb: med((r) => r.rssMb),
      heapUsedMb: med((r) => r.heapUsedMb),
      openStreams: med((r) => r.openStreams),
    };
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}
