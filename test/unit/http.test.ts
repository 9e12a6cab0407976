import type { AddressInfo } from 'node:net';
import { request } from 'node:http';
import { connect } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine.ts';
import type { Decision } from '../../src/model/types.ts';
import { type HttpLimits, createHttpServer } from '../../src/server/http.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import type { Trigger } from '../../src/trigger/types.ts';

const servers: { close: () => void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** What the HTTP server logged (warn and above), as JSON lines. */
const logged: Record<string, unknown>[] = [];
const logger = pino({ level: 'warn' }, { write: (line: string) => logged.push(JSON.parse(line) as Record<string, unknown>) });
afterEach(() => {
  logged.length = 0;
});

/** A scaler's HTTP port whose metrics hold `triggers` evaluated triggers; /metrics reads no engine. */
async function serve(triggers: number, failAfterFirstChunk = false, limits?: HttpLimits): Promise<string> {
  const metrics = new ScalerMetrics(undefined, { defaultMetrics: false });
  const evaluations = Array.from({ length: triggers }, (_, i) => ({
    trigger: { id: `ns/so-${i}/h${i}`, namespace: 'ns', name: `so-${i}`, sources: [{ kind: 'rabbitmq' }] } as unknown as Trigger,
    decision: {
      desiredReplicas: 1 + (i % 3),
      active: true,
      explanation: { signals: { backlog: i }, demands: { backlog: 1 + (i % 3) }, winner: 'backlog', details: {} },
    } as unknown as Decision,
  }));
  metrics.observeTriggers(() => {
    if (failAfterFirstChunk) throw new Error('triggers unreadable');
    return evaluations;
  });
  const server = createHttpServer({
    metrics,
    logger,
    engine: {} as Engine,
    ready: () => true,
    sourceLabels: () => [],
    ...(limits && { limits }),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('GET /metrics', () => {
  it('streams every series of a large fleet in the Prometheus text format', async () => {
    const base = await serve(20_000);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    const backlog = text.split('\n').filter((l) => l.startsWith('keda_inference_scaler_trigger_backlog{'));
    expect(backlog).toHaveLength(20_000);
    expect(backlog[19_999]).toBe(
      'keda_inference_scaler_trigger_backlog{namespace="ns",scaled_object="so-19999",trigger="h19999"} 19999',
    );
    expect(text).toContain('keda_inference_scaler_grpc_requests_total');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('keeps serving after a scraper hangs up in the middle of a response', async () => {
    const base = await serve(20_000);
    await new Promise<void>((resolve, reject) => {
      const req = request(`${base}/metrics`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      req.end();
    });
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect((await res.text()).split('\n').filter((l) => l.startsWith('keda_inference_scaler_trigger_active{'))).toHaveLength(
      20_000,
    );
    // A scraper's hang-up is no failure of the scaler's: nothing logged.
    expect(logged).toEqual([]);
  });

  it('says in the log why a scrape was cut after its first chunk (Prometheus sees a cut response only)', async () => {
    const base = await serve(10, true);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    expect(logged.map((l) => [l.msg, (l.err as { message?: string } | undefined)?.message])).toEqual([
      ['/metrics scrape failed after its first chunk: the response was cut', 'triggers unreadable'],
    ]);
  });
});

// Found by review: the port kept an answer for every client that asked and read nothing, for as
// long as it stayed (40 such at 10,000 triggers: 104 MB of heap).
describe('clients that ask and read nothing', () => {
  /** A client that asks for `path` and reads none of the answer. */
  function unread(base: string, path: string) {
    const { port } = new URL(base);
    const socket = connect(Number(port), '127.0.0.1');
    socket.pause();
    socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`);
    socket.on('error', () => undefined);
    return socket;
  }

  it('sends at most `answers` large answers at once (503 past them), and lets go of a client idle for `idleMs`', async () => {
    const base = await serve(20_000, false, { answers: 2, idleMs: 1000, connections: 256 });
    const stuck = [unread(base, '/metrics'), unread(base, '/metrics')];
    await new Promise((r) => setTimeout(r, 300));
    const busy = await fetch(`${base}/metrics`);
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(await busy.text()).toMatch(/2 answers of \/metrics or \/explain are being sent/);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // Let go once idle for a second (its last bytes into the socket's buffers, then nothing): answered again.
    let again = busy;
    for (const until = Date.now() + 8000; again.status === 503 && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 200));
      again = await fetch(`${base}/metrics`);
      await again.text();
    }
    expect(again.status).toBe(200);
    for (const socket of stuck) socket.destroy();
  });
});

describe('methods', () => {
  it.each(['/metrics', '/healthz', '/readyz'])('HEAD %s answers as GET would, without a body', async (path) => {
    const base = await serve(10);
    const head = await fetch(`${base}${path}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect(head.headers.get('content-type')).toBe((await fetch(`${base}${path}`)).headers.get('content-type'));
  });

  it('HEAD /explain answers as GET would, without building the answer', async () => {
    const metrics = new ScalerMetrics(undefined, { defaultMetrics: false });
    const trigger = { id: 'ns/so/h1', namespace: 'ns', name: 'so', scaling: {} } as unknown as Trigger;
    const decision = { desiredReplicas: 2, active: true, explanation: {} } as unknown as Decision;
    const engine = {
      lastFailures: () => [],
      lastEvaluations: () => [{ trigger, decision, metricValue: 2 }],
      lastRefusals: () => [],
      sharedState: () => undefined,
      learnedUnder: () => undefined,
      lastAsked: () => ({ atMs: 0, agoMs: 1000 }),
    } as unknown as Engine;
    let built = 0;
    const sourceLabels = () => (built++, ['rabbitmq queue "q"']);
    const server = createHttpServer({ metrics, logger, engine, ready: () => true, sourceLabels });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/explain?namespace=ns`;
    const head = await fetch(url, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-type'), await head.text(), built]).toEqual([200, 'application/json', '', 0]);
    const get = await fetch(url);
    expect([get.status, get.headers.get('content-type'), built]).toEqual([200, 'application/json', 1]);
    expect(((await get.json()) as { secondsSinceAsked: number }[]).map((v) => v.secondsSinceAsked)).toEqual([1]);
  });

  it('refuses other methods with 405 and says which are allowed', async () => {
    const base = await serve(1);
    const res = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('a request target that is no URL path', () => {
  it('gets 400, and the port keeps serving (it threw in the handler: no answer, the socket left open)', async () => {
    const base = await serve(1);
    const { port } = new URL(base);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.end('GET http://[oops HTTP/1.1\r\nHost: x\r\n\r\n'));
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});
