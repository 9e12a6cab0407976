// Starts the real scaler in-process on free ports and gives a KEDA-protocol client for it.
import * as grpc from '@grpc/grpc-js';
import { inject } from 'vitest';
import type { Config } from '../../src/config.ts';
import { type RunningScaler, type StartOptions, startScaler } from '../../src/server/server.ts';
import {
  ExternalScalerClient,
  type GetMetricSpecResponse,
  type GetMetricsResponse,
  type IsActiveResponse,
  type ScaledObjectRef,
} from '../../src/server/protocol.ts';
import type { ServiceEnv } from './services.ts';

export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    GRPC_PORT: 0,
    METRICS_PORT: 0,
    HEALTH_PORT: 0,
    BIND_ADDRESS: '127.0.0.1',
    LOG_LEVEL: 'silent',
    CACHE_TTL_MS: 1000,
    SOURCE_TIMEOUT_MS: 2000,
    STREAM_INTERVAL_MS: 250,
    SHUTDOWN_TIMEOUT_MS: 2000,
    GRPC_MAX_CONNECTION_AGE_MS: 300_000,
    GRPC_MAX_RECEIVE_MESSAGE_BYTES: 256 * 1024,
    GRPC_MAX_OPEN_STREAMS: 5000,
    TRIGGER_METRICS: true,
    profiles: {},
    ...overrides,
  };
}

export function services(): ServiceEnv {
  return inject('services');
}

export function requireService(key: keyof ServiceEnv): string {
  const value = services()[key];
  if (value === undefined) throw new Error(`service ${key} is not available`);
  return value;
}

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

export interface TestScaler extends AsyncDisposable {
  readonly scaler: RunningScaler;
  readonly client: KedaClient;
  readonly address: string;
}

export async function startTestScaler(overrides: Partial<Config> = {}, options: StartOptions = {}): Promise<TestScaler> {
  const scaler = await startScaler(testConfig(overrides), options);
  const address = `127.0.0.1:${scaler.grpcPort}`;
  const client = new KedaClient(address);
  return {
    scaler,
    client,
    address,
    async [Symbol.asyncDispose]() {
      client.close();
      await scaler.stop();
    },
  };
}

/** One ScaledObject's triggers' last decisions, as a scaler's /explain serves them on its metrics port. */
/** What /explain gives for a trigger: its last decision (null before one), and its last answer when that was an error. */
export interface ExplainView {
  active: boolean | null;
  desiredReplicas: number | null;
  explanation: { details: Record<string, unknown> } | null;
  lastFailure?: { at: string; code: string; message: string };
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

/** Waits until `check` returns a value (not undefined) or throws after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > until)
      throw new Error(`condition not met within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The gRPC error a call must fail with; fails the test if the call answers instead. */
export async function grpcError(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  const err = await promise.then(
    (value) => {
      throw new Error(`expected an error, got ${JSON.stringify(value)}`);
    },
    (e: unknown) => e,
  );
  return err as grpc.ServiceError;
}
