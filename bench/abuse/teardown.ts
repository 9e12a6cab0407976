// node bench/abuse/teardown.ts [--streams N[,N...]] [--runs N]
// What a client with thousands of open streams costs the server's event loop when it goes away,
// without this scaler: a bare Node HTTP/2 server (each stream answered with headers and a byte,
// a `close` listener) and a bare grpc-js server (StreamIsActive writing one answer, a `cancelled`
// listener). Each run is a new server process (its HTTP/2 teardown code as cold as a scaler's that
// never saw a client go with thousands of streams); a child of it opens the streams on one
// connection and is killed (SIGKILL: the kernel closes its socket, as for a crashed KEDA); the
// longest gap between 1 ms timers in the 2 s after is the stall. bench:abuse measures the scaler
// itself (docs/reliability.md, "Abuse").
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import http2 from 'node:http2';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { ExternalScalerClient, type ScaledObjectRef, externalScalerService } from '../../src/server/protocol.ts';
import { LoopStall } from '../server/loopStall.ts';

type Mode = 'http2' | 'grpc-js';
const MODES: readonly Mode[] = ['http2', 'grpc-js'];

/** The child: opens `n` streams on one connection to `port`, says so once each has its first answer, and waits to be killed. */
function client(mode: Mode, port: number, n: number): void {
  let answered = 0;
  const one = () => {
    if (++answered === n) process.send?.('ready');
  };
  if (mode === 'http2') {
    const session = http2.connect(`http://127.0.0.1:${port}`, { peerMaxConcurrentStreams: n + 100 });
    for (let i = 0; i < n; i++) session.request({ ':path': '/', ':method': 'POST' }).once('response', one);
    return;
  }
  const stub = new ExternalScalerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
    StreamIsActive(ref: ScaledObjectRef): grpc.ClientReadableStream<unknown>;
  };
  for (let i = 0; i < n; i++) {
    const call = stub.StreamIsActive({ name: `so-${i}`, namespace: 'bench', scalerMetadata: {} });
    call.once('data', one);
    call.on('error', () => {});
  }
}

/** A server of `mode` that holds every stream; its port, and how many streams it saw close. */
async function serve(mode: Mode, n: number): Promise<{ port: number; closed: () => number; stop: () => void }> {
  let closed = 0;
  if (mode === 'http2') {
    const server = http2.createServer({ settings: { maxConcurrentStreams: n + 100 } });
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.write('x');
      stream.on('close', () => closed++);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as { port: number }).port, closed: () => closed, stop: () => server.close() };
  }
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': n + 100, 'grpc.enable_channelz': 0 });
  const unary: grpc.handleUnaryCall<unknown, unknown> = (_call, callback) => callback(null, {});
  server.addService(externalScalerService, {
    StreamIsActive(call: grpc.ServerWritableStream<ScaledObjectRef, unknown>) {
      call.write({ result: true });
      call.on('cancelled', () => closed++);
    },
    IsActive: unary,
    GetMetricSpec: unary,
    GetMetrics: unary,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, closed: () => closed, stop: () => server.forceShutdown() };
}

interface Stall {
  readonly stallMs: number;
  readonly closed: number;
}

/** One run: the longest stall of this process's event loop while `n` streams of a killed client are released. */
async function run(mode: Mode, n: number): Promise<Stall> {
  const server = await serve(mode, n);
  const child: ChildProcess = fork(new URL(import.meta.url), ['--client', mode, String(server.port), String(n)]);
  await new Promise((resolve) => child.once('message', resolve));
  await new Promise((resolve) => setTimeout(resolve, 500));
  const stall = new LoopStall();
  await new Promise((resolve) => setTimeout(resolve, 300));
  stall.reset();
  child.kill('SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const stallMs = stall.stop();
  server.stop();
  return { stallMs, closed: server.closed() };
}

/** A run in a new server process. */
async function inNewProcess(mode: Mode, n: number): Promise<Stall> {
  const server = fork(new URL(import.meta.url), ['--server', mode, String(n)]);
  const [stall] = (await once(server, 'message')) as [Stall];
  await once(server, 'exit');
  return stall;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { streams: { type: 'string', default: '1000,2000,5000' }, runs: { type: 'string', default: '3' } },
  });
  const counts = values.streams.split(',').map(Number);
  const runs = Number(values.runs);
  if (counts.some((c) => !Number.isSafeInteger(c) || c < 1) || !Number.isSafeInteger(runs) || runs < 1)
    throw new Error('want --streams N[,N...] and --runs N, whole numbers from 1');
  console.log(
    `Node ${process.version}; the longest event-loop stall (ms) when a client holding N streams is killed, ${runs} runs each\n`,
  );
  console.log('| server | streams | stall per run (ms) | released |');
  console.log('|---|--:|--:|--:|');
  for (const mode of MODES)
    for (const n of counts) {
      const results: Stall[] = [];
      for (let i = 0; i < runs; i++) results.push(await inNewProcess(mode, n));
      console.log(
        `| ${mode} | ${n} | ${results.map((r) => r.stallMs.toFixed(1)).join(', ')} | ${results.map((r) => r.closed).join(', ')} |`,
      );
    }
}

if (process.argv[2] === '--client') {
  client(process.argv[3] as Mode, Number(process.argv[4]), Number(process.argv[5]));
} else if (process.argv[2] === '--server') {
  const stall = await run(process.argv[3] as Mode, Number(process.argv[4]));
  process.send?.(stall, () => process.exit(0));
} else {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
