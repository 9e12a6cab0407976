// Scaler processes for the engine's unit tests: an engine on a clock the test moves, its sources
// read by one fake driver, and with a StateCluster's client, a replica sharing its state there.
import { Registry } from 'prom-client';
import { Engine, type EngineOptions } from '../../src/engine.ts';
import { SourceRegistry } from '../../src/sources/index.ts';
import type { SourceDriver } from '../../src/sources/source.ts';
import { SharedState } from '../../src/state/shared.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import type { RabbitmqSourceConfig } from '../../src/trigger/types.ts';
import type { StateCluster } from './stateCluster.ts';

/** An engine on the clock `now`, its sources read by `source`, with `shared` when given (else a scaler alone). */
export function engineOn(
  now: () => number,
  source: SourceDriver<RabbitmqSourceConfig>,
  shared?: EngineOptions['shared'],
): Engine {
  return new Engine({
    registry: new SourceRegistry([source as unknown as SourceDriver]),
    cacheTtlMs: 1000,
    sourceTimeoutMs: 2000,
    logger: silentLogger(),
    metrics: new ScalerMetrics(new Registry(), { defaultMetrics: false }),
    now,
    ...(shared !== undefined && { shared }),
  });
}

/** A scaler replica on `cluster` (its own client unless given), its sources read by `source`. */
export function replicaOn(
  cluster: StateCluster,
  name: string,
  source: SourceDriver<RabbitmqSourceConfig>,
  client: ReturnType<StateCluster['client']> = cluster.client(name),
) {
  const shared = new SharedState(client, { logger: silentLogger(), publishIntervalMs: 5000, now: cluster.now });
  return { engine: engineOn(cluster.now, source, shared), shared };
}
