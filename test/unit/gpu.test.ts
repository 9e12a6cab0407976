import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { logLines } from '../support/logLines.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidTrigger, ScalerError, SourceBadAnswer, SourceNotFound, SourceUnavailable } from '../../src/errors.ts';
import { toServiceError } from '../../src/server/status.ts';
import {
  type GpuAnswer,
  GpuDriver,
  type PrometheusClient,
  type PrometheusTls,
  interpretAnswer,
  prometheusRequest,
} from '../../src/sources/gpu.ts';
import { parseTrigger } from '../../src/trigger/schema.ts';
import type { GpuSourceConfig } from '../../src/trigger/types.ts';

const where = 'prometheus query "q" at http://prom:9090';
const success = (data: unknown) => JSON.stringify({ status: 'success', data });
const vector = (...values: string[]) =>
  success({ resultType: 'vector', result: values.map((v, i) => ({ metric: { pod: `p${i}` }, value: [1700000000.5, v] })) });
const failure = (errorType: string, error: string) => JSON.stringify({ status: 'error', errorType, error });

function read(httpStatus: number, body: string, ignoreNullValues = true): GpuAnswer {
  return interpretAnswer(where, { httpStatus, body }, ignoreNullValues);
}

function codeOf(fn: () => unknown): { code: status; details: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ScalerError);
    return toServiceError(err);
  }
  throw new Error('expected an error');
}

const config = (overrides: Partial<GpuSourceConfig> = {}): GpuSourceConfig => ({
  kind: 'gpu',
  serverAddress: 'http://prom:9090',
  query: 'sum(DCGM_FI_DEV_GPU_UTIL{namespace="ml"}) / 100',
  targetUtilization: 0.8,
  activationThreshold: 0.2,
  ignoreNullValues: true,
  bearerToken: undefined,
  username: undefined,
  password: undefined,
  customHeaders: undefined,
  ca: undefined,
  unsafeSsl: false,
  ...overrides,
});

