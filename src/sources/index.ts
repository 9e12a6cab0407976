// The source registry: one driver per kind, one Source object per identity.
import { createHash } from 'node:crypto';
import type { Logger } from '../telemetry/logger.ts';
import type { SourceConfig } from '../trigger/types.ts';
import type { Source, SourceDriver } from './source.ts';

export type { Source, SourceDriver, SourceReading } from './source.ts';

/** Short stable hash for identities that must not carry secrets in clear. */
export function secretHash(...parts: readonly (string | undefined)[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

export interface DriverContext {
  readonly logger: Logger;
}

export class SourceRegistry {
  private readonly drivers = new Map<SourceConfig['kind'], SourceDriver>();
  private readonly sources = new Map<string, Source>();

  constructor(drivers: readonly SourceDriver[]) {
    for (const d of drivers) this.drivers.set(d.kind, d);
  }

  sourceFor(config: SourceConfig): Source {
    const driver = this.drivers.get(config.kind);
    if (driver === undefined) throw new Error(`no driver for source kind ${config.kind}`);
    const identity = driver.identity(config);
    let source = this.sources.get(identity);
    if (source === undefined) {
      source = driver.create(config);
      this.sources.set(identity, source);
    }
    return source;
  }

  get size(): number {
    return this.sources.size;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.drivers.values()].map((d) => d.close()));
    this.sources.clear();
  }
}
