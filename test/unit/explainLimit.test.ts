// /explain builds its answer whole (some 1.2 KB a trigger): past EXPLAIN_MAX_TRIGGERS matching
// triggers it asks for a namespace instead of building megabytes (found by review: at 5,000
// triggers, 30 unread answers took the heap past the chart's limit). The explain CLI always names one.
import { describe, expect, it } from 'vitest';
import { EXPLAIN_MAX_TRIGGERS } from '../../src/server/http.ts';
import type { SourceDriver } from '../../src/sources/source.ts';
import { fakeRabbitDriver } from '../support/fakeDriver.ts';
import { ref, startTestScaler } from '../support/scaler.ts';

describe('/explain', () => {
  it(`answers at most ${EXPLAIN_MAX_TRIGGERS} triggers, and asks for a namespace past that`, async () => {
    const driver = fakeRabbitDriver(async () => ({ backlog: 1 }));
    await using t = await startTestScaler({}, { drivers: () => [driver as SourceDriver] });
    const metadata = { 'rabbitmq.host': 'amqp://rabbit:5672', 'rabbitmq.queueName': 'jobs' };
    const ask = (i: number) => t.client.getMetrics(ref(metadata, `so-${i}`, i === 0 ? 'one' : 'many'));
    for (let i = 0; i <= EXPLAIN_MAX_TRIGGERS; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => ask(i + j + 1)));
    await ask(0);
    const explain = (query: string) => fetch(`http://127.0.0.1:${t.scaler.metricsPort}/explain${query}`);
    const all = await explain('');
    expect(all.status).toBe(400);
    expect(await all.text()).toMatch(/^\d+ triggers match; at most 500 in one answer: add \?namespace= \(and \?name=\)\n$/);
    const one = await explain('?namespace=one');
    expect(one.status).toBe(200);
    expect(((await one.json()) as unknown[]).length).toBe(1);
  });
});
