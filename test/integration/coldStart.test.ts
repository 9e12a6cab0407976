// The learned cold start against a real RabbitMQ: the scaler asks for replicas, consumers attach
// to the queue some seconds later (replicas that finished loading), and the scaler's explanation
// says it learned the delay from the broker's consumer count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitFixture } from '../support/rabbitmq.ts';
import { type TestScaler, eventually, ref, requireService, startTestScaler } from '../support/scaler.ts';

let rabbit: RabbitFixture;
let t: TestScaler;

beforeAll(async () => {
  rabbit = await RabbitFixture.connect(requireService('RABBITMQ_URL'));
  t = await startTestScaler();
});

afterAll(async () => {
  await t?.[Symbol.asyncDispose]();
  await rabbit?.[Symbol.asyncDispose]();
});

async function details(namespace: string, name: string): Promise<Record<string, unknown>> {
  const url = new URL(`http://127.0.0.1:${t.scaler.metricsPort}/explain`);
  url.searchParams.set('namespace', namespace);
  url.searchParams.set('name', name);
  const [view] = (await (await fetch(url)).json()) as { explanation: { details: Record<string, unknown> } }[];
  return view!.explanation.details;
}

describe('coldStartSeconds auto', () => {
  it('learns the delay from the replicas asked for to the consumers the broker sees', async () => {
    const queue = await rabbit.queue(50);
    const so = ref({ 'rabbitmq.host': requireService('RABBITMQ_URL'), 'rabbitmq.queueName': queue }, 'cold', 'learn');
    // KEDA's rule before anything is known: 50 / 5 = 10 replicas asked for, none serving.
    const asked = await t.client.getMetrics(so);
    expect(asked.metricValues[0]?.metricValueFloat).toBe(10);
    expect(await details('learn', 'cold')).toMatchObject({ coldStartSeconds: 60, coldStartSource: 'default' });
    const askedAt = Date.now();

    // Two replicas finish loading 2 s later and subscribe.
    await new Promise((r) => setTimeout(r, 2000));
    const release = [await rabbit.holdUnacked(queue, 1), await rabbit.holdUnacked(queue, 1)];
    const servingAfterS = (Date.now() - askedAt) / 1000;
    try {
      // Two samples of about 2 s, weighed against the 60 s prior: 60 + (2 / 20) * (~2 - 60).
      const learned = await eventually(async () => {
        await t.client.getMetrics(so);
        const d = await details('learn', 'cold');
        return d.coldStartSource === 'learned' ? d : undefined;
      });
      const seconds = Number(learned.coldStartSeconds);
      expect(seconds).toBeGreaterThan(60 + 0.1 * (servingAfterS - 1 - 60));
      expect(seconds).toBeLessThan(60 + 0.1 * (servingAfterS + 2 - 60));
    } finally {
      for (const close of release) await close();
    }
  }, 30_000);

  it('keeps a configured coldStartSeconds, and says so', async () => {
    const queue = await rabbit.queue(5);
    const so = ref(
      { 'rabbitmq.host': requireService('RABBITMQ_URL'), 'rabbitmq.queueName': queue, coldStartSeconds: '45' },
      'fixed',
      'learn',
    );
    await t.client.getMetrics(so);
    expect(await details('learn', 'fixed')).toMatchObject({ coldStartSeconds: 45, coldStartSource: 'configured' });
  });
});
