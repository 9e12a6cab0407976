// What bench:server and its load generator (bench/server/loadgen-go, grpc-go as KEDA is) say to
// each other: commands as JSON lines on the generator's stdin, one reply line each on its stdout.
// Open loop: pair k of a run (GetMetrics, then IsActive) is due at a fixed time whatever earlier
// answers did, and latency counts from that intended time (no coordinated omission).
import type { LatencySummary } from './stats.ts';
import type { TriggerSpec } from './triggers.ts';

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
