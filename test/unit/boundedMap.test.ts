import { describe, expect, it } from 'vitest';
import { setNewest } from '../../src/cache/boundedMap.ts';

describe('setNewest: a map of at most max entries, newest last', () => {
  it.each([
    // [what, entries before, key set, entries after]
    ['room left: added at the end', ['a', 'b'], 'c', ['a', 'b', 'c']],
    ['full: the oldest goes', ['a', 'b', 'c'], 'd', ['b', 'c', 'd']],
    ['full, a key it holds: moved to the end, nothing dropped', ['a', 'b', 'c'], 'a', ['b', 'c', 'a']],
  ] as const)('%s', (_what, before, key, after) => {
    const map = new Map<string, number>(before.map((k) => [k, 0]));
    setNewest(map, key, 1, 3);
    expect([...map.keys()]).toEqual(after);
    expect(map.get(key)).toBe(1);
  });
});
