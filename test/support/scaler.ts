// Starts the real scaler in-process on free ports and gives a KEDA-protocol client for it.
import * as grpc from '@grpc/grpc-js';
import { inject } from 'vitest';
import { type Config, DEFAULT_STATE_RETENTION_MS } from '../../src/config.ts';
import { type RunningScaler, type StartOptions, startScaler } from '../../src/server/server.ts';
import { KedaClient } from './kedaClient.ts';
import type { ServiceEnv } from './services.ts';

export { type ExplainView, KedaClient, explainViews, ref } from './kedaClient.ts';

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
    LOOP_TARGET_UTILIZATION: 0.5,
    TRIGGER_METRICS: true,
    STATE_RETENTION_MS: DEFAULT_STATE_RETENTION_MS,
    STATE_STORE_CLUSTER: false,
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
