// The abusive clients of `npm run bench:abuse`, run as a child process so that their work does not
// slow the probe that measures the scaler, and so that killing the child makes its connections
// vanish the way a crashed client's do (the kernel closes the sockets; no gRPC goodbye).
// argv[2] is a JSON Plan; progress goes to stdout as one JSON line per event.
import * as grpc from '@grpc/grpc-js';
import {
  ExternalScalerClient,
  type GetMetricSpecResponse,
  type IsActiveResponse,
  type ScaledObjectRef,
} from '../../src/server/protocol.ts';

export type Plan =
  /** `count` StreamIsActive streams on one connection, none of them ever read. */
  | { readonly kind: 'unreadStreams'; readonly count: number; readonly ref: ScaledObjectRef }
  /** `clients` connections, each with StreamIsActive and StreamMetricSpec open, then killed. */
  | { readonly kind: 'vanishingClients'; readonly clients: number; readonly ref: ScaledObjectRef }
  /**
   * `count` GetMetricSpec calls of `bytes` each, `concurrency` at a time, distinct names; the bytes
   * in an unknown metadata key, or (`inName`) in the ScaledObject's name.
   */
  | {
      readonly kind: 'largeMessages';
      readonly count: number;
      readonly bytes: number;
      readonly concurrency: number;
      readonly ref: ScaledObjectRef;
      readonly inName?: boolean;
    }
  /** IsActive on queues `${queuePrefix}-0` ... (one ScaledObject each), `concurrency` at a time. */
  | {
      readonly kind: 'manyQueues';
      readonly count: number;
      readonly queuePrefix: string;
      readonly ref: ScaledObjectRef;
      readonly concurrency: number;
    };

export type AbuseEvent =
  | { readonly event: 'ready'; readonly opened: number; readonly failed: number }
  | { readonly event: 'done'; readonly codes: Record<string, number>; readonly trueCount?: number; readonly tookMs?: number };

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

function connect(address: string): Client {
  // A subchannel pool of its own: one TCP connection per client, as separate KEDA pods would have.
  return new ExternalScalerClient(address, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.max_send_message_length': -1,
  }) as unknown as Client;
}

function stream<T>(client: Client, method: string, ref: ScaledObjectRef): grpc.ClientReadableStream<T> {
  return (client[method] as (r: unknown) => grpc.ClientReadableStream<T>).call(client, ref);
}

/** Resolves when the server has answered the call's headers (the stream is open there) or failed it. */
function opened(call: grpc.ClientReadableStream<unknown>): Promise<boolean> {
  return new Promise((resolve) => {
    call.once('metadata', () => resolve(true));
    call.once('error', () => resolve(false));
  });
}

function emit(event: AbuseEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function codeName(code: number): string {
  return grpc.status[code] ?? String(code);
}

async function unreadStreams(address: string, plan: Extract<Plan, { kind: 'unreadStreams' }>): Promise<void> {
  const client = connect(address);
  // No 'data' listener: the streams stay paused and nothing is read from them.
  const calls = Array.from({ length: plan.count }, () => stream<IsActiveResponse>(client, 'StreamIsActive', plan.ref));
  const results = await Promise.all(calls.map(opened));
  emit({ event: 'ready', opened: results.filter(Boolean).length, failed: results.filter((ok) => !ok).length });
}

async function vanishingClients(address: string, plan: Extract<Plan, { kind: 'vanishingClients' }>): Promise<void> {
  const calls: grpc.ClientReadableStream<unknown>[] = [];
  for (let i = 0; i < plan.clients; i++) {
    const client = connect(address);
    calls.push(stream<IsActiveResponse>(client, 'StreamIsActive', plan.ref));
    const spec = stream<GetMetricSpecResponse>(client, 'StreamMetricSpec', plan.ref);
    spec.on('data', () => undefined);
    calls.push(spec);
  }
  const results = await Promise.all(calls.map(opened));
  emit({ event: 'ready', opened: results.filter(Boolean).length, failed: results.filter((ok) => !ok).length });
}

async function largeMessages(address: string, plan: Extract<Plan, { kind: 'largeMessages' }>): Promise<void> {
  const client = connect(address);
  const codes: Record<string, number> = {};
  const value = 'x'.repeat(plan.bytes);
  let next = 0;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      // A distinct name each time: nothing the server remembers can be reused.
      const ref = plan.inName
        ? { ...plan.ref, name: `${plan.ref.name}-${i}-${value}` }
        : { ...plan.ref, name: `${plan.ref.name}-${i}`, scalerMetadata: { ...plan.ref.scalerMetadata, padding: value } };
      const call = client.GetMetricSpec as (r: unknown, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void;
      call.call(client, ref, { deadline: Date.now() + 30_000 }, (err) => {
        const name = err === null ? 'OK' : codeName(err.code);
        codes[name] = (codes[name] ?? 0) + 1;
        resolve();
      });
    });
  const worker = async () => {
    while (next < plan.count) await one(next++);
  };
  await Promise.all(Array.from({ length: plan.concurrency }, worker));
  emit({ event: 'done', codes });
  client.close();
}

async function manyQueues(address: string, plan: Extract<Plan, { kind: 'manyQueues' }>): Promise<void> {
  const client = connect(address);
  const startedMs = performance.now();
  const codes: Record<string, number> = {};
  let trueCount = 0;
  let next = 0;
  const call = client.IsActive as (
    r: unknown,
    o: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res: IsActiveResponse) => void,
  ) => void;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const ref = {
        ...plan.ref,
        name: `${plan.ref.name}-${i}`,
        scalerMetadata: { ...plan.ref.scalerMetadata, 'rabbitmq.queueName': `${plan.queuePrefix}-${i}` },
      };
      call.call(client, ref, { deadline: Date.now() + 10_000 }, (err, answer) => {
        const name = err === null ? 'OK' : codeName(err.code);
        codes[name] = (codes[name] ?? 0) + 1;
        if (err === null && answer.result) trueCount++;
        resolve();
      });
    });
  const worker = async () => {
    while (next < plan.count) await one(next++);
  };
  await Promise.all(Array.from({ length: plan.concurrency }, worker));
  emit({ event: 'done', codes, trueCount, tookMs: Math.round(performance.now() - startedMs) });
  client.close();
}

async function main(): Promise<void> {
  const [address, json] = [process.argv[2], process.argv[3]];
  if (address === undefined || json === undefined) throw new Error('usage: abuser.ts ADDRESS PLAN_JSON');
  const plan = JSON.parse(json) as Plan;
  if (plan.kind === 'unreadStreams') await unreadStreams(address, plan);
  else if (plan.kind === 'vanishingClients') await vanishingClients(address, plan);
  else if (plan.kind === 'largeMessages') await largeMessages(address, plan);
  else await manyQueues(address, plan);
}

await main();