describe('Prometheus answers', () => {
  it.each([
    ['a one-element vector', vector('1.5'), 1.5],
    ['a scalar', success({ resultType: 'scalar', result: [1700000000, '7'] }), 7],
    ['an exponent', vector('1e+01'), 10],
    ['zero', vector('0'), 0],
  ])('reads %s', (_name, body, expected) => {
    expect(read(200, body)).toBe(expected);
  });

  it('reads an empty result as no series (not as 0) with ignoreNullValues', () => {
    expect(read(200, vector())).toBe('no series');
  });

  it('reports an empty result as NOT_FOUND without ignoreNullValues', () => {
    const err = codeOf(() => read(200, vector(), false));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toMatch(/matched no series \(gpu\.ignoreNullValues is false/);
  });

  // Found by review: the label values (another tenant's pods) went into KEDA's events and /explain.
  it('refuses several series and names them by their label names alone', () => {
    const err = codeOf(() => read(200, vector('0.5', '0.25')));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/gave 2 series \(\{pod\}, \{pod\}\).*sum\(/);
    expect(err.details).not.toMatch(/p0|p1/);
  });

  it.each([
    ['NaN', /"NaN", not a finite number/],
    ['+Inf', /"\+Inf", not a finite number/],
    ['-Inf', /"-Inf", not a finite number/],
    ['busy', /"busy", not a finite number/],
    ['', /"", not a finite number/],
    ['-0.5', /cannot be negative.*clamp_min/],
  ])('refuses the value %j, even with ignoreNullValues', (value, pattern) => {
    const err = codeOf(() => read(200, vector(value), true));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(pattern);
  });

  it('refuses a range vector and says how to fix it', () => {
    const body = success({ resultType: 'matrix', result: [{ metric: {}, values: [[1, '1']] }] });
    expect(codeOf(() => read(200, body)).details).toMatch(/range vector.*avg_over_time/);
  });

  it.each([
    ['a string result', success({ resultType: 'string', result: [1, 'abc'] })],
    ['a sample without a value', success({ resultType: 'vector', result: [{ metric: {} }] })],
    ['a sample with a numeric value', success({ resultType: 'vector', result: [{ metric: {}, value: [1, 2] }] })],
    ['a success without data', JSON.stringify({ status: 'success' })],
    ['JSON that is not an API answer', '[1,2]'],
    ['a page that is not JSON', '<html>Grafana</html>'],
  ])('refuses %s as a bad answer', (_name, body) => {
    expect(() => read(200, body)).toThrow(SourceBadAnswer);
  });

  it('turns a syntax error (bad_data) into INVALID_ARGUMENT that names gpu.query', () => {
    const body = failure('bad_data', 'invalid parameter "query": 1:25: parse error: unclosed left parenthesis');
    expect(() => read(400, body)).toThrow(InvalidTrigger);
    const err = codeOf(() => read(400, body));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/gpu\.query: Prometheus rejected the query .*unclosed left parenthesis/);
  });

  // Found by review: a selector Prometheus cannot read ("llm-(") was blamed on a gpu.query nobody set.
  it('names the keys the query was built from when Prometheus refuses it', () => {
    const body = failure('bad_data', '1:40: parse error: error parsing regexp: missing closing ): `^(?:llm-()$`');
    const trigger = parseTrigger({
      name: 'so',
      namespace: 'ml',
      metadata: { 'gpu.serverAddress': 'http://prom:9090', 'gpu.podSelector': 'llm-(' },
    });
    const built = trigger.sources[0] as GpuSourceConfig;
    expect(built.queryFrom).toBe('gpu.podSelector');
    const err = codeOf(() => interpretAnswer(where, { httpStatus: 400, body }, true, built.queryFrom));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(
      /^invalid trigger metadata: gpu\.podSelector: Prometheus rejected the query built from them .*missing closing/,
    );
    const given = parseTrigger({
      name: 'so',
      namespace: 'ml',
      metadata: { 'gpu.serverAddress': 'http://prom:9090', 'gpu.query': 'up' },
    });
    expect((given.sources[0] as GpuSourceConfig).queryFrom).toBeUndefined();
  });

  // Found by review: VictoriaMetrics' cluster with a storage node down answered what the others held.
  it('refuses a partial answer (isPartial) as UNAVAILABLE, not fewer busy GPUs', () => {
    const body = JSON.stringify({
      status: 'success',
      isPartial: true,
      data: { resultType: 'vector', result: [{ metric: {}, value: [1, '0.1'] }] },
    });
    const err = codeOf(() => read(200, body));
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toMatch(/partial/);
    expect(
      read(
        200,
        JSON.stringify({
          status: 'success',
          isPartial: false,
          data: { resultType: 'vector', result: [{ metric: {}, value: [1, '0.1'] }] },
        }),
      ),
    ).toBe(0.1);
  });

  it.each([
    [422, failure('execution', 'many-to-many matching not allowed'), status.FAILED_PRECONDITION, /many-to-many/],
    [503, failure('timeout', 'query timed out in expression evaluation'), status.DEADLINE_EXCEEDED, /timed out/],
    [503, failure('unavailable', 'TSDB not ready'), status.UNAVAILABLE, /TSDB not ready/],
    [500, failure('internal', 'boom'), status.UNAVAILABLE, /internal: boom/],
    [502, '<html>Bad Gateway</html>', status.UNAVAILABLE, /HTTP 502/],
    [401, 'Unauthorized', status.UNAUTHENTICATED, /refused the credentials \(HTTP 401\)/],
    [403, '', status.UNAUTHENTICATED, /HTTP 403/],
    [404, '404 page not found', status.NOT_FOUND, /no Prometheus query API.*gpu\.serverAddress/],
    [200, failure('execution', 'odd proxy'), status.FAILED_PRECONDITION, /odd proxy/],
  ])('maps HTTP %i %s to its gRPC code', (httpStatus, body, code, pattern) => {
    const err = codeOf(() => read(httpStatus, body));
    expect(err.code).toBe(code);
    expect(err.details).toMatch(pattern);
  });
});

