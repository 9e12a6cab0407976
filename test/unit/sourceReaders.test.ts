import { describe, expect, it } from 'vitest';
import { SourceReaders } from '../../src/telemetry/sourceReaders.ts';

const reads = (...identities: string[]) => identities.map((identity) => ({ source: { identity } }));
const so = (name: string, id = name) => ({ id, namespace: 'ns', name });

describe('SourceReaders: who reads each source', () => {
  it('names each ScaledObject once (its edited triggers too), the first few, and counts them all', () => {
    const readers = new SourceReaders(100);
    readers.note(so('a'), reads('q', 'r'));
    readers.note(so('a', 'a-edited'), reads('q'));
    readers.note(so('b'), reads('q'));
    readers.note(so('c'), reads('q'));
    expect(readers.of('q', 2)).toEqual({ scaledObjects: ['ns/a', 'ns/b'], count: 3 });
    expect(readers.of('r', 5)).toEqual({ scaledObjects: ['ns/a'], count: 1 });
    expect(readers.of('unknown', 5)).toEqual({ scaledObjects: [], count: 0 });
    readers.clear();
    expect(readers.of('q', 5).count).toBe(0);
  });

  it('keeps at most its bound of (source, trigger) pairs over every source, the oldest dropped first', () => {
    const readers = new SourceReaders(3);
    readers.note(so('a'), reads('q', 'r'));
    readers.note(so('b'), reads('q'));
    readers.note(so('c'), reads('s'));
    // a's pair on q went first, then its pair on r.
    expect(readers.of('q', 5)).toEqual({ scaledObjects: ['ns/b'], count: 1 });
    expect(readers.of('r', 5)).toEqual({ scaledObjects: ['ns/a'], count: 1 });
    readers.note(so('d'), reads('t'));
    expect(readers.of('r', 5).count).toBe(0);
    expect([readers.of('q', 5).count, readers.of('s', 5).count, readers.of('t', 5).count]).toEqual([1, 1, 1]);
  });
});
