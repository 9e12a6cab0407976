// The scaler as a process, the way it runs in a pod: ports from the environment, health and
// reflection, JSON logs, and a clean stop on SIGTERM with a stream open.
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AddressInfo, type Socket, createServer as createNetServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitFixture } from '../support/rabbitmq.ts';
import { listServices } from '../support/reflection.ts';
import { ScalerProcess, shippedNodeArgs, spawnScaler, stopWithSigterm } from '../support/process.ts';
import { KedaClient, eventually, grpcError, ref, requireService } from '../support/scaler.ts';
import { TcpProxy } from '../support/tcpProxy.ts';

let scaler: ScalerProcess;
let rabbit: RabbitFixture;

beforeAll(async () => {
  rabbit = await RabbitFixture.connect(requireService('RABBITMQ_URL'));
  scaler = await ScalerProcess.start();
});

afterAll(async () => {
  await scaler?.kill();
  await rabbit?.[Symbol.asyncDispose]();
});

describe('the scaler process', () => {
  it('logs JSON lines', () => {
    const first = scaler.logs.split('\n').find((l) => l.includes('listening'))!;
    expect(JSON.parse(first)).toMatchObject({
      level: 'info',
      grpcPort: scaler.grpcPort,
      metricsPort: scaler.metricsPort,
      msg: 'keda-inference-scaler listening',
    });
  });

  it('runs with the node flags it ships with (node.flags, as npm start and the image run it)', () => {
    const argv = readFileSync(`/proc/${scaler.child.pid}/cmdline`, 'utf8').split('\0');
    expect(argv.slice(1, -2)).toEqual(shippedNodeArgs());
  });

  it('serves grpc.health.v1 for the whole server and for the ExternalScaler service', async () => {
    const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
    const client = new Health(`127.0.0.1:${scaler.grpcPort}`, grpc.credentials.createInsecure()) as unknown as {
      Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res: { status: string }) => void): void;
      close(): void;
    };
    for (const service of ['', 'externalscaler.ExternalScaler']) {
      const res = await new Promise<{ status: string }>((resolve, reject) =>
        client.Check({ service }, (e, r) => (e ? reject(e) : resolve(r))),
      );
      expect(res.status).toBe('SERVING');
    }
    client.close();
  });

  it('serves server reflection that lists the ExternalScaler service', async () => {
    const { code, names } = await listServices(`127.0.0.1:${scaler.grpcPort}`);
    expect(code).toBe(grpc.status.OK);
    expect(names).toContain('externalscaler.ExternalScaler');
    expect(names).toContain('grpc.health.v1.Health');
  });

  it('exits 1 and says why when it cannot start (a port taken), instead of staying up serving nothing', async () => {
    // Before: the failed start was an unhandled rejection, logged, and the process stayed up
    // without a server until something killed it.
    const start = ScalerProcess.start({ METRICS_PORT: String(scaler.metricsPort) });
    await expect(start).rejects.toThrow(
      /scaler exited 1: [\s\S]*"level":"fatal".*"err":"cannot listen on 127\.0\.0\.1:\d+ \(BIND_ADDRESS, METRICS_PORT\): .*EADDRINUSE.*"msg":"start failed"/,
    );
  });

  it('exits 2, as for any wrong setting, when STATE_STORE_TLS_CA_FILE is no CA bundle (found by review: it ran on, the store "down")', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kis-ca-'));
    try {
      writeFileSync(join(dir, 'garbage.crt'), 'not a certificate\n');
      const start = ScalerProcess.start({
        STATE_STORE_URL: 'rediss://127.0.0.1:1',
        STATE_STORE_TLS_CA_FILE: join(dir, 'garbage.crt'),
      });
      await expect(start).rejects.toThrow(
        /scaler exited 2: [\s\S]*"level":"fatal".*"err":"STATE_STORE_TLS_CA_FILE .*garbage\.crt: it holds no PEM certificate".*"msg":"start failed"/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names GRPC_PORT when the gRPC port is taken, and logs only JSON lines (grpc-js' own among them)", async () => {
    const failed = await ScalerProcess.start({ GRPC_PORT: String(scaler.grpcPort) }).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    const output = failed?.message.replace(/^scaler exited 1: /, '') ?? '';
    expect(output).toMatch(
      /"level":"fatal".*"err":"cannot listen on 127\.0\.0\.1:\d+ \(BIND_ADDRESS, GRPC_PORT\): .*EADDRINUSE.*"msg":"start failed"/,
    );
    const lines = output.trim().split('\n');
    for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expect(lines.some((l) => (JSON.parse(l) as { component?: string }).component === 'grpc-js')).toBe(true);
  });

  it('serves Prometheus metrics on METRICS_PORT', async () => {
    const res = await fetch(`http://127.0.0.1:${scaler.metricsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/keda_inference_scaler_process_resident_memory_bytes/);
    expect((await fetch(`http://127.0.0.1:${scaler.metricsPort}/readyz`)).status).toBe(200);
  });

  it('logs a source that fails once when it starts failing and once when it reads again, not at every read', async () => {
    await using proxy = TcpProxy.forUrl(requireService('RABBITMQ_URL'));
    await proxy.start();
    const queue = await rabbit.queue(2);
    const flaky = ref({ 'rabbitmq.host': proxy.rewrite(requireService('RABBITMQ_URL')), 'rabbitmq.queueName': queue }, 'flaky');
    await scaler.client.getMetrics(flaky);
    await proxy.stop();
    // Five reads, each after the cached reading expired (CACHE_TTL_MS 1000), every one failing.
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect((await grpcError(scaler.client.getMetrics(flaky))).code).toBe(grpc.status.UNAVAILABLE);
    }
    await proxy.start();
    await eventually(() => scaler.client.getMetrics(flaky));
    const sourceLines = () =>
      scaler.lines().filter((l) => String(l.msg).startsWith('source query') && String(l.source).includes(queue));
    // The child's stdout reaches the test a moment after the answer.
    const lines = await eventually(async () => (sourceLines().length >= 2 ? sourceLines() : undefined));
    expect(lines.map((l) => `${String(l.level)} ${String(l.msg)}`)).toEqual([
      'warn source query failed',
      'info source query recovered',
    ]);
    expect(lines[0]).toMatchObject({ code: 'UNAVAILABLE' });
    expect(lines[1]!.failures).toBeGreaterThanOrEqual(5);
  });

  it('stops cleanly on SIGTERM, ending open streams', async () => {
    const queue = await rabbit.queue(1);
    const client = new KedaClient(`127.0.0.1:${scaler.grpcPort}`);
    const stream = client.streamIsActive(ref({ 'rabbitmq.host': requireService('RABBITMQ_URL'), 'rabbitmq.queueName': queue }));
    const first = await new Promise<{ result: boolean }>((resolve, reject) => stream.once('data', resolve).once('error', reject));
    expect(first.result).toBe(true);
    const streamEnded = new Promise<string>((resolve) => {
      stream.on('end', () => resolve('end'));
      stream.on('error', (e: grpc.ServiceError) => resolve(`error ${e.code}`));
    });
    const exited = new Promise<number | null>((resolve) => scaler.child.once('exit', (code) => resolve(code)));
    const { code, ms } = await stopWithSigterm(scaler.child, exited);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5000);
    expect(await streamEnded).toBe('end');
    expect(scaler.logs).toMatch(/"msg":"keda-inference-scaler stopped"/);
    client.close();
  });

  // Found by review: pino's writer retried the last lines' write forever on a closed pipe (EPIPE),
  // and the process never ended, a second signal included.
  it('stops on SIGTERM when whatever read its stdout has gone', async () => {
    // No state store: its close takes long enough for pino to see the EPIPE of an earlier line.
    const child = spawnScaler({ STATE_STORE_URL: undefined }, 'ignore');
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let out = '';
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('listening')) resolve();
      }),
    );
    child.stdout.destroy(); // the reader goes: the scaler's next writes fail with EPIPE
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { code, ms } = await stopWithSigterm(child, exited);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5000);
  });

  // Found by review (fixed before this test): node as PID 1 ignored a signal that came while it started.
  it('exits 0 on SIGTERM while it starts (a state store that does not answer yet), serving nothing', async () => {
    // A store that accepts and never answers: the start waits for it, up to its bound.
    const sockets: Socket[] = [];
    let connected: () => void = () => undefined;
    const reached = new Promise<void>((resolve) => (connected = resolve));
    const store = createNetServer((socket) => {
      sockets.push(socket);
      connected();
    });
    await new Promise<void>((resolve) => store.listen(0, '127.0.0.1', resolve));
    try {
      const child = spawnScaler({ STATE_STORE_URL: `redis://127.0.0.1:${(store.address() as AddressInfo).port}` });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      await reached;
      const { code, ms } = await stopWithSigterm(child, exited);
      expect(code).toBe(0);
      expect(ms).toBeLessThan(3000);
      expect(out).toMatch(/"signal":"SIGTERM","msg":"signal while starting: exiting"/);
      expect(out).not.toContain('listening');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => store.close(() => resolve()));
    }
  });

  // Found by review: the handlers came after every module had loaded (half a second or more), and
  // node as PID 1 (the image's) drops a signal it has no handler for.
  it('has its SIGTERM handler before its modules load, and takes a SIGTERM then: exits 0 and says so', async () => {
    const probe = fileURLToPath(new URL('../support/signalProbe.mjs', import.meta.url));
    const child = spawnScaler({ NODE_OPTIONS: `--import=${probe}` });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const said = await eventually(async () => /signal probe: .*/.exec(err)?.[0], 10_000, 5);
    expect(said).toBe('signal probe: @grpc/grpc-js loads with 1 SIGTERM listeners');
    const { code } = await stopWithSigterm(child, exited);
    expect(code).toBe(0);
    expect(out).toMatch(/"signal":"SIGTERM","msg":"signal while starting: exiting"/);
    expect(out).not.toContain('listening');
  });

  // Found by review: Ctrl-C on `npm start` reaches node twice (the terminal's and npm's), which read
  // as a second signal and skipped the drain.
  it('takes the same signal twice within 250 ms as one (a Ctrl-C that npm passes on too): drains and exits 0', async () => {
    const running = await ScalerProcess.start();
    const exited = new Promise<number | null>((resolve) => running.child.once('exit', (code) => resolve(code)));
    running.child.kill('SIGINT');
    // The second once the first is handled (two sent at once merge while the first is pending).
    await eventually(async () => (running.logs.includes('"msg":"shutting down"') ? true : undefined), 5000, 1);
    running.child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(running.logs).toMatch(/"signal":"SIGINT","msg":"shutting down"/);
    expect(running.logs).toMatch(/"msg":"keda-inference-scaler stopped"/);
    expect(running.logs).not.toContain('second signal');
  });

  it("README's run command (npm start) stops the scaler when npm gets SIGTERM, leaving no process behind", async () => {
    // A shell between npm and node died on the signal and left the scaler running, orphaned.
    const npm = spawn('npm', ['start'], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { ...process.env, GRPC_PORT: '0', METRICS_PORT: '0', BIND_ADDRESS: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    npm.stdout.on('data', (d: Buffer) => (logs += d.toString()));
    npm.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
    const metricsPort = await eventually(async () => {
      const port = /"metricsPort":(\d+)/.exec(logs)?.[1];
      return port === undefined ? undefined : Number(port);
    }, 20_000);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(200);
    npm.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(logs).toMatch(/"signal":"SIGTERM","msg":"shutting down"/);
    expect(logs).toMatch(/"msg":"keda-inference-scaler stopped"/);
    await expect(fetch(`http://127.0.0.1:${metricsPort}/healthz`)).rejects.toThrow();
  });
});
