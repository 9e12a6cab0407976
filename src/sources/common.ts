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