describe('the instant-query request', () => {
  it('queries {serverAddress}/api/v1/query, keeping a path prefix, with the query encoded', () => {
    const { url, headers } = prometheusRequest(
      config({ serverAddress: 'https://thanos.example:9091/prom/', query: 'sum(x{a="b"}) / 100' }),
      2000,
    );
    expect(url.origin + url.pathname).toBe('https://thanos.example:9091/prom/api/v1/query');
    expect(url.searchParams.get('query')).toBe('sum(x{a="b"}) / 100');
    expect(url.searchParams.get('timeout')).toBe('2000ms');
    expect(headers.authorization).toBeUndefined();
  });

  // Found by the metadata fuzzer: a path starting "//" resolved to another host, which got the token.
  it.each(['http://prom:9090//evil.example', 'http://prom:9090//evil.example/x', 'http://prom:9090/a//b?q=1#f'])(
    'keeps the query on the configured host for %s',
    (serverAddress) => {
      const { url } = prometheusRequest(config({ serverAddress, bearerToken: 'tok' }));
      expect(url.host).toBe('prom:9090');
      expect(url.pathname).toBe(`${new URL(serverAddress).pathname.replace(/\/+$/, '')}/api/v1/query`);
      // The address's own parameters kept, then the query's and Thanos' partial_response=false.
      expect([...url.searchParams.keys()]).toEqual([...new URL(serverAddress).searchParams.keys(), 'query', 'partial_response']);
    },
  );

  // Found by review: Thanos answers a query with a store down as a success with a warning (busy GPUs
  // read low), and the address's own parameters (dedup, a tenant's) were dropped.
  it('asks for no partial answer unless the address says otherwise, keeping its parameters', () => {
    const { url } = prometheusRequest(config({ serverAddress: 'http://thanos:10902/?dedup=false' }));
    expect(url.searchParams.get('dedup')).toBe('false');
    expect(url.searchParams.get('partial_response')).toBe('false');
    const own = prometheusRequest(config({ serverAddress: 'http://thanos:10902/?partial_response=true' })).url;
    expect(own.searchParams.getAll('partial_response')).toEqual(['true']);
  });

  it('refuses a redirect naming gpu.serverAddress, not as an outage', () => {
    const err = codeOf(() => read(302, '<html>moved</html>'));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/redirected the request \(HTTP 302\); set gpu.serverAddress/);
  });

  it('sends a bearer token', () => {
    expect(prometheusRequest(config({ bearerToken: 'tok' })).headers.authorization).toBe('Bearer tok');
  });

  it("sends gpu.customHeaders (a tenant's X-Scope-OrgID) beside its own, a header named __proto__ as a header", () => {
    const { headers } = prometheusRequest(
      config({
        bearerToken: 'tok',
        customHeaders: [
          ['X-Scope-OrgID', 'team-a'],
          ['__proto__', 'x'],
        ],
      }),
    );
    expect(headers).toEqual({
      'x-scope-orgid': 'team-a',
      ['__proto__']: 'x',
      accept: 'application/json',
      authorization: 'Bearer tok',
    });
    expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
  });

  it('sends basic auth, also when written into the URL, and takes it out of the URL', () => {
    const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    expect(prometheusRequest(config({ username: 'u', password: 'p w' })).headers.authorization).toBe(basic('u', 'p w'));
    const fromUrl = prometheusRequest(config({ serverAddress: 'http://alice:s%40cret@prom:9090' }));
    expect(fromUrl.headers.authorization).toBe(basic('alice', 's@cret'));
    expect(fromUrl.url.toString()).not.toContain('alice');
  });
});

