// The parse memo: what was parsed from a ScaledObjectRef, found again without building a key.
// KEDA sends the metadata as a Go map, in a new order on every call, so a key would have to sort
// and join every name and value of every call; comparing against the metadata stored under the
// ScaledObject's namespace and name allocates nothing. Bounded in entries and in characters held:
// a client that sends 200 KB of metadata under ever new names would otherwise park it all here.
import type { TriggerRef } from './types.ts';

interface MemoEntry<T> {
  /** A copy of the metadata (no prototype: a key like "constructor" finds only what was stored). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly size: number;
  /** Characters of its keys and values. */
  readonly chars: number;
  readonly value: T;
}

/** Most entries under one ScaledObject (one per trigger of it, and metadata edits). */
const PER_NAME = 8;

export class RefMemo<T> {
  private readonly byNamespace = new Map<string, Map<string, MemoEntry<T>[]>>();
  private entries = 0;
  private chars = 0;
  private readonly maxEntries: number;
  private readonly maxChars: number;

  constructor(maxEntries: number, maxChars = Number.POSITIVE_INFINITY) {
    this.maxEntries = maxEntries;
    this.maxChars = maxChars;
  }

  get size(): number {
    return this.entries;
  }

  /** Characters of the keys and values held. */
  get heldChars(): number {
    return this.chars;
  }

  get(ref: TriggerRef): T | undefined {
    const list = this.byNamespace.get(ref.namespace)?.get(ref.name);
    if (list === undefined) return undefined;
    for (const entry of list) if (sameMetadata(entry, ref.metadata)) return entry.value;
    return undefined;
  }

  set(ref: TriggerRef, value: T): void {
    const metadata: Record<string, string> = Object.create(null);
    let size = 0;
    let chars = 0;
    for (const [key, text] of Object.entries(ref.metadata)) {
      metadata[key] = text;
      size++;
      chars += key.length + text.length;
    }
    // One entry larger than the whole budget is not kept: it is parsed again when it comes again.
    if (chars > this.maxChars) return;
    if (this.entries >= this.maxEntries || this.chars + chars > this.maxChars) this.clear();
    let byName = this.byNamespace.get(ref.namespace);
    if (byName === undefined) this.byNamespace.set(ref.namespace, (byName = new Map()));
    let list = byName.get(ref.name);
    if (list === undefined) byName.set(ref.name, (list = []));
    // Newest first: an edited ScaledObject's old metadata ages out of the list.
    if (list.length >= PER_NAME) {
      this.chars -= list.pop()!.chars;
      this.entries--;
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
