// What the drivers share: identities that carry no secret in clear, and URL paths.
import { createHash } from 'node:crypto';

/** Short stable hash for identities that must not carry secrets in clear. */
export function secretHash(...parts: readonly (string | undefined)[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/** A URL path without its trailing slashes. A loop: `/\/+$/` scans a long run of slashes once per slash. */
export function withoutTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 0 && path.charCodeAt(end - 1) === 0x2f) end--;
  return path.slice(0, end);
}

/**
 * Clients shared by key (a broker URL, a region and endpoint, a TLS setting): made on first use,
 * forgotten or all closed together. What a client is and how it closes is the driver's business.
 */
export class ClientMap<C> {
  private readonly clients = new Map<string, C>();

  /** The client under `key`, made by `make` when there is none. */
  get(key: string, make: () => C): C {
    let client = this.clients.get(key);
    if (client === undefined) {
      client = make();
      this.clients.set(key, client);
    }
    return client;
  }

  /** Forgets the client under `key` (only if it is `client`, when given), without closing it. */
  delete(key: string, client?: C): boolean {
    if (client !== undefined && this.clients.get(key) !== client) return false;
    return this.clients.delete(key);
  }

  get size(): number {
    return this.clients.size;
  }

  /** Empties the map, then closes every client it held; one that fails to close does not stop the others. */
  async close(closeEach: (client: C) => unknown): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.allSettled(all.map(async (client) => closeEach(client)));
  }
}
