// The `explain` CLI against a real running scaler that has answered KEDA for a RabbitMQ trigger, and
// what /explain says of the cold start the scaler learns from the broker's consumers.
import { execFile } from 'node:child_process';
import { status } from '@grpc/grpc-js';
import { type AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitFixture } from '../support/rabbitmq.ts';
import { type TestScaler, eventually, explainViews, grpcError, ref, requireService, startTestScaler } from '../support/scaler.ts';
import { TcpProxy } from '../support/tcpProxy.ts';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../bin/keda-inference-scaler.mjs', import.meta.url));

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

const explain = (...args: string[]) =>
  run(process.execPath, [cli, 'explain', '--url', `http://127.0.0.1:${t.scaler.metricsPort}`, ...args], { timeout: 15_000 });

describe('keda-inference-scaler explain', () => {
  // Found by review: the path of --url was dropped, so a scaler behind kubectl proxy's service path got /explain.
  it.each([
    '/api/v1/namespaces/keda/services/kis:metrics/proxy',
    '/api/v1/namespaces/keda/services/kis:metrics/proxy/',
    '/api/v1/namespaces/keda/services/kis:metrics/proxy/explain',
  ])('keeps the path of --url %s (a scaler behind a path prefix)', async (prefix) => {
    const asked: string[] = [];
    const server = createServer((req, res) => {
      asked.push(req.url ?? '');
      res.setHeader('content-type', 'application/json').end('[]');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const done = run(process.execPath, [
        cli,
        'explain',
        '--url',
        `http://127.0.0.1:${port}${prefix}`,
        '--namespace',
        'ns',
        '--name',
        'so',
      ]);
      await expect(done).rejects.toMatchObject({ code: 3, stdout: expect.stringContaining('no decision yet for ns/so') });
      expect(asked).toEqual(['/api/v1/namespaces/keda/services/kis:metrics/proxy/explain?namespace=ns&name=so']);
    } finally {
      server.close();
    }
  });

  it('prints the inputs, each demand, the winner and why the trigger is active', async () => {
    const queue = await rabbit.queue(23);
    const metadata = { 'rabbitmq.host': requireService('RABBITMQ_URL'), 'rabbitmq.queueName': queue, keepWarm: '0' };
    const metrics = await t.client.getMetrics(ref(metadata, 'explain-so', 'explain-ns'));
    expect(metrics.metricValues[0]?.metricValueFloat).toBe(5);

    const { stdout } = await explain('--namespace', 'explain-ns', '--name', 'explain-so');
    expect(stdout).toContain('explain-ns/explain-so');
    expect(stdout).toContain('desired replicas 5');
    expect(stdout).toContain('active true');
    expect(stdout).toContain('backlog = 23');
    expect(stdout).toMatch(/\* backlog = 5/);
    expect(stdout).toContain('winner: backlog');
    expect(stdout).toContain('why active: backlog 23 > activationBacklog 0');
    expect(stdout).toMatch(/\n {2}last asked: \d{4}-\d\d-\d\dT[\d:.]+Z \(\d+ s before this answer\)\n/);
    expect(stdout).not.toContain(requireService('RABBITMQ_URL'));

    const json = JSON.parse((await explain('--namespace', 'explain-ns', '--name', 'explain-so', '--json')).stdout) as {
      desiredReplicas: number;
    }[];
    expect(json.map((v) => v.desiredReplicas)).toEqual([5]);
  });

  it('names the model’s terms: waiting, throughput and where it came from, the priced steady fleet when T < C, the cold start', async () => {
    const queue = await rabbit.queue(23);
    const metadata = {
      'rabbitmq.host': requireService('RABBITMQ_URL'),
      'rabbitmq.queueName': queue,
      throughputPerReplica: '2',
      drainSeconds: '15',
      coldStartSeconds: '60',
    };
    await t.client.getMetrics(ref(metadata, 'explain-terms', 'explain-ns'));
    const { stdout } = await explain('--namespace', 'explain-ns', '--name', 'explain-terms');
    for (const term of [
      'waiting = 23',
      'throughputSource = configured',
      'serviceSeconds = 2.5',
      'slotsPerReplica = 5',
      'rateReplicas = ',
      'projectedBacklog = ',
      'noiseMessages = ',
      'keptNoiseMessages = ',
      'keepWarmSeconds = ',
      'coldStartSeconds = 60',
      'coldStartSource = configured',
    ]) {
      expect(stdout).toContain(term);
    }
  });

  it('shows the error KEDA got while a source cannot be read, above the decision before it, until a read succeeds', async () => {
    await using proxy = TcpProxy.forUrl(requireService('RABBITMQ_URL'));
    await proxy.start();
    const queue = await rabbit.queue(7);
    const so = ref(
      { 'rabbitmq.host': proxy.rewrite(requireService('RABBITMQ_URL')), 'rabbitmq.queueName': queue },
      'flaky',
      'explain-ns',
    );
    await t.client.getMetrics(so);
    await proxy.stop();
    // Past the cached reading (CACHE_TTL_MS 1000): the read fails, and KEDA gets the error.
    const failed = await eventually(async () => {
      const err = await grpcError(t.client.getMetrics(so));
      return err.code === status.UNAVAILABLE ? err : undefined;
    });
    const [view] = await explainViews(t.scaler.metricsPort, 'explain-ns', 'flaky');
    expect(view).toMatchObject({ desiredReplicas: 2, lastFailure: { code: 'UNAVAILABLE', message: failed.details } });
    expect(Date.now() - Date.parse(view!.lastFailure!.at)).toBeLessThan(10_000);
    const { stdout } = await explain('--namespace', 'explain-ns', '--name', 'flaky');
    expect(stdout).toContain(`last answer: UNAVAILABLE at ${view!.lastFailure!.at}: ${failed.details}`);
    expect(stdout).toContain('the decision below is the one before it');
    expect(stdout).toContain('desired replicas 2');
    expect(stdout).not.toContain(requireService('RABBITMQ_URL'));

    await proxy.start();
    await eventually(() => t.client.getMetrics(so));
    const [healed] = await explainViews(t.scaler.metricsPort, 'explain-ns', 'flaky');
    expect(healed!.lastFailure).toBeUndefined();
  });

  it('shows a trigger that never got an answer with its error alone', async () => {
    const so = ref(
      { 'rabbitmq.host': requireService('RABBITMQ_URL'), 'rabbitmq.queueName': 'no-such-queue-for-explain' },
      'missing',
      'explain-ns',
    );
    const err = await grpcError(t.client.getMetrics(so));
    expect(err.code).toBe(status.NOT_FOUND);
    const [view] = await explainViews(t.scaler.metricsPort, 'explain-ns', 'missing');
    expect(view).toMatchObject({
      desiredReplicas: null,
      explanation: null,
      lastFailure: { code: 'NOT_FOUND', message: err.details },
    });
    const { stdout } = await explain('--namespace', 'explain-ns', '--name', 'missing');
    expect(stdout).toContain('last answer: NOT_FOUND at ');
    expect(stdout).toContain('no decision yet: every answer so far was an error');
    expect(stdout).not.toContain('desired replicas');
  });

  // Found by review: refused metadata left no trace in /explain (nor in the log), and the CLI
  // said KEDA had not asked.
  it('shows metadata it refused, with the error KEDA got, until the ScaledObject is fixed', async () => {
    const bad = ref(
      { 'rabbitmq.host': requireService('RABBITMQ_URL'), 'rabbitmq.queueName': 'q', maxReplicas: 'zero' },
      'badmeta',
      'explain-ns',
    );
    const err = await grpcError(t.client.getMetrics(bad));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    await grpcError(t.client.isActive(bad));
    const [view, ...rest] = await explainViews(t.scaler.metricsPort, 'explain-ns', 'badmeta');
    expect(rest).toEqual([]);
    expect(view).toMatchObject({
      trigger: { namespace: 'explain-ns', name: 'badmeta' },
      refused: { code: 'INVALID_ARGUMENT', message: err.details, calls: 2 },
    });
    const { stdout } = await explain('--namespace', 'explain-ns', '--name', 'badmeta');
    expect(stdout).toContain('explain-ns/badmeta  trigger metadata refused');
    expect(stdout).toContain(`last answer: INVALID_ARGUMENT at `);
    expect(stdout).toContain('maxReplicas: got "zero"');
    // Fixed: the refusal is gone, and the trigger is explained as any other.
    const fixed = ref(
      { 'rabbitmq.host': requireService('RABBITMQ_URL'), 'rabbitmq.queueName': 'q', maxReplicas: '3' },
      'badmeta',
      'explain-ns',
    );
    await t.client.getMetrics(fixed).catch(() => undefined); // parsed: answered, or a source error
    const views = await explainViews(t.scaler.metricsPort, 'explain-ns', 'badmeta');
    expect(views.some((v) => 'refused' in v)).toBe(false);
  });

  it('says so, with exit code 3, for a ScaledObject it has not been asked about', async () => {
    const err = (await explain('--namespace', 'nowhere', '--name', 'nothing').catch((e: unknown) => e)) as {
      code: number;
      stdout: string;
    };
    expect(err.code).toBe(3);
    expect(err.stdout).toContain('no decision yet for nowhere/nothing');
  });

  it('fails with usage and exit code 2 on bad arguments', async () => {
    const err = (await run(process.execPath, [cli, 'explain', '--name', 'x']).catch((e: unknown) => e)) as {
      code: number;
      stderr: string;
    };
    expect(err.code).toBe(2);
    expect(err.stderr).toContain('usage: keda-inference-scaler explain');
  });

  // Found by review: the CLI printed "HTTP 400" alone, a stack trace for JSON that is no list, and
  // fetch's error for a URL with a password in it quoted the URL, password and all.
  it("says what a server that is not the scaler's answered, sends --url's user as basic auth, and echoes no password", async () => {
    const seen: (string | undefined)[] = [];
    const answers: Record<string, [number, string]> = {
      limited: [400, '612 triggers match; at most 500 in one answer: add ?namespace= (and ?name=)\n'],
      object: [200, '{"kind":"Status","code":403}'],
    };
    const server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      const [status, body] = answers[new URL(req.url ?? '/', 'http://x').searchParams.get('name') ?? ''] ?? [404, 'no'];
      res.writeHead(status).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://viewer:s3cr%40t-pw@127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const failed = async (name: string) =>
        (await run(process.execPath, [cli, 'explain', '--namespace', 'a', '--name', name, '--url', url]).catch(
          (e: unknown) => e,
        )) as { code: number; stderr: string };
      const limited = await failed('limited');
      expect(limited.code).toBe(1);
      expect(limited.stderr).toContain('HTTP 400: 612 triggers match; at most 500 in one answer: add ?namespace= (and ?name=)');
      const object = await failed('object');
      expect(object.code).toBe(1);
      expect(object.stderr).toContain("the answer is not a list of triggers: is --url the scaler's metrics port?");
      for (const err of [limited, object]) expect(err.stderr).not.toMatch(/s3cr|TypeError|\n\s+at /);
      const basic = `Basic ${Buffer.from('viewer:s3cr@t-pw').toString('base64')}`;
      expect(seen).toEqual([basic, basic]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('fails with exit code 2, not a stack trace, on a --url that is not an http(s) URL', async () => {
    const err = (await run(process.execPath, [
      cli,
      'explain',
      '--namespace',
      'a',
      '--name',
      'b',
      '--url',
      '127.0.0.1:8080',
    ]).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(2);
    expect(err.stderr).toContain('--url: want the scaler\'s metrics address as an http:// or https:// URL, got "127.0.0.1:8080"');
    expect(err.stderr).not.toMatch(/TypeError|\n\s+at /);
  });
});

async function details(namespace: string, name: string): Promise<Record<string, unknown>> {
  const [view] = await explainViews(t.scaler.metricsPort, namespace, name);
  return view!.explanation!.details;
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

/**
 * The explanation of a trigger on a queue of 12 whose one consumer holds 8 unacknowledged, with
 * `setting` added to its metadata, once the broker's statistics show the 8 and the consumer; the
 * broker's counts are checked to be the explanation's signals, as reported.
 */
async function explainHolding8(setting: Record<string, string>, name: string, namespace: string) {
  const queue = await rabbit.queue(12);
  const release = await rabbit.holdUnacked(queue, 8);
  try {
    const metadata = { 'rabbitmq.host': requireService('RABBITMQ_MANAGEMENT_URL'), 'rabbitmq.queueName': queue, ...setting };
    const so = ref(metadata, name, namespace);
    const view = await eventually(async () => {
      await t.client.getMetrics(so);
      const [v] = await explainViews(t.scaler.metricsPort, namespace, name);
      return v?.explanation?.signals.inFlight === 8 && v.explanation.signals.consumers === 1 ? v : undefined;
    });
    expect(view.explanation!.signals).toMatchObject({ backlog: 12, waiting: 4, inFlight: 8, consumers: 1 });
    return view.explanation!;
  } finally {
    await release();
  }
}

describe('concurrencyPerReplica', () => {
  it('counts the messages a consumer prefetched past it as waiting, and keeps what the broker reported', async () => {
    // One replica whose consumer prefetches 8 and serves 2 at once: the broker shows 8 in flight.
    const explanation = await explainHolding8({ concurrencyPerReplica: '2' }, 'prefetching', 'concurrency');
    expect(explanation.details.prefetchedWaiting).toBe(6);
  }, 30_000);
});

describe('acknowledgement before-work', () => {
  it('counts every message the consumers hold as waiting inside the replicas', async () => {
    // One replica whose consumer acknowledges a message as it starts it and holds 8 more: the
    // broker shows those 8 in flight, and none of the requests in service.
    const explanation = await explainHolding8({ acknowledgement: 'before-work' }, 'early-ack', 'acknowledgement');
    expect(explanation.details.prefetchedWaiting).toBe(8);
  }, 30_000);
});
