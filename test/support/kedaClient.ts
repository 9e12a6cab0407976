// A KEDA-protocol client for a running scaler, and its /explain view: what tests and benchmarks
// drive a scaler with, in-process or not (no test runner needed: bench/gpu runs it beside a real GPU).
import * as grpc from '@grpc/grpc-js';
import {
  ExternalScalerClient,
  type GetMetricSpecResponse,
  type GetMetricsResponse,
  type IsActiveResponse,
  type ScaledObjectRef,
} from '../../src/server/protocol.ts';
import type { Role } from '../../src/state/shared.ts';

/** Promise wrappers over the generated client, as KEDA would call. */
export class KedaClient {
  readonly raw: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

  constructor(address: string, credentials = grpc.credentials.createInsecure()) {
    this.raw = new ExternalScalerClient(address, credentials) as unknown as KedaClient['raw'];
  }

  private unary<Res>(method: string, request: unknown, deadlineMs = 5000): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = this.raw[method] as (
        req: unknown,
        opts: grpc.CallOptions,
        cb: (err: grpc.ServiceError | null, res: Res) => void,
      ) => void;
      fn.call(this.raw, request, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  isActive(ref: ScaledObjectRef): Promise<IsActiveResponse> {
    return this.unary('IsActive', ref);
  }
  getMetricSpec(ref: ScaledObjectRef): Promise<GetMetricSpecResponse> {
    return this.unary('GetMetricSpec', ref);
  }
  getMetrics(ref: ScaledObjectRef, metricName = 'inference-desired-replicas'): Promise<GetMetricsResponse> {
    return this.unary('GetMetrics', { scaledObjectRef: ref, metricName });
  }
  streamIsActive(ref: ScaledObjectRef): grpc.ClientReadableStream<IsActiveResponse> {
    return (this.raw.StreamIsActive as (r: unknown) => grpc.ClientReadableStream<IsActiveResponse>).call(this.raw, ref);
  }
  streamMetricSpec(ref: ScaledObjectRef): grpc.ClientReadableStream<GetMetricSpecResponse> {
    return (this.raw.StreamMetricSpec as (r: unknown) => grpc.ClientReadableStream<GetMetricSpecResponse>).call(this.raw, ref);
  }
  close(): void {
    this.raw.close();
  }
}

/** What /explain gives for a trigger: its last decision (null before one), and its last answer when that was an error. */
export interface ExplainView {
  trigger: { id: string; scaling: Record<string, unknown> };
  active: boolean | null;
  desiredReplicas: number | null;
  explanation: { details: Record<string, unknown>; signals: Record<string, unknown> } | null;
  lastFailure?: { at: string; code: string; message: string };
  /** The trigger this one carried on from, when its settings were edited. */
  learnedUnder?: string;
  /** With a shared state store only. */
  sharedState?: { role: Role; decidedFrom: string };
}

export async function explainViews(metricsPort: number, namespace: string, name: string): Promise<ExplainView[]> {
  const url = new URL(`http://127.0.0.1:${metricsPort}/explain`);
  url.searchParams.set('namespace', namespace);
  url.searchParams.set('name', name);
  return (await fetch(url)).json() as Promise<ExplainView[]>;
}

export function ref(metadata: Record<string, string>, name = 'so', namespace = 'default'): ScaledObjectRef {
  return { name, namespace, scalerMetadata: metadata };
}
