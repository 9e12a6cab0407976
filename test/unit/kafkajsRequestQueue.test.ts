import { afterEach, describe, expect, it } from 'vitest';
import { RequestQueue, patchIdleRequestQueue } from '../../src/sources/kafkajsRequestQueue.ts';

interface Queue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: unknown;
  checkPendingRequests(): void;
  destroy(): void;
}

const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const queues: Queue[] = [];
const queue = (): Queue => {
  const Ctor = RequestQueue as unknown as new (options: object) => Queue;
  const q = new Ctor({ maxInFlightRequests: null, requestTimeout: 30_000, clientId: 'test', broker: 'b:9092', logger });
  queues.push(q);
  return q;
};

afterEach(() => {
  for (const q of queues.splice(0)) q.destroy();
});

describe("kafkajs's request queue, patched (kafkajsRequestQueue.ts)", () => {
  patchIdleRequestQueue();
  patchIdleRequestQueue(); // idempotent

  it.each([
    // pending requests, throttled for (ms), whether a check is scheduled
    { pending: 0, throttledMs: undefined, scheduled: false },
    { pending: 0, throttledMs: 500, scheduled: false },
    { pending: 1, throttledMs: 500, scheduled: true },
  ])('$pending pending, throttled $throttledMs ms: check scheduled $scheduled', ({ pending, throttledMs, scheduled }) => {
    const q = queue();
    if (throttledMs !== undefined) q.throttledUntil = Date.now() + throttledMs;
    // A stand-in that stays pending: the queue only sends while not throttled, and sends nothing here.
    for (let i = 0; i < pending; i++) q.pending.push({ send: () => undefined });
    q.checkPendingRequests();
    expect(q.throttleCheckTimeoutId !== null).toBe(scheduled);
  });
});
