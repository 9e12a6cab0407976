// /explain builds its answer whole (some 1.2 KB a trigger): past EXPLAIN_MAX_TRIGGERS matching
// triggers it asks for a namespace instead of building megabytes (found by review: at 5,000
// triggers, 30 unread answers took the heap past the chart's limit). The explain CLI always names one.
import { describe, expect, it } from 'vitest';
import { EXPLAIN_MAX_TRIGGERS } from '../../src/server/http.ts';
import { SourceUnavailable } from '../../src/errors.ts';
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

describe('/explain counts every entry', () => {
  // Found by review: only triggers with a decision counted, and a broker down at start (every
  // trigger failed before its first answer) or thousands of refusals built the answer whole.
  it('counts triggers that never got an answer and refused metadata against the limit', async () => {
    const driver = fakeRabbitDriver(async () => {
      throw new SourceUnavailable('rabbitmq queue "jobs": connection refused');
    });
    await using t = await startTestScaler({}, { drivers: () => [driver as SourceDriver] });
    const metadata = { 'rabbitmq.host': 'amqp://rabbit:5672', 'rabbitmq.queueName': 'jobs' };
    const half = EXPLAIN_MAX_TRIGGERS / 2;
    const settle = (p: Promise<unknown>) => p.then(noop, noop);
    for (let i = 0; i < half; i += 50)
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => [
          settle(t.client.getMetrics(ref(metadata, `down-${i + j}`, 'many'))),
          settle(t.client.getMetrics(ref({ ...metadata, drainSeconds: 'ten' }, `refused-${i + j}`, 'many'))),
        ]).flat(),
      );
    await settle(t.client.getMetrics(ref(metadata, 'one-more', 'many')));
    const all = await fetch(`http://127.0.0.1:${t.scaler.metricsPort}/explain`);
    expect(all.status).toBe(400);
    expect(await all.text()).toMatch(/^501 triggers match; at most 500/);
  });
});

function noop(): void {}
