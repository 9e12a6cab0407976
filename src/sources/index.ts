// The source registry: one driver per kind, one Source object per identity.
import { SourceUnavailable, errorMessage } from '../errors.ts';
import type { SourceConfig } from '../trigger/types.ts';
import { ClientMap } from './common.ts';
import type { LazySourceDriver, Source, SourceDriver } from './source.ts';

export type { LazySourceDriver } from './source.ts';

function isLazy(driver: SourceDriver | LazySourceDriver): driver is LazySourceDriver {
  return typeof (driver as Partial<LazySourceDriver>).load === 'function';
}

export class SourceRegistry {
  private readonly drivers = new Map<SourceConfig['kind'], SourceDriver>();
  private readonly lazy = new Map<SourceConfig['kind'], LazySourceDriver>();
  private readonly loading = new Map<SourceConfig['kind'], Promise<void>>();
  private readonly sources = new ClientMap<Source>();

  constructor(drivers: readonly (SourceDriver | LazySourceDriver)[]) {
    for (const d of drivers) {
      if (isLazy(d)) this.lazy.set(d.kind, d);
      else this.drivers.set(d.kind, d);
    }
  }

  /**
   * Loads the drivers these configs need. Undefined when all are loaded already (the hot path
   * does not wait); otherwise a promise, rejected with SourceUnavailable if a driver module
   * cannot be loaded (the next call tries again).
   */
  load(configs: readonly SourceConfig[]): Promise<void> | undefined {
    let waits: Promise<void>[] | undefined;
    for (const { kind } of configs) {
      if (this.drivers.has(kind)) continue;
      const lazy = this.lazy.get(kind);
      if (lazy === undefined) continue; // sourceFor reports the missing driver
      let loading = this.loading.get(kind);
      if (loading === undefined) {
        loading = lazy.load().then(
          (driver) => {
            this.loading.delete(kind);
            this.drivers.set(kind, driver);
          },
          (err: unknown) => {
            this.loading.delete(kind);
            throw new SourceUnavailable(`the ${kind} source driver could not be loaded: ${errorMessage(err)}`);
          },
        );
        this.loading.set(kind, loading);
      }
      (waits ??= []).push(loading);
    }
    return waits && Promise.all(waits).then(() => undefined);
  }

  /** The source of this config (looked up at `nowMs`); its driver must be loaded (see load). */
  sourceFor(config: SourceConfig, nowMs = Date.now()): Source {
    const driver = this.drivers.get(config.kind);
    if (driver === undefined) {
      throw new Error(
        this.lazy.has(config.kind) ? `source driver ${config.kind} not loaded yet` : `no driver for source kind ${config.kind}`,
      );
    }
    return this.sources.get(driver.identity(config), () => driver.create(config), nowMs);
  }

  get size(): number {
    return this.sources.size;
  }

  /**
   * Forgets the sources that no trigger in `live` reads and no lookup asked for within `idleMs`
   * (their configs hold credentials and CAs), and has every driver close the connections no read
   * used for `idleMs`.
   */
  async sweep(live: ReadonlySet<string>, idleMs: number, nowMs = Date.now()): Promise<void> {
    // A source holds no connection of its own (its driver's clients do): forgetting it is all.
    await this.sources.closeIdle(
      idleMs,
      () => undefined,
      nowMs,
      (identity) => live.has(identity),
    );
    await Promise.allSettled([...this.drivers.values()].map((d) => d.closeIdle(idleMs)));
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.loading.values()]);
    await Promise.allSettled([...this.drivers.values()].map((d) => d.close()));
    await this.sources.close(() => undefined);
  }
}
