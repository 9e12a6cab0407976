// Learned state that survives a restart and is the same on every replica: the store that the
// configuration chooses, in memory (one replica, nothing to run) or Redis/Valkey (shared).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { type Config, ConfigError, DEFAULT_STATE_RETENTION_MS } from '../config.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { StateStoreMetrics } from '../telemetry/metrics.ts';
import { checkCaBundle } from '../pem.ts';
import { parseStoreUrl } from './address.ts';
import { MemoryStateStore } from './memory.ts';
import { RedisStateStore } from './redis.ts';
import { MAX_TIMER_MS } from '../timers.ts';
import type { PayloadSchema, StateStore } from './types.ts';

export type StateStoreConfig = Pick<
  Config,
  'STATE_STORE_URL' | 'STATE_STORE_PASSWORD' | 'STATE_STORE_TLS_CA_FILE' | 'CACHE_TTL_MS'
> &
  Partial<
    Pick<Config, 'STATE_RETENTION_MS' | 'STATE_STORE_CLUSTER' | 'STATE_STORE_SENTINEL_MASTER' | 'STATE_STORE_SENTINEL_PASSWORD'>
  >;

export interface CreateStateStoreOptions<T> {
  /** The payload's format version: bump it when the payload changes shape. */
  readonly format: number;
  readonly schema: PayloadSchema<T>;
  readonly logger: Logger;
  readonly metrics: StateStoreMetrics;
  /** Default: the pod's host name and a random suffix (a restarted pod is a new writer). */
  readonly writerId?: string;
  /** Default: package.json's version. */
  readonly scalerVersion?: string;
  /** Default: leaseMsFor(CACHE_TTL_MS). */
  readonly leaseMs?: number;
  /** Default: STATE_RETENTION_MS (a record not published again for this long expires, as the engine forgets its trigger). */
  readonly recordTtlMs?: number;
  /** How a payload's times move to another clock (RedisStateStoreOptions.shift). */
  readonly shift?: (payload: T, ms: number) => T;
}

/** A lease at the least: three of the store's command timeouts (1 s), and of a renewal round's floor (100 ms). */
const MIN_LEASE_MS = 3000;

/**
 * A trigger's lease: three cache intervals, so a writer that stops is replaced within about three
 * readings, and no shorter than MIN_LEASE_MS. Renewed every third of it, a lease shorter than a
 * store's command could answer in lapsed between renewals (CACHE_TTL_MS 20: a trigger's writer
 * changed 28 times in 1.5 s, its publishes refused in the gaps; found by review).
 */
export function leaseMsFor(cacheTtlMs: number): number {
  // At most a timer's longest delay: the heartbeat runs every lease, and a longer delay fires every
  // millisecond (CACHE_TTL_MS past 715,827,882: a thousand PINGs a second; found by review).
  return Math.min(MAX_TIMER_MS, Math.max(MIN_LEASE_MS, 3 * cacheTtlMs));
}

/**
 * The store for this configuration: in memory without STATE_STORE_URL, Redis/Valkey with it. A
 * Redis store that cannot connect within its timeout is returned all the same, degraded, and keeps
 * trying in the background. Throws ConfigError when STATE_STORE_TLS_CA_FILE cannot be read.
 */
export async function createStateStore<T>(config: StateStoreConfig, options: CreateStateStoreOptions<T>): Promise<StateStore<T>> {
  const common = {
    writerId: options.writerId ?? `${hostname()}-${randomBytes(3).toString('hex')}`,
    scalerVersion: options.scalerVersion ?? scalerVersion(),
    format: options.format,
    leaseMs: options.leaseMs ?? leaseMsFor(config.CACHE_TTL_MS),
    recordTtlMs: options.recordTtlMs ?? config.STATE_RETENTION_MS ?? DEFAULT_STATE_RETENTION_MS,
    metrics: options.metrics,
  };
  if (config.STATE_STORE_URL === undefined) return new MemoryStateStore<T>(common);
  const address = parseStoreUrl(config.STATE_STORE_URL);
  const store = new RedisStateStore<T>({
    ...common,
    address: config.STATE_STORE_PASSWORD === undefined ? address : { ...address, password: config.STATE_STORE_PASSWORD },
    ...(config.STATE_STORE_TLS_CA_FILE !== undefined ? { tlsCa: readCa(config.STATE_STORE_TLS_CA_FILE) } : {}),
    cluster: config.STATE_STORE_CLUSTER === true,
    ...(config.STATE_STORE_SENTINEL_MASTER !== undefined && {
      sentinel: {
        master: config.STATE_STORE_SENTINEL_MASTER,
        ...(config.STATE_STORE_SENTINEL_PASSWORD !== undefined && { password: config.STATE_STORE_SENTINEL_PASSWORD }),
      },
    }),
    schema: options.schema,
    ...(options.shift !== undefined && { shift: options.shift }),
    logger: options.logger,
  });
  // A failure is logged by the store (one line) and counted; it goes on reconnecting.
  await store.connect().catch(() => {});
  return store;
}

/**
 * The store's CA, refused at start when it is no CA bundle: Node takes an empty or garbage one, and
 * the scaler ran on as if the store were down (found by review).
 */
function readCa(file: string): string {
  try {
    const ca = readFileSync(file, 'utf8');
    checkCaBundle(ca);
    return ca;
  } catch (err) {
    throw new ConfigError(`STATE_STORE_TLS_CA_FILE ${file}: ${(err as Error).message}`);
  }
}

function scalerVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
