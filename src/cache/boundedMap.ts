// A Map kept to at most `max` entries, newest last: what is set again moves to the end, and past
// the bound the oldest goes (the ones nobody has touched longest).

/** Sets `key` as the map's newest entry, dropping the oldest first when the map is full. */
export function setNewest<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  if (map.size >= max) map.delete(map.keys().next().value!);
  map.set(key, value);
}
