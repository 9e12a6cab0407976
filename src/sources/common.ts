// What the drivers share: identities that carry no secret in clear, and URL paths.
import { createHash } from 'node:crypto';

/** Short stable hash for identities that must not carry secrets in clear. */
export function secretHash(...parts: readonly (string | undefined)[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/**
 * TLS alerts a server sends when it refuses the client's certificate, or wants one it was not
 * given: Node's error codes end with them (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED).
 */
export const REFUSED_CLIENT_CERT =
  /ALERT_(CERTIFICATE_UNKNOWN|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_REQUIRED|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE)$/;

/**
 * A source's cache identity from its parts, each kept apart: joined by a separator, a vhost or a
 * region holding it made two sources one (found by review: vhost `a`, queue `b|c` read vhost `a|b`,
 * queue `c`).
 */
export function sourceIdentity(kind: string, ...parts: readonly string[]): string {
  return JSON.stringify([kind, ...parts]);
}

/** A URL path without its trailing slashes. A loop: `/\/+$/` scans a long run of slashes once per slash. */
export function withoutTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 0 && path.charCodeAt(end - 1) === 0x2f) end--;
  return path.slice(0, end);
}

/**
 * Clients shared by key (a broker URL, a region and endpoint, a TLS setting; the registry's
 * sources): made on first use, closed once nothing has got them for a while (a deleted
 * ScaledObject, a rotated password: the key holds it), or all together. What a client is and how
 * it closes is the owner's business. Drivers get a client for each read, so that its use is seen.
 */
export class ClientMap<C> {
  private readonly clients = new Map<string, { readonly client: C; usedAtMs: number }>();

  /** The client under `key`, made by `make` when there is none. */
  get(key: string, make: () => C, nowMs = Date.now()): C {
    let entry = this.clients.get(key);
    if (entry === undefined) {
      entry = { client: make(), usedAtMs: nowMs };
      this.clients.set(key, entry);
    } else entry.usedAtMs = nowMs;
    return entry.client;
  }

  /** Forgets the client under `key` (only if it is `client`, when given), without closing it. */
  delete(key: string, client?: C): boolean {
    if (client !== undefined && this.clients.get(key)?.client !== client) return false;
    return this.clients.delete(key);
  }

  get size(): number {
    return this.clients.size;
  }

  /** Closes the clients nothing got for `idleMs`, but those `keep` names; how many. */
  async closeIdle(
    idleMs: number,
    closeEach: (client: C) => unknown,
    nowMs = Date.now(),
    keep: (key: string) => boolean = () => false,
  ): Promise<number> {
    const idle: C[] = [];
    for (const [key, entry] of this.clients) {
      if (nowMs - entry.usedAtMs <= idleMs || keep(key)) continue;
      this.clients.delete(key);
      idle.push(entry.client);
    }
    await Promise.allSettled(idle.map(async (client) => closeEach(client)));
    return idle.length;
  }

  /** Empties the map, then closes every client it held; one that fails to close does not stop the others. */
  async close(closeEach: (client: C) => unknown): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.allSettled(all.map(async ({ client }) => closeEach(client)));
  }
}
