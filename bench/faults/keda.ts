// A KEDA-like client: every trigger is asked GetMetrics then IsActive once per poll interval (as
// KEDA's GetMetricsAndActivity, with its 3 s deadline), and StreamIsActive streams stay open as
// for external-push triggers. Every answer is judged against the known truth as it arrives.
import * as grpc from '@grpc/grpc-js';
import { ExternalScalerClient, type ScaledObjectRef } from '../../src/server/protocol.ts';
import type { BedKind } from './bed.ts';

/** KEDA's HPA path gives GetMetrics and IsActive 3 s. */
export const KEDA_DEADLINE_MS = 3000;

export interface LoadTrigger {
  readonly kind: BedKind;
  readonly ref: ScaledObjectRef;
  /** The true answer: D (with active true). */
  readonly expectedReplicas: number;
}

/**
 * How an answer compares with the truth: `correct`; `falseZero` (0 desired replicas, inactive, a
 * streamed false: all while the queue has work); `wrong` (any other value); or an error, named by
 * its gRPC status (`DEADLINE_EXCEEDED@3s` when it is KEDA's own 3 s deadline that ran out).
 */
export type Outcome = 'correct' | 'falseZero' | 'wrong' | string;

export interface CallRecord {
  readonly kind: BedKind;
  readonly method: 'GetMetrics' | 'IsActive';
  readonly sentMs: number;
  readonly doneMs: number;
  readonly outcome: Outcome;
  /** The value answered when it was not the truth. */
  readonly value?: number | boolean;
}

export interface StreamRecord {
  readonly kind: BedKind;
  readonly atMs: number;
  readonly outcome: Outcome;
}

/** KEDA's wait before re-opening a stream, and the cap of its backoff after failures. */
const STREAM_RETRY_MS = 2000;
const STREAM_MAX_BACKOFF_MS = 60_000;

interface StreamEntry {
  readonly trigger: LoadTrigger;
  call: grpc.ClientReadableStream<{ result: boolean }> | undefined;
  open: boolean;
  backoffMs: number;
  retry: NodeJS.Timeout | undefined;
}

type Callback = (err: grpc.ServiceError | null, res: unknown) => void;
interface Client extends grpc.Client {
  GetMetrics(req: unknown, opts: grpc.CallOptions, cb: Callback): void;
  IsActive(req: unknown, opts: grpc.CallOptions, cb: Callback): void;
  StreamIsActive(req: unknown): grpc.ClientReadableStream<{ result: boolean }>;
}

function errorOutcome(err: grpc.ServiceError, elapsedMs: number): Outcome {
  const name = grpc.status[err.code] ?? String(err.code);
  return err.code === grpc.status.DEADLINE_EXCEEDED && elapsedMs >= KEDA_DEADLINE_MS - 10 ? `${name}@3s` : name;
}

export class KedaLoad {
  readonly calls: CallRecord[] = [];
  readonly streamEvents: StreamRecord[] = [];
  /** The first error text seen per (kind, outcome): what a failing source said. */
  readonly errorSamples = new Map<string, string>();
  private readonly client: Client;
  private readonly triggers: readonly LoadTrigger[];
  private readonly streams: StreamEntry[] = [];
  private timers: NodeJS.Timeout[] = [];
  private running = false;
  private closed = false;

  constructor(address: string, triggers: readonly LoadTrigger[]) {
    // One channel, as KEDA keeps one connection per scaler address.
    this.client = new ExternalScalerClient(address, grpc.credentials.createInsecure()) as unknown as Client;
    this.triggers = triggers;
  }

  /** Polls every trigger once per pollMs, spread evenly over the interval. */
  start(pollMs: number): void {
    this.running = true;
    this.triggers.forEach((trigger, j) => {
      const phaseMs = (j * pollMs) / this.triggers.length;
      const first = setTimeout(() => {
        void this.poll(trigger);
        this.timers.push(setInterval(() => void this.poll(trigger), pollMs));
      }, phaseMs);
      this.timers.push(first);
    });
  }

  /**
   * Opens one StreamIsActive per trigger given and keeps it open as KEDA does
   * (pkg/scalers/external_scaler.go): a stream that ended with OK (the server ends streams within
   * its connection's maximum age) is opened again after 2 s; one that failed, after a backoff that
   * doubles from 2 s up to a minute.
   */
  openStreams(triggers: readonly LoadTrigger[]): void {
    for (const trigger of triggers) {
      const entry: StreamEntry = { trigger, call: undefined, open: false, backoffMs: STREAM_RETRY_MS, retry: undefined };
      this.streams.push(entry);
      this.openStream(entry);
    }
  }

