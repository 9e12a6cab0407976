// The example worker (examples/worker/worker.mjs) against the real RabbitMQ, as users copy it: it
// consumes and acks, comes back after the broker closes its connection (a broker restart) keeping
// its model, requeues a failed request once and then drops it, drains on SIGTERM, and goes at once
// when stopped while its model loads (found by review: it lost SIGTERM then, died with the
// broker, and an inference error crashed it).
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import amqplib, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, stopWithSigterm } from '../support/process.ts';
import { RabbitAdmin } from '../support/rabbitmqAdmin.ts';
import { eventually, requireService } from '../support/scaler.ts';

const workerFile = fileURLToPath(new URL('../../examples/worker/worker.mjs', import.meta.url));
const admin = new RabbitAdmin(requireService('RABBITMQ_MANAGEMENT_URL'));
const user = `kis-worker-${randomUUID().slice(0, 8)}`;
const queue = `kis-worker-${randomUUID().slice(0, 8)}`;
let connection: ChannelModel;
let channel: ConfirmChannel;

beforeAll(async () => {
  await admin.setUser(user, 'worker-pw');
  await admin.grant(user);
  connection = await amqplib.connect(requireService('RABBITMQ_URL'));
  channel = await connection.createConfirmChannel();
});

afterAll(async () => {
  await channel?.deleteQueue(queue).catch(() => undefined);
  await connection?.close().catch(() => undefined);
  await admin.deleteUser(user);
});

/** The worker as its image runs it, as the test's broker user; its log lines as objects. */
async function startWorker(env: Record<string, string> = {}) {
  const url = new URL(requireService('RABBITMQ_URL'));
  url.username = user;
  url.password = 'worker-pw';
  const child = spawn(process.execPath, [workerFile], {
    env: {
      PATH: process.env.PATH,
      RABBITMQ_URL: url.toString(),
      QUEUE: queue,
      MODEL_LOAD_SECONDS: '0',
      SERVICE_MS: '20',
      CONCURRENCY: '2',
      PORT: String(await freePort()),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcessByStdio<null, Readable, Readable>;
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; redelivered?: boolean });
  const logged = (msg: string) => lines().filter((l) => l.msg === msg);
  return { child, exited, lines, logged, output: () => out };
}

/** Messages ready in the queue and consumers on it, as the broker says at once (a passive declare). */
const queueNow = () => channel.checkQueue(queue);

async function publish(bodies: readonly string[]): Promise<void> {
  for (const body of bodies) channel.sendToQueue(queue, Buffer.from(body));
  await channel.waitForConfirms();
}

describe('the example worker against a real RabbitMQ', () => {
  it('consumes, comes back after the broker closes its connection, requeues a failure once, and drains on SIGTERM', async () => {
    const worker = await startWorker();
    try {
      await eventually(async () => (worker.logged('consuming').length === 1 ? true : undefined), 15_000);
      await publish(Array.from({ length: 10 }, (_, i) => `job ${i}`));
      await eventually(async () => ((await queueNow()).messageCount === 0 ? true : undefined), 10_000);

      // The broker closes the connection, as it does when it shuts down: the worker consumes again.
      // (The management API lists a connection at its next statistics emission.)
      await eventually(
        async () => ((await admin.closeConnections(user, 'broker restart (test)')) === 1 ? true : undefined),
        15_000,
      );
      await eventually(async () => (worker.logged('consuming').length === 2 ? true : undefined), 15_000);
      expect((await queueNow()).consumerCount).toBe(1);
      await publish(Array.from({ length: 5 }, (_, i) => `after ${i}`));
      await eventually(async () => ((await queueNow()).messageCount === 0 ? true : undefined), 10_000);

      // A request that fails: requeued once, then dropped, the worker still up.
      await publish(['{"fail":true}']);
      await eventually(async () => (worker.logged('request failed').length === 2 ? true : undefined), 10_000);
      expect(worker.logged('request failed').map((l) => l.redelivered)).toEqual([false, true]);
      expect(worker.child.exitCode).toBeNull();

      const { code } = await stopWithSigterm(worker.child, worker.exited);
      expect(code).toBe(0);
      expect(worker.logged('stopped')).toHaveLength(1);
    } finally {
      worker.child.kill('SIGKILL');
    }
  });

  it('on SIGTERM finishes the requests it has started before it exits; what it had not started goes back to the queue', async () => {
    // Service times are exponential: a mean of 1 s keeps them at work when SIGTERM comes, and each
    // (all but one run in thousands) within the 8 s stopWithSigterm waits.
    const worker = await startWorker({ SERVICE_MS: '1000' });
    try {
      await eventually(async () => (worker.logged('consuming').length === 1 ? true : undefined), 15_000);
      await publish(['slow 1', 'slow 2']);
      // Both delivered (none ready); one may not have reached its handler yet when SIGTERM comes.
      await eventually(async () => ((await queueNow()).messageCount === 0 ? true : undefined), 10_000);
      const { code } = await stopWithSigterm(worker.child, worker.exited);
      expect(code).toBe(0);
      const started = Number(
        /"msg":"stopping: no new requests, finishing in-flight ones".*"inFlight":(\d)/.exec(worker.output())?.[1],
      );
      expect(started).toBeGreaterThanOrEqual(1);
      // What it started was acknowledged before it went (a worker that exited with them would have
      // them ready again); what it had not is the broker's again, for another replica.
      expect((await queueNow()).messageCount).toBe(2 - started);
    } finally {
      worker.child.kill('SIGKILL');
    }
  });

  it('has its SIGTERM handler before amqplib loads, and goes at once, exit 0, when stopped while its model loads', async () => {
    const probe = fileURLToPath(new URL('../support/signalProbe.mjs', import.meta.url));
    const worker = await startWorker({
      MODEL_LOAD_SECONDS: '60',
      NODE_OPTIONS: `--import=${probe}`,
      SIGNAL_PROBE_MODULE: 'amqplib',
    });
    try {
      await eventually(async () => (worker.output().includes('loading model') ? true : undefined), 10_000);
      // Node as a container's PID 1 drops a signal it has no handler for.
      expect(worker.output()).toContain('signal probe: amqplib loads with 1 SIGTERM listeners');
      const { code, ms } = await stopWithSigterm(worker.child, worker.exited);
      expect(code).toBe(0);
      expect(ms).toBeLessThan(2000);
      expect(worker.output()).toContain('stopping before consuming: exiting');
    } finally {
      worker.child.kill('SIGKILL');
    }
  });

  it('refuses a concurrency of 0 (prefetch 0 is no limit: it would take the whole queue) before loading its model', async () => {
    const worker = await startWorker({ CONCURRENCY: '0' });
    expect(await worker.exited).toBe(2);
    expect(worker.output()).toContain('CONCURRENCY: got "0"; want an integer >= 1');
    expect(worker.output()).not.toContain('loading model');
  });
});
