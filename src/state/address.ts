// STATE_STORE_URL as the store connects to it. Messages never quote the URL: it may hold a password.

export interface StoreAddress {
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  readonly db: number;
  /** rediss:// */
  readonly tls: boolean;
}

export class StoreUrlError extends Error {}

/** redis://[user[:password]@]host[:port][/db] or rediss://... (TLS). */
export function parseStoreUrl(url: string): StoreAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StoreUrlError('not a URL (expected redis://host:port or rediss://host:port)');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new StoreUrlError(`scheme ${parsed.protocol.slice(0, 20)} is not redis: or rediss:`);
  }
  if (parsed.hostname === '') throw new StoreUrlError('no host');
  if (parsed.search !== '' || parsed.hash !== '') {
    throw new StoreUrlError('query parameters are not read: set STATE_STORE_PASSWORD and STATE_STORE_TLS_CA_FILE instead');
  }
  if (parsed.port === '0') throw new StoreUrlError('port 0 names no server');
  const path = parsed.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,2}$/.test(path)) throw new StoreUrlError('the path must be a database number (/0 ... /99) or empty');
  // WHATWG URL keeps IPv6 hosts in brackets; net.connect wants them bare.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const address: { -readonly [K in keyof StoreAddress]: StoreAddress[K] } = {
    host,
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    db: path === '' ? 0 : Number(path),
    tls: parsed.protocol === 'rediss:',
  };
  if (parsed.username !== '') address.username = decoded(parsed.username, 'user name');
  if (parsed.password !== '') address.password = decoded(parsed.password, 'password');
  return address;
}

/** A percent-encoded part of the URL; a stray `%` is refused without quoting the part. */
function decoded(part: string, name: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new StoreUrlError(`the ${name} holds a % that starts no escape (write a literal % as %25)`);
  }
}

/** The address as logs may show it: scheme, host, port and database, never the credentials. */
export function describeStore(address: StoreAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${address.tls ? 'rediss' : 'redis'}://${host}:${address.port}/${address.db}`;
}