describe('GpuDriver through its client seam', () => {
  const logger = pino({ level: 'silent' });

  function fakeDriver(answer: () => Promise<{ httpStatus: number; body: string }>) {
    const made: { tls: PrometheusTls; asked: { url: string; headers: Readonly<Record<string, string>> }[]; closed: number }[] =
      [];
    const driver = new GpuDriver({
      logger,
      timeoutMs: 1500,
      clientFactory: (tls) => {
        const entry = { tls, asked: [] as { url: string; headers: Readonly<Record<string, string>> }[], closed: 0 };
        made.push(entry);
        const client: PrometheusClient = {
          get: (request) => {
            entry.asked.push({ url: request.url.toString(), headers: request.headers });
            return answer();
          },
          close: () => void entry.closed++,
        };
        return client;
      },
    });
    return { driver, made };
  }

  it('sends the instant query with its deadline and credentials, and interprets the answer', async () => {
    const { driver, made } = fakeDriver(() => Promise.resolve({ httpStatus: 200, body: vector('3.25') }));
    const source = driver.create(config({ serverAddress: 'http://u:pw@prom:9090/prefix/', ignoreNullValues: false }));
    expect(await source.read(AbortSignal.timeout(5000))).toEqual({ backlog: 0, busyGpus: 3.25 });
    const url = new URL(made[0]!.asked[0]!.url);
    expect(url.origin + url.pathname).toBe('http://prom:9090/prefix/api/v1/query');
    expect(url.searchParams.get('timeout')).toBe('1500ms');
    expect(url.username).toBe('');
    expect(made[0]!.asked[0]!.headers.authorization).toBe(`Basic ${Buffer.from('u:pw').toString('base64')}`);
  });

  // Found by review: a warning beside the answer (a remote read that failed, a proxy's partial data)
  // was dropped unsaid.
  it('reads an answer that comes with warnings, and says them once per ten minutes a source', async () => {
    const { sink, lines } = logLines<{ level: number; msg: string; warnings?: string[] }>();
    const answer = {
      status: 'success',
      warnings: ['remote_read: store B unreachable'],
      data: { resultType: 'vector', result: [{ metric: {}, value: [0, '2'] }] },
    };
    const driver = new GpuDriver({
      logger: pino({ level: 'info' }, sink),
      timeoutMs: 1500,
      clientFactory: () => ({
        get: () => Promise.resolve({ httpStatus: 200, body: JSON.stringify(answer) }),
        close: () => undefined,
      }),
    });
    const source = driver.create(config());
    expect(await source.read(AbortSignal.timeout(5000))).toEqual({ backlog: 0, busyGpus: 2 });
    await source.read(AbortSignal.timeout(5000));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      msg: 'Prometheus answered with warnings',
      warnings: ['remote_read: store B unreachable'],
    });
  });

  it('makes one client per TLS setting, shared by every query, and closes each once', async () => {
    const { driver, made } = fakeDriver(() => Promise.resolve({ httpStatus: 200, body: vector('1') }));
    const reads = [
      config({ serverAddress: 'http://a:9090' }),
      config({ serverAddress: 'http://b:9090', query: 'other' }),
      config({ serverAddress: 'https://c:9090' }),
      config({ serverAddress: 'https://d:9090', query: 'other' }),
      config({ serverAddress: 'https://c:9090', ca: 'PEM' }),
      config({ serverAddress: 'https://c:9090', unsafeSsl: true }),
    ];
    for (const c of reads) await driver.create(c).read(AbortSignal.timeout(5000));
    expect(made.map((m) => m.tls)).toEqual([
      { https: false, ca: undefined, unsafeSsl: false },
      { https: true, ca: undefined, unsafeSsl: false },
      { https: true, ca: 'PEM', unsafeSsl: false },
      { https: true, ca: undefined, unsafeSsl: true },
    ]);
    expect(made.map((m) => m.asked.length)).toEqual([2, 2, 1, 1]);
    await driver.close();
    await driver.close();
    expect(made.map((m) => m.closed)).toEqual([1, 1, 1, 1]);
  });

  it("passes the client's typed error through, and maps the HTTP status it got", async () => {
    const down = new SourceUnavailable('prometheus unreachable');
    const { driver } = fakeDriver(() => Promise.reject(down));
    await expect(driver.create(config()).read(AbortSignal.timeout(5000))).rejects.toBe(down);
    const refused = fakeDriver(() => Promise.resolve({ httpStatus: 401, body: 'Unauthorized' }));
    const err = await refused.driver
      .create(config({ bearerToken: 'tok-123' }))
      .read(AbortSignal.timeout(5000))
      .catch((e: unknown) => e);
    expect(toServiceError(err)).toMatchObject({ code: status.UNAUTHENTICATED });
    expect(toServiceError(err).details).not.toContain('tok-123');
  });
});

