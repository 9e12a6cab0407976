import { describe, expect, it } from 'vitest';
import { SourceUnavailable } from '../../src/errors.ts';
import { withoutTrailingSlashes } from '../../src/sources/common.ts';
import { type LazySourceDriver, SourceRegistry } from '../../src/sources/index.ts';
import type { Source, SourceDriver } from '../../src/sources/source.ts';
import type { SourceConfig } from '../../src/trigger/types.ts';

const config = { kind: 'sqs', queueUrl: 'http://sqs.local/q1' } as unknown as SourceConfig;

function fakeDriver(closed: string[]): SourceDriver {
  return {
    kind: 'sqs',
    identity: (c) => `sqs:${(c as unknown as { queueUrl: string }).queueUrl}`,
    create: (c) =>
      ({ identity: `sqs:${(c as unknown as { queueUrl: string }).queueUrl}`, label: 'sqs q1', kind: 'sqs' }) as Source,
    closeIdle: async (idleMs) => {
      closed.push(`sqs idle ${idleMs}`);
    },
    close: async () => {
      closed.push('sqs');
    },
  };
}

describe('SourceRegistry with lazily loaded drivers', () => {
  it('loads a driver once, on the first load of its kind, and not before', async () => {
    let loads = 0;
    const closed: string[] = [];
    const lazy: LazySourceDriver = {
      kind: 'sqs',
      load: async () => {
        loads++;
        return fakeDriver(closed);
      },
    };
    const registry = new SourceRegistry([lazy]);
    expect(loads).toBe(0);
    expect(() => registry.sourceFor(config)).toThrow(/not loaded/);
    const first = registry.load([config]);
    const second = registry.load([config]);
    expect(first).toBeInstanceOf(Promise);
    await Promise.all([first, second]);
    expect(loads).toBe(1);
    expect(registry.load([config])).toBeUndefined();
    expect(registry.sourceFor(config).label).toBe('sqs q1');
    await registry.close();
    expect(closed).toEqual(['sqs']);
  });

  it('rejects with SourceUnavailable when a driver cannot be loaded, and tries again on the next load', async () => {
    let loads = 0;
    const registry = new SourceRegistry([
      {
        kind: 'sqs',
        load: async () => {
          loads++;
          if (loads === 1) throw new Error('Cannot find package @aws-sdk/client-sqs');
          return fakeDriver([]);
        },
      },
    ]);
    const failed = registry.load([config]);
    await expect(failed).rejects.toBeInstanceOf(SourceUnavailable);
    await expect(failed).rejects.toThrow(/sqs source driver could not be loaded: Cannot find package/);
    await registry.load([config]);
    expect(loads).toBe(2);
    expect(registry.sourceFor(config).identity).toBe('sqs:http://sqs.local/q1');
  });

  it('sweep forgets the sources no live trigger reads, and has each driver close its idle connections', async () => {
    const closed: string[] = [];
    const registry = new SourceRegistry([fakeDriver(closed)]);
    const other = { ...config, queueUrl: 'http://sqs.local/q2' } as unknown as SourceConfig;
    const first = registry.sourceFor(config, 0);
    registry.sourceFor(other, 0);
    expect(registry.size).toBe(2);
    // Looked up within the window (a trigger on its first read), kept though no live trigger reads it yet.
    await registry.sweep(new Set([first.identity]), 1_800_000, 1_000_000);
    expect(registry.size).toBe(2);
    await registry.sweep(new Set([first.identity]), 1_800_000, 1_800_001);
    expect(registry.size).toBe(1);
    expect(registry.sourceFor(config, 1_800_002)).toBe(first);
    expect(closed).toEqual(['sqs idle 1800000', 'sqs idle 1800000']);
  });

  it('needs no load for drivers given loaded', () => {
    const registry = new SourceRegistry([fakeDriver([])]);
    expect(registry.load([config])).toBeUndefined();
    expect(registry.sourceFor(config).kind).toBe('sqs');
  });
});

describe('withoutTrailingSlashes', () => {
  it.each([
    ['', ''],
    ['/', ''],
    ['/prom///', '/prom'],
    ['/a/b', '/a/b'],
    ['//a//b//', '//a//b'],
  ])('%j -> %j', (path, expected) => {
    expect(withoutTrailingSlashes(path)).toBe(expected);
  });

  it('keeps 100,000 slashes that do not end the path', () => {
    expect(withoutTrailingSlashes(`${'/'.repeat(100_000)}a`)).toHaveLength(100_001);
  });
});
