// Who reads each source: the ScaledObjects a source failure's log line names. Noted at each read a
// trigger starts and made anew at each of the engine's sweeps; a lookup touches one source's
// readers, not every trigger (walking them all at each line held the loop 3-7 s with 10,000
// triggers and their broker down).

/** A trigger as the index keeps it: its id, and its ScaledObject. */
interface Reader {
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
}

export class SourceReaders {
  /** Source identity -> trigger id -> its ScaledObject (namespace/name). */
  private readers = new Map<string, Map<string, string>>();
  /** The (source, trigger) pairs in the order they were noted, oldest first: the bound. */
  private order = new Map<string, readonly [string, string]>();
  private readonly max: number;

  /** At most `max` (source, trigger) pairs: distinct metadata by the thousand (a broken client) holds no more. */
  constructor(max: number) {
    this.max = max;
  }

  /** Notes that `trigger` reads `sources` (at each read it starts: no allocation once noted). */
  note(trigger: Reader, sources: readonly { readonly source: { readonly identity: string } }[]): void {
    for (const { source } of sources) {
      const { identity } = source;
      let readers = this.readers.get(identity);
      if (readers?.has(trigger.id)) continue;
      if (readers === undefined) this.readers.set(identity, (readers = new Map()));
      readers.set(trigger.id, `${trigger.namespace}/${trigger.name}`);
      // The oldest pair goes first past the bound, from whichever source it was noted under.
      if (this.order.size >= this.max) {
        const [key, [oldIdentity, oldId]] = this.order.entries().next().value!;
        this.order.delete(key);
        const theirs = this.readers.get(oldIdentity);
        theirs?.delete(oldId);
        if (theirs?.size === 0) this.readers.delete(oldIdentity);
      }
      this.order.set(`${identity}\n${trigger.id}`, [identity, trigger.id]);
    }
  }

  /** The ScaledObjects (namespace/name) that read the source: the first `named`, and how many in all. */
  of(identity: string, named: number): { scaledObjects: string[]; count: number } {
    const names = new Set(this.readers.get(identity)?.values());
    return { scaledObjects: [...names].slice(0, named), count: names.size };
  }

  /** Forgets every reader: the sweep notes again the triggers it keeps. */
  clear(): void {
    this.readers = new Map();
    this.order = new Map();
  }
}