  private openStream(entry: StreamEntry): void {
    const { trigger } = entry;
    entry.retry = undefined;
    if (this.closed) return;
    const call = this.client.StreamIsActive(trigger.ref);
    entry.call = call;
    entry.open = true;
    call.on('data', (m: { result: boolean }) =>
      this.streamEvents.push({ kind: trigger.kind, atMs: Date.now(), outcome: m.result ? 'correct' : 'falseZero' }),
    );
    call.on('error', () => undefined); // 'status' says how it ended
    call.on('status', (st: grpc.StatusObject) => {
      entry.open = false;
      const ok = st.code === grpc.status.OK;
      this.streamEvents.push({ kind: trigger.kind, atMs: Date.now(), outcome: `ended ${grpc.status[st.code]}` });
      const key = `stream ended ${grpc.status[st.code]}`;
      if (!ok && !this.errorSamples.has(key)) this.errorSamples.set(key, st.details);
      if (this.closed) return;
      const waitMs = ok ? STREAM_RETRY_MS : entry.backoffMs;
      entry.backoffMs = ok ? STREAM_RETRY_MS : Math.min(2 * entry.backoffMs, STREAM_MAX_BACKOFF_MS);
      entry.retry = setTimeout(() => this.openStream(entry), waitMs);
    });
  }

  get openStreamCount(): number {
    return this.streams.filter((s) => s.open).length;
  }

  private unary(method: 'GetMetrics' | 'IsActive', request: unknown): Promise<{ err: grpc.ServiceError | null; res: unknown }> {
    return new Promise((resolve) => {
      try {
        this.client[method](request, { deadline: Date.now() + KEDA_DEADLINE_MS }, (err, res) => resolve({ err, res }));
      } catch (err) {
        // The channel was closed under a poll in progress (the harness is stopping).
        resolve({ err: Object.assign(err as Error, { code: grpc.status.CANCELLED }) as grpc.ServiceError, res: undefined });
      }
    });
  }

  private async poll(trigger: LoadTrigger): Promise<void> {
    if (!this.running) return;
    const { kind, ref, expectedReplicas } = trigger;
    const sentMs = Date.now();
    const metrics = await this.unary('GetMetrics', { scaledObjectRef: ref, metricName: 'inference-desired-replicas' });
    const metricsDone = Date.now();
    if (metrics.err !== null) {
      const outcome = errorOutcome(metrics.err, metricsDone - sentMs);
      this.sample(kind, outcome, metrics.err);
      this.calls.push({ kind, method: 'GetMetrics', sentMs, doneMs: metricsDone, outcome });
      return;
    }
    const value = (metrics.res as { metricValues: { metricValueFloat: number }[] }).metricValues[0]?.metricValueFloat ?? 0;
    const outcome = value === expectedReplicas ? 'correct' : value === 0 ? 'falseZero' : 'wrong';
    this.calls.push({
      kind,
      method: 'GetMetrics',
      sentMs,
      doneMs: metricsDone,
      outcome,
      ...(outcome !== 'correct' ? { value } : {}),
    });
    // KEDA asks IsActive right after GetMetrics.
    if (!this.running) return;
    const active = await this.unary('IsActive', ref);
    const doneMs = Date.now();
    if (active.err !== null) {
      const outcome = errorOutcome(active.err, doneMs - metricsDone);
      this.sample(kind, outcome, active.err);
      this.calls.push({ kind, method: 'IsActive', sentMs: metricsDone, doneMs, outcome });
      return;
    }
    const result = (active.res as { result: boolean }).result;
    this.calls.push({
      kind,
      method: 'IsActive',
      sentMs: metricsDone,
      doneMs,
      outcome: result ? 'correct' : 'falseZero',
      ...(!result ? { value: result } : {}),
    });
  }

  private sample(kind: BedKind, outcome: Outcome, err: grpc.ServiceError): void {
    const key = `${kind} ${outcome}`;
    if (!this.errorSamples.has(key)) this.errorSamples.set(key, err.details);
  }

  /** Drops the records kept so far (between scenarios). */
  reset(): void {
    this.calls.length = 0;
    this.streamEvents.length = 0;
    this.errorSamples.clear();
  }

  stop(): void {
    this.running = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  close(): void {
    this.stop();
    this.closed = true;
    for (const s of this.streams) {
      clearTimeout(s.retry);
      s.call?.cancel();
    }
    this.client.close();
  }
}
