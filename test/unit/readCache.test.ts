import { describe, expect, it } from 'vitest';
import { ReadCache } from '../../src/cache/readCache.ts';
import { SourceNotFound, SourceTimeout, SourceUnavailable } from '../../src/errors.ts';
import type { Source, SourceReading } from '../../src/sources/source.ts';

function fakeSource(read: (signal: AbortSignal) => Promise<SourceReading>, identity = 'q'): Source & { calls: number } {
  const source = {
    identity,
    label: `fake ${identity}`,
    kind: 'rabbitmq' as const,
    calls: 0,
    read: (signal: AbortSignal) => {
      source.calls++;
      return read(signal);
    },
  };
  return source;
}

describe('ReadCache', () => {
  it('asks the source once for concurrent callers and shares the answer', async () => {
    let release: (r: SourceReading) => void = () => undefined;
    const source = fakeSource(() => new Promise((resolve) => (release = resolve)));
    const cache = new ReadCache({ ttlMs: 1000, timeoutMs: 1000 });
    const reads = Array.from({ length: 50 }, () => cache.read(source));
    release({ backlog: 7 });
    const results = await Promise.all(reads);
    expect(source.calls).toBe(1);
    expect(results.every((r) => r.reading.backlog === 7)).toBe(true);
  });

  it('times a query on the monotonic clock: a wall clock stepped back mid-read gives no negative latency (found by review)', async () => {
    let now = 3_600_000;
    const durations: number[] = [];
    const source = fakeSource(async () => {
      now -= 3_600_000; // NTP steps the clock back an hour while the broker answers
      return { backlog: 1 };
    });
    const cache = new ReadCache({ ttlMs: 1000, timeoutMs: 1000, now: () => now, onQuery: (_s, ms) => durations.push(ms) });
    await cache.read(source);
    expect(durations).toHaveLength(1);
    expect(durations[0]).toBeGreaterThanOrEqual(0);
    expect(durations[0]).toBeLessThan(1000);
  });

  it('serves a fresh value from memory and asks again once it is older than the ttl', async () => {
    let now = 0;
    let backlog = 1;
    const source = fakeSource(async () => ({ backlog: backlog++ }));
    const cache = new ReadCache({ ttlMs: 1000, timeoutMs: 1000, now: () => now });
    expect((await cache.read(source)).reading.backlog).toBe(1);
    now = 999;
    expect((await cache.read(source)).reading.backlog).toBe(1);
    now = 1000;
    expect((await cache.read(source)).reading.backlog).toBe(2);
    expect(source.calls).toBe(2);
  });

  // Found by review: an entry settled "in the future" counted as fresh until the clock caught up,
  // an empty queue's reading answering for an hour while 500 messages waited.
  it('reads again when the wall clock stepped back past the entry, for read() and fresh() alike', async () => {
    let now = 3_600_000;
    let backlog = 0;
    const source = fakeSource(async () => ({ backlog }));
    const cache = new ReadCache({ ttlMs: 1000, timeoutMs: 1000, now: () => now });
    expect((await cache.read(source)).reading.backlog).toBe(0);
    backlog = 500;
    now = 1_000; // an hour back
    expect(cache.fresh(source)).toBeUndefined();
    expect((await cache.read(source)).reading.backlog).toBe(500);
    expect(source.calls).toBe(2);
    expect(cache.fresh(source)?.reading.backlog).toBe(500);
  });

  // Found by review: a read that throws as it is called settled its query before the cache noted
  // it in flight, and that flight then stood for good: the same error for ever, the source never
  // asked again.
  it('asks again after the ttl a source whose read threw as it was called', async () => {
    let now = 0;
    let fail = true;
    const source = {
      ...fakeSource(async () => ({ backlog: 4 })),
      read: () => {
        source.calls++;
        if (fail) throw new Error('sync boom');
        return Promise.resolve({ backlog: 4 });
      },
    };
    const cache = new ReadCache({ ttlMs: 1000, timeoutMs: 1000, now: () => now });
    await expect(cache.read(source)).rejects.toThrow(/sync boom/);
    fail = false;
    now = 1000;
    expect((await cache.read(source)).reading.backlog).toBe(4);
    expect(source.calls).toBe(2);
  });

  it('remembers a failure for the ttl instead of hammering the source', async () => {
    let now = 0;
    const source = fakeSource(async () => {
      throw new SourceNotFound('no such queue');
    });
    const cache = new ReadCache({ ttlMs: 1000, timeoutMs: 1000, now: () => now });
    await expect(cache.read(source)).rejects.toBeInstanceOf(SourceNotFound);
    await expect(cache.read(source)).rejects.toBeInstanceOf(SourceNotFound);
    expect(source.calls).toBe(1);
    now = 1500;
    await expect(cache.read(source)).rejects.toBeInstanceOf(SourceNotFound);
    expect(source.calls).toBe(2);
  });

  it('times a query out, aborts it and reports DEADLINE_EXCEEDED', async () => {
    let aborted = false;
    const source = fakeSource(
      (signal) =>
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(signal.reason);
          });
        }),
    );
    const cache = new ReadCache({ ttlMs: 1000, timeoutMs: 20 });
    await expect(cache.read(source)).rejects.toBeInstanceOf(SourceTimeout);
    expect(aborted).toBe(true);
  });

  it('wraps untyped errors as UNAVAILABLE with the source label, credentials stripped', async () => {
    const source = fakeSource(async () => {
      throw new Error('connect ECONNREFUSED amqp://user:pw@10.0.0.1:5672');
    });
    const cache = new ReadCache({ ttlMs: 1000, timeoutMs: 1000 });
    const err = await cache.read(source).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceUnavailable);
    expect((err as Error).message).toBe('fake q: connect ECONNREFUSED amqp://user:***@10.0.0.1:5672');
  });

  it('keeps separate entries per identity', async () => {
    const a = fakeSource(async () => ({ backlog: 1 }), 'a');
    const b = fakeSource(async () => ({ backlog: 2 }), 'b');
    const cache = new ReadCache({ ttlMs: 1000, timeoutMs: 1000 });
    expect((await cache.read(a)).reading.backlog).toBe(1);
    expect((await cache.read(b)).reading.backlog).toBe(2);
    expect(cache.queryCount).toBe(2);
  });
  it('starts a query once its admission lets it, with its whole deadline after that, and says when it settled', async () => {
    let now = 0;
    let admitNow = false;
    let done = 0;
    let letIn: () => void = () => undefined;
    const admitted = new Promise<void>((resolve) => (letIn = resolve));
    const source = fakeSource(async () => ({ backlog: 3 }));
    const cache = new ReadCache({
      ttlMs: 1000,
      timeoutMs: 50,
      now: () => now,
      admission: { admit: () => (admitNow ? undefined : admitted), done: () => done++ },
    });
    const read = cache.read(source);
    // Waiting longer than the deadline: no query yet, and none timed out.
    await new Promise((r) => setTimeout(r, 80));
    expect(source.calls).toBe(0);
    expect(cache.queryCount).toBe(0);
    expect(done).toBe(0);
    letIn();
    expect((await read).reading.backlog).toBe(3);
    expect(source.calls).toBe(1);
    expect(done).toBe(1);
    // Admitted at once: no wait; a failed query is settled too.
    admitNow = true;
    now = 2000;
    expect((await cache.read(source)).reading.backlog).toBe(3);
    expect(source.calls).toBe(2);
    const failing = fakeSource(() => Promise.reject(new Error('refused')), 'other');
    await expect(cache.read(failing)).rejects.toThrow(/refused/);
    expect(done).toBe(3);
  });
});
