// Wake latency: a message published into an empty queue -> `true` on an open StreamIsActive.
// Each try has its own fresh queue and ScaledObject (keepWarm 0), so it starts inactive, and
// publishes at a random phase of the stream's check interval.
import * as grpc from '@grpc/grpc-js';
import { ExternalScalerClient } from '../../src/server/protocol.ts';
import type { BenchBroker } from './rabbit.ts';
import { Samples, summarize, type LatencySummary } from './stats.ts';
import { NAMESPACE } from './triggers.ts';

export interface WakeResult {
  readonly tries: number;
  readonly failures: number;
  readonly latency: LatencySummary;
}

interface StreamClient extends grpc.Client {
  StreamIsActive: (request: unknown) => grpc.ClientReadableStream<{ result: boolean }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Next `data` of the stream, or an error after timeoutMs. */
function nextAnswer(stream: grpc.ClientReadableStream<{ result: boolean }>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onData = (m: { result: boolean }) => {
      cleanup();
      resolve(m.result);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('error', onError);
    };
    stream.on('data', onData);
    stream.on('error', onError);
  });
}

export async function measureWake(options: {
  target: string;
  broker: BenchBroker;
  rabbitmqUrl: string;
  runId: string;
  tries: number;
  parallel: number;
  streamIntervalMs: number;
  log: (line: string) => void;
}): Promise<WakeResult> {
  const client = new ExternalScalerClient(options.target, grpc.credentials.createInsecure()) as unknown as StreamClient;
  const samples = new Samples();
  let failures = 0;
  let next = 0;
  const one = async (i: number) => {
    const queue = `bench-${options.runId}-wake${i}`;
    await options.broker.declare(queue);
    const stream = client.StreamIsActive({
      name: `bench-wake-${options.runId}-${i}`,
      namespace: NAMESPACE,
      scalerMetadata: { 'rabbitmq.host': options.rabbitmqUrl, 'rabbitmq.queueName': queue, keepWarm: '0' },
    });
    stream.on('error', () => undefined);
    try {
      if ((await nextAnswer(stream, 10_000)) !== false) throw new Error('an empty queue answered true');
      await sleep(Math.random() * options.streamIntervalMs);
      const publishedMs = performance.now();
      const answer = nextAnswer(stream, 15_000);
      await options.broker.publish(queue);
      if ((await answer) !== true) throw new Error('stream sent false after the publish');
      samples.push(performance.now() - publishedMs);
    } catch (err) {
      failures++;
      options.log(`wake try ${i} failed: ${String(err)}`);
    } finally {
      stream.cancel();
      await options.broker.deleteQueue(queue).catch(() => undefined);
    }
  };
  const worker = async () => {
    while (next < options.tries) await one(next++);
  };
  await Promise.all(Array.from({ length: options.parallel }, worker));
  client.close();
  return { tries: options.tries, failures, latency: summarize(samples.values()) };
}
