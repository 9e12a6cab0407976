import { describe, expect, it } from 'vitest';
import { StoreUrlError, describeStore, parseStoreUrl } from '../../src/state/address.ts';
import { leaseMsFor } from '../../src/state/index.ts';

describe('parseStoreUrl', () => {
  it.each([
    ['redis://valkey.keda:6379', { host: 'valkey.keda', port: 6379, db: 0, tls: false }],
    ['redis://valkey.keda', { host: 'valkey.keda', port: 6379, db: 0, tls: false }],
    [
      'rediss://scaler:p%40ss@cache.example.com:6380/3',
      { host: 'cache.example.com', port: 6380, db: 3, tls: true, username: 'scaler', password: 'p@ss' },
    ],
    ['redis://:s3cret@127.0.0.1:16379/', { host: '127.0.0.1', port: 16379, db: 0, tls: false, password: 's3cret' }],
    ['redis://[::1]:6379', { host: '::1', port: 6379, db: 0, tls: false }],
  ])('%s', (url, expected) => {
    expect(parseStoreUrl(url)).toEqual(expected);
  });

  it.each(['valkey:6379', 'redis://', 'redis://h:6379/db', 'redis://h:6379/0?tls=true', 'unix:///tmp/redis.sock', 'redis://h:0'])(
    'refuses %s',
    (url) => {
      expect(() => parseStoreUrl(url)).toThrow(StoreUrlError);
    },
  );
});

// Found by review: a stray % threw URIError past the configuration's check, a stack trace at start.
it('refuses a stray % in the password as a bad URL, without quoting the password', () => {
  expect(() => parseStoreUrl('redis://scaler:pa%ss@cache:6379')).toThrow(
    new StoreUrlError('the password holds a % that starts no escape (write a literal % as %25)'),
  );
  expect(() => parseStoreUrl('redis://sc%zaler:pass@cache:6379')).toThrow(/^the user name holds a %/);
});

describe('describeStore', () => {
  it('shows where the store is, never who logs in or with what', () => {
    expect(describeStore(parseStoreUrl('rediss://scaler:s3cret@cache:6380/1'))).toBe('rediss://cache:6380/1');
    expect(describeStore(parseStoreUrl('redis://[::1]'))).toBe('redis://[::1]:6379/0');
  });
});

describe('leaseMsFor', () => {
  it.each([
    [1000, 3000],
    [5000, 15_000],
    // A cache interval of 20 ms: leases of 60 ms lapsed between renewals, and writers changed many times a second.
    [20, 3000],
    [1, 3000],
    // At most a timer's longest delay: past it the store's heartbeat fired every millisecond.
    [715_827_883, 2 ** 31 - 1],
  ])('CACHE_TTL_MS %d: a lease of %d ms', (cacheTtlMs, leaseMs) => {
    expect(leaseMsFor(cacheTtlMs)).toBe(leaseMs);
  });
});