describe('GpuDriver', () => {
  const logger = pino({ level: 'silent' });
  let server: http.Server;
  let address = '';
  const seen: http.IncomingHttpHeaders[] = [];
  let answer = { status: 200, body: vector('2.5') };

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reads busy GPU-equivalents and no backlog, sending the credentials', async () => {
    const driver = new GpuDriver({ logger, timeoutMs: 2000 });
    answer = { status: 200, body: vector('2.5') };
    const source = driver.create(config({ serverAddress: address, bearerToken: 'tok' }));
    expect(await source.read(AbortSignal.timeout(5000))).toEqual({ backlog: 0, busyGpus: 2.5 });
    expect(seen.at(-1)?.authorization).toBe('Bearer tok');
    await driver.close();
  });

  it('sends gpu.customHeaders with every query, and reads triggers of two tenants apart', async () => {
    const driver = new GpuDriver({ logger, timeoutMs: 2000 });
    answer = { status: 200, body: vector('1') };
    const tenant = (name: string) => config({ serverAddress: address, customHeaders: [['X-Scope-OrgID', name]] });
    const [a, b] = [driver.create(tenant('team-a')), driver.create(tenant('team-b'))];
    expect(a.identity).not.toBe(b.identity);
    expect(`${a.identity} ${a.label}`).not.toContain('team-a');
    await a.read(AbortSignal.timeout(5000));
    expect(seen.at(-1)?.['x-scope-orgid']).toBe('team-a');
    await b.read(AbortSignal.timeout(5000));
    expect(seen.at(-1)?.['x-scope-orgid']).toBe('team-b');
    await driver.close();
  });

  it('reads an empty result as a reading without busy GPUs that says so', async () => {
    const driver = new GpuDriver({ logger, timeoutMs: 2000 });
    answer = { status: 200, body: vector() };
    const reading = await driver.create(config({ serverAddress: address })).read(AbortSignal.timeout(5000));
    expect(reading).toEqual({ backlog: 0, noSeries: true });
    await driver.close();
  });

  it('shares the identity between triggers that differ only in target and activation, and keeps secrets out', () => {
    const driver = new GpuDriver({ logger, timeoutMs: 2000 });
    const a = config({ bearerToken: 'secret-token' });
    expect(driver.identity(a)).toBe(driver.identity({ ...a, targetUtilization: 0.5, activationThreshold: 1 }));
    expect(driver.identity(a)).not.toBe(driver.identity({ ...a, bearerToken: 'other' }));
    expect(driver.identity(a)).not.toBe(driver.identity({ ...a, ignoreNullValues: false }));
    // Found by review: a gpu.query written like a built one shared its source, and a refusal of the
    // built one's selector blamed gpu.query.
    expect(driver.identity(a)).not.toBe(driver.identity({ ...a, queryFrom: 'gpu.podSelector' }));
    const withPassword = config({ serverAddress: 'http://u:hunter2@prom:9090', bearerToken: 'secret-token' });
    const source = driver.create(withPassword);
    expect(`${source.identity} ${source.label}`).not.toMatch(/hunter2|secret-token/);
    expect(source.label).toBe('prometheus query "sum(DCGM_FI_DEV_GPU_UTIL{namespace=\\"ml\\"}) / 100" at http://prom:9090');
  });

  it('names a long query quoted and cut to 160 characters', () => {
    const driver = new GpuDriver({ logger, timeoutMs: 2000 });
    const { label } = driver.create(config({ query: `sum(${'x'.repeat(100_000)})` }));
    expect(label).toBe(`prometheus query "sum(${'x'.repeat(136)}"... (100005 chars) at http://prom:9090`);
  });

  it('reports a refused connection as UNAVAILABLE', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const driver = new GpuDriver({ logger, timeoutMs: 2000 });
    const source = driver.create(config({ serverAddress: `http://127.0.0.1:${port}` }));
    const err = await source.read(AbortSignal.timeout(5000)).catch((e: unknown) => e);
    expect(toServiceError(err)).toMatchObject({
      code: status.UNAVAILABLE,
      details: expect.stringMatching(/unreachable.*ECONNREFUSED/),
    });
    await driver.close();
  });

  it('rejects with the abort reason when the cache gives up', async () => {
    const driver = new GpuDriver({ logger, timeoutMs: 2000 });
    const hanging = http.createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const source = driver.create(config({ serverAddress: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}` }));
    const controller = new AbortController();
    const reading = source.read(controller.signal);
    const reason = new SourceNotFound('stand-in reason');
    setTimeout(() => controller.abort(reason), 50);
    await expect(reading).rejects.toBe(reason);
    await driver.close();
    hanging.closeAllConnections();
    await new Promise<void>((resolve) => hanging.close(() => resolve()));
  });

  // Found by the metadata fuzzer: a server that closes a kept-alive socket as the next query goes
  // out on it (its idle timeout) made a healthy Prometheus read as UNAVAILABLE (socket hang up).
  it('sends a query once more when the kept-alive socket it went out on is reset before any answer', async () => {
    const body = vector('1.5');
    let connections = 0;
    // Answers the first request of each connection, keeps it open, and resets it on the second.
    const resetting = createNetServer((socket) => {
      connections++;
      let requests = 0;
      socket.on('data', () => {
        if (++requests > 1) return socket.resetAndDestroy();
        socket.write(
          `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: keep-alive\r\n\r\n${body}`,
        );
      });
    });
    await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve));
    const driver = new GpuDriver({ logger, timeoutMs: 2000 });
    const source = driver.create(config({ serverAddress: `http://127.0.0.1:${(resetting.address() as AddressInfo).port}` }));
    for (let i = 0; i < 3; i++) expect(await source.read(AbortSignal.timeout(5000))).toEqual({ backlog: 0, busyGpus: 1.5 });
    expect(connections).toBe(3);
    await driver.close();
    await new Promise<void>((resolve) => resetting.close(() => resolve()));
  });

  it('reports a reset on a new socket, without sending again', async () => {
    let connections = 0;
    const resetting = createNetServer((socket) => {
      connections++;
      socket.on('data', () => socket.resetAndDestroy());
    });
    await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve));
    const driver = new GpuDriver({ logger, timeoutMs: 2000 });
    const source = driver.create(config({ serverAddress: `http://127.0.0.1:${(resetting.address() as AddressInfo).port}` }));
    await expect(source.read(AbortSignal.timeout(5000))).rejects.toThrow(/Prometheus unreachable \(.*ECONNRESET/);
    expect(connections).toBe(1);
    await driver.close();
    await new Promise<void>((resolve) => resetting.close(() => resolve()));
  });

  describe('over https with a private CA', () => {
    let dir = '';
    let tlsServer: https.Server;
    let tlsAddress = '';
    let ca = '';

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'gpu-tls-'));
      const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
      ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test-ca');
      ssl('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
      writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
      ssl(
        'x509',
        '-req',
        '-in',
        'srv.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'srv.pem',
        '-days',
        '1',
        '-extfile',
        'san.ext',
      );
      ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
      tlsServer = https.createServer(
        { key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.pem')) },
        (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' }).end(vector('3'));
        },
      );
      await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
      tlsAddress = `https://127.0.0.1:${(tlsServer.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      tlsServer.closeAllConnections();
      await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    });

    it('trusts the configured CA', async () => {
      const driver = new GpuDriver({ logger, timeoutMs: 2000 });
      const reading = await driver.create(config({ serverAddress: tlsAddress, ca })).read(AbortSignal.timeout(5000));
      expect(reading.busyGpus).toBe(3);
      await driver.close();
    });

    it('refuses an unknown CA with a hint, unless unsafeSsl', async () => {
      const driver = new GpuDriver({ logger, timeoutMs: 2000 });
      const err = await driver
        .create(config({ serverAddress: tlsAddress }))
        .read(AbortSignal.timeout(5000))
        .catch((e: unknown) => e);
      expect(toServiceError(err)).toMatchObject({ code: status.UNAVAILABLE, details: expect.stringMatching(/set gpu\.ca/) });
      const unsafe = await driver.create(config({ serverAddress: tlsAddress, unsafeSsl: true })).read(AbortSignal.timeout(5000));
      expect(unsafe.busyGpus).toBe(3);
      await driver.close();
    });
  });
});

describe('GPU trigger metadata', () => {
  const parse = (metadata: Record<string, string>) => parseTrigger({ name: 'so', namespace: 'ns', metadata });
  const issues = (metadata: Record<string, string>) => {
    try {
      parse(metadata);
    } catch (err) {
      return (err as InvalidTrigger).issues.join('\n');
    }
    throw new Error('expected InvalidTrigger');
  };
  const gpu = { 'gpu.serverAddress': 'http://prom:9090', 'gpu.namespace': 'ml' };

  it('allows a GPU-only trigger with KEDA-like defaults', () => {
    const t = parse(gpu);
    expect(t.sources).toHaveLength(1);
    expect(t.sources[0]).toMatchObject({
      kind: 'gpu',
      targetUtilization: 0.8,
      activationThreshold: 0.2,
      ignoreNullValues: true,
      unsafeSsl: false,
    });
  });

  it('refuses a bearer token together with basic auth, and half of basic auth', () => {
    expect(issues({ ...gpu, 'gpu.bearerToken': 't', 'gpu.username': 'u', 'gpu.password': 'p' })).toMatch(
      /gpu\.bearerToken: set either/,
    );
    expect(issues({ ...gpu, 'gpu.username': 'u' })).toMatch(/gpu\.password: gpu\.username and gpu\.password go together/);
  });

  // Found by the metadata fuzzer: a token with a control character failed every read as UNAVAILABLE.
  it.each(['tok\u0000en', 'two words', 'tök'])(
    'refuses the bearer token %j, which no header can carry, without echoing it',
    (token) => {
      const text = issues({ ...gpu, 'gpu.bearerToken': token });
      expect(text).toMatch(/^gpu\.bearerToken: got \(redacted\); allowed: a token \(printable ASCII, no spaces\)/);
      expect(text).not.toContain(token);
    },
  );

  it('refuses a CA that is not PEM, without echoing a secret', () => {
    expect(issues({ ...gpu, 'gpu.ca': '/etc/ssl/ca.pem' })).toMatch(
      /gpu\.ca: got "\/etc\/ssl\/ca\.pem"; allowed: a PEM CA certificate/,
    );
    expect(issues({ ...gpu, 'gpu.password': 'hunter2', 'gpu.username': 'u', 'gpu.targetUtilization': '0' })).not.toMatch(
      /hunter2/,
    );
  });
});

describe('interpretAnswer: a sample that is no object (found by review: INTERNAL)', () => {
  it.each([
    ['a null sample', success({ resultType: 'vector', result: [null] })],
    ['two null samples', success({ resultType: 'vector', result: [null, null] })],
    ['a number for a sample', success({ resultType: 'vector', result: [7] })],
  ])('%s: FAILED_PRECONDITION', (_what, body) => {
    expect(codeOf(() => read(200, body)).code).toBe(status.FAILED_PRECONDITION);
  });
});
