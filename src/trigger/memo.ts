// The parse memo: what was parsed from a ScaledObjectRef, found again without building a key.
// KEDA sends the metadata as a Go map, in a new order on every call, so a key would have to sort
// and join every name and value of every call; comparing against the metadata stored under the
// ScaledObject's namespace and name allocates nothing.
import type { TriggerRef } from './types.ts';

interface MemoEntry<T> {
  /** A copy of the metadata (no prototype: a key like "constructor" finds only what was stored). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly size: number;
  /** What it keeps alive, in characters: keys, values, name and namespace, and KEY_COST per key. */
  readonly chars: number;
  readonly value: T;
}

/** Most entries under one ScaledObject (one per trigger of it, and metadata edits). */
const PER_NAME = 8;
/**
 * What a key costs beyond its characters, counted as characters: its slot in the copy and its
 * string header, some 60 bytes. Without it 1,000 keys of short values counted a tenth of their size.
 */
const KEY_COST = 64;

export interface RefMemoLimits {
  /** Most entries kept. */
  readonly maxEntries: number;
  /**
   * Most characters kept (with KEY_COST per key), all entries together: a count of entries alone
   * let 20,000 maps of 100 KB values (or of 1,000 keys) hold gigabytes.
   */
  readonly maxChars: number;
  /** Metadata longer than this (so counted) is parsed every time, never kept: no trigger KEDA sends comes near. */
  readonly maxEntryChars: number;
}

export class RefMemo<T> {
  private readonly byNamespace = new Map<string, Map<string, MemoEntry<T>[]>>();
  private entries = 0;
  private chars = 0;
  private readonly limits: RefMemoLimits;

  constructor(limits: RefMemoLimits) {
    this.limits = limits;
  }

  get size(): number {
    return this.entries;
  }

  /** Characters the entries keep alive. */
  get keptChars(): number {
    return this.chars;
  }

  get(ref: TriggerRef): T | undefined {
    const list = this.byNamespace.get(ref.namespace)?.get(ref.name);
    if (list === undefined) return undefined;
    for (const entry of list) if (sameMetadata(entry, ref.metadata)) return entry.value;
    return undefined;
  }

  set(ref: TriggerRef, value: T): void {
    const { maxEntries, maxChars, maxEntryChars } = this.limits;
    let chars = ref.name.length + ref.namespace.length;
    for (const key in ref.metadata) chars += KEY_COST + key.length + ref.metadata[key]!.length;
    if (chars > maxEntryChars) return;
    if (this.entries >= maxEntries || this.chars + chars > maxChars) this.clear();
    let byName = this.byNamespace.get(ref.namespace);
    if (byName === undefined) this.byNamespace.set(ref.namespace, (byName = new Map()));
    let list = byName.get(ref.name);
    if (list === undefined) byName.set(ref.name, (list = []));
    // Newest first: an edited ScaledObject's old metadata ages out of the list.
    if (list.length >= PER_NAME) {
      this.chars -= list.pop()!.chars;
      this.entries--;
    }
    const metadata: Record<string, string> = Object.create(null);
    let size = 0;
    for (const [key, text] of Object.entries(ref.metadata)) {
      metadata[key] = text;
      size++;
    }
    list.unshift({ metadata, size, chars, value });
    this.entries++;
    this.chars += chars;
  }

  clear(): void {
    this.byNamespace.clear();
    this.entries = 0;
    this.chars = 0;
  }
}

function sameMetadata(entry: MemoEntry<unknown>, metadata: Readonly<Record<string, string>>): boolean {
  let size = 0;
  for (const key in metadata) {
    if (!Object.hasOwn(metadata, key) || entry.metadata[key] !== metadata[key]) return false;
    size++;
  }
  return size === entry.size;
}
