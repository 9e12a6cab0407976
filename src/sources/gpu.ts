// Busy GPU-equivalents from Prometheus (e.g. the NVIDIA DCGM exporter's utilisation): one instant
// query through the HTTP API per read. Anything but one finite, non-negative number is a typed
// error, never a 0. An empty result is an error without ignoreNullValues, and with it a reading of
// "no series", which the engine (not this module) weighs against the trigger's state.
import {
  InvalidTrigger,
  SourceBadAnswer,
  SourceNotFound,
  SourceTimeout,
  SourceUnauthenticated,
  SourceUnavailable,
  clip,
  quote,
} from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { Throttle } from '../telemetry/throttle.ts';
import { DECIMAL_NUMBER } from '../trigger/fields.ts';
import type { GpuSourceConfig } from '../trigger/types.ts';
import { ClientMap, secretHash, sourceIdentity, withoutTrailingSlashes } from './common.ts';
import {
  type HttpAnswer,
  type HttpClient,
  type HttpRequest,
  type HttpTls,
  httpTlsFor,
  nodeHttpClient,
  redirectRefusal,
} from './httpClient.ts';
import type { Source, SourceDriver } from './source.ts';

const MAX_QUERY_IN_LABEL = 160;

export type PrometheusRequest = HttpRequest;

/** The instant-query URL and headers for a source: `{serverAddress}/api/v1/query?query=...`. */
export function prometheusRequest(config: GpuSourceConfig, timeoutMs?: number): PrometheusRequest {
  const base = new URL(config.serverAddress);
  // Basic auth written into the URL is taken out of it: it must not travel in logs or labels.
  const urlUser = base.username !== '' ? decodeURIComponent(base.username) : undefined;
  const urlPassword = decodeURIComponent(base.password);
  base.username = '';
  base.password = '';
  // The path is set, not resolved against the base: "//host/..." would resolve to another host,
  // and the credentials would go there.
  const url = new URL(base.href);
  url.pathname = `${withoutTrailingSlashes(base.pathname)}/api/v1/query`;
  // The address's own parameters go with every query (Thanos' dedup, a tenant's); they were dropped.
  url.hash = '';
  url.searchParams.set('query', config.query);
  // Lets Prometheus stop evaluating when we stop waiting.
  if (timeoutMs !== undefined) url.searchParams.set('timeout', `${Math.max(1, Math.round(timeoutMs))}ms`);
  // Thanos answers with a store missing as a success with a warning, by default: busy GPUs read
  // low or as none, and a workload may be let go. A query that cannot see everything fails instead
  // (Prometheus and Mimir ignore the parameter; an address that sets it keeps its own).
  if (!url.searchParams.has('partial_response')) url.searchParams.set('partial_response', 'false');
  // A Map: a header named __proto__ is a token too.
  const headers = new Map<string, string>(config.customHeaders?.map(([name, value]) => [name.toLowerCase(), value]));
  headers.set('accept', 'application/json');
  const user = config.username ?? urlUser;
  if (config.bearerToken !== undefined) headers.set('authorization', `Bearer ${config.bearerToken}`);
  else if (user !== undefined) {
    const password = config.password ?? urlPassword;
    headers.set('authorization', `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`);
  }
  return { url, headers: Object.fromEntries(headers) };
}

function label(config: GpuSourceConfig): string {
  const { protocol, host, pathname } = new URL(config.serverAddress);
  return `prometheus query ${quote(config.query, MAX_QUERY_IN_LABEL)} at ${protocol}//${host}${withoutTrailingSlashes(pathname)}`;
}

export type PrometheusAnswer = HttpAnswer;

interface ApiAnswer {
  status?: unknown;
  errorType?: unknown;
  error?: unknown;
  data?: { resultType?: unknown; result?: unknown };
  /** VictoriaMetrics: some storage nodes did not answer. */
  isPartial?: unknown;
  /** What the server warns of beside the answer (a remote read that failed, a proxy's partial data). */
  warnings?: unknown;
}

interface VectorSample {
  metric?: Record<string, string>;
  value?: unknown;
}

/** Why Prometheus (or a proxy in front of it) refused the query, as a typed error. */
function apiError(where: string, httpStatus: number, body: ApiAnswer | undefined, queryFrom: string | undefined): Error {
  const type = typeof body?.errorType === 'string' ? body.errorType : undefined;
  const text = typeof body?.error === 'string' ? body.error : undefined;
  const said = text !== undefined ? `${type ?? 'error'}: ${text}` : `HTTP ${httpStatus}`;
  if (httpStatus === 401 || httpStatus === 403) {
    return new SourceUnauthenticated(
      `${where}: Prometheus refused the credentials (HTTP ${httpStatus}); check gpu.bearerToken or gpu.username/gpu.password, and a multi-tenant store's tenant (gpu.customHeaders X-Scope-OrgID)`,
    );
  }
  // bad_data: the expression itself cannot run, whatever the state of Prometheus: the trigger's
  // metadata is wrong, and only the user can fix it.
  if (type === 'bad_data') {
    // Built from the selector (found by review: "llm-(" was blamed on a gpu.query nobody set).
    if (queryFrom !== undefined) {
      return new InvalidTrigger([
        `${queryFrom}: Prometheus rejected the query built from them at ${where} (${said}); allowed: a namespace, and a regular expression (RE2) for gpu.podSelector`,
      ]);
    }
    return new InvalidTrigger([
      `gpu.query: Prometheus rejected the query at ${where} (${said}); allowed: a PromQL expression Prometheus can run`,
    ]);
  }
  if (type === 'timeout') return new SourceTimeout(`${where}: Prometheus gave up evaluating the query (${said})`);
  // execution: the query parsed but failed on the current data (e.g. many-to-many matching).
  if (type === 'execution') return new SourceBadAnswer(`${where}: the query failed in Prometheus (${said})`);
  if (httpStatus === 404) {
    return new SourceNotFound(
      `${where}: no Prometheus query API at this address (HTTP 404); check gpu.serverAddress and its path prefix`,
    );
  }
  if (httpStatus === 400 || httpStatus === 422) return new SourceBadAnswer(`${where}: Prometheus refused the query (${said})`);
  return (
    redirectRefusal(where, httpStatus, 'Prometheus', 'gpu.serverAddress') ??
    new SourceUnavailable(`${where}: Prometheus answered ${said}`)
  );
}

/** One sample's value ([time, "text"]) as a number of busy GPU-equivalents. */
function sampleValue(where: string, value: unknown): number {
  if (!Array.isArray(value) || value.length !== 2 || typeof value[1] !== 'string') {
    throw new SourceBadAnswer(
      `${where}: the sample is not [time, "value"] (got ${clip(JSON.stringify(value) ?? String(value), 80)})`,
    );
  }
  const text = value[1];
  const n = DECIMAL_NUMBER.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(n)) {
    throw new SourceBadAnswer(`${where}: the query gave ${quote(text)}, not a finite number (a division by zero?)`);
  }
  if (n < 0) {
    throw new SourceBadAnswer(
      `${where}: the query gave ${n}; busy GPU-equivalents cannot be negative (wrap it in clamp_min(..., 0) if that is meant)`,
    );
  }
  return n;
}

/**
 * A series by its label names alone: the values (another tenant's pods, namespaces) would travel
 * into KEDA's events and /explain for anyone whose trigger names a shared profile (found by review).
 */
function seriesName(sample: VectorSample | null | undefined): string {
  const metric = typeof sample === 'object' && sample !== null ? sample.metric : undefined;
  return `{${Object.keys(typeof metric === 'object' && metric !== null ? metric : {}).join(',')}}`;
}

/** What one answer says: busy GPU-equivalents, or that the query matched no series. */
export type GpuAnswer = number | 'no series';

/**
 * Reads one /api/v1/query answer: the busy GPU-equivalents, or a typed error. A scalar or a
 * one-element vector is a value; an empty vector is 'no series' with ignoreNullValues, else NOT_FOUND.
 */
export function interpretAnswer(
  where: string,
  answer: PrometheusAnswer,
  ignoreNullValues: boolean,
  queryFrom?: string,
  onWarnings?: (warnings: readonly string[]) => void,
): GpuAnswer {
  let body: ApiAnswer | undefined;
  try {
    body = JSON.parse(answer.body) as ApiAnswer;
  } catch {
    body = undefined;
  }
  const ok = answer.httpStatus >= 200 && answer.httpStatus < 300;
  if (!ok || body?.status === 'error') throw apiError(where, answer.httpStatus, body, queryFrom);
  if (body === null || typeof body !== 'object' || body.status !== 'success') {
    throw new SourceBadAnswer(
      `${where}: the answer is not a Prometheus API answer (is gpu.serverAddress a Prometheus base URL?)`,
    );
  }
  // VictoriaMetrics' cluster with a storage node down answers what the others hold: busy GPUs read
  // low, a fleet shrunk or let go on them (found by review). Thanos is asked for no partial answer.
  if (body.isPartial === true) {
    throw new SourceUnavailable(`${where}: the answer is partial (a storage node did not answer); not read as fewer busy GPUs`);
  }
  // Said, not refused: Prometheus warns of a failed remote read beside its local data, which holds
  // the exporter's recent samples; a front end that answers partial data with a warning alone
  // (promxy) shows here (found by review: they were dropped unsaid).
  if (onWarnings !== undefined && Array.isArray(body.warnings) && body.warnings.length > 0) {
    onWarnings(body.warnings.slice(0, 3).map((w) => clip(String(w), WARNING_CHARS)));
  }
  const resultType = body.data?.resultType;
  const result = body.data?.result;
  if (resultType === 'scalar') return sampleValue(where, result);
  if (resultType === 'matrix') {
    throw new SourceBadAnswer(
      `${where}: the query gives a range vector; use an instant vector (e.g. avg_over_time(x[1m]) instead of x[1m])`,
    );
  }
  if (resultType !== 'vector' || !Array.isArray(result)) {
    throw new SourceBadAnswer(
      `${where}: the query gives a ${String(resultType)}, not a number (allowed: a scalar or one series)`,
    );
  }
  if (result.length === 0) {
    if (ignoreNullValues) return 'no series';
    throw new SourceNotFound(
      `${where}: the query matched no series (gpu.ignoreNullValues is false; with true, no series reads as no GPUs while the workload is at zero)`,
    );
  }
  if (result.length > 1) {
    const names = (result as VectorSample[]).slice(0, 3).map(seriesName).join(', ');
    throw new SourceBadAnswer(
      `${where}: the query gave ${result.length} series (${names}${result.length > 3 ? ', ...' : ''}); allowed: one, e.g. wrap it in sum(...)`,
    );
  }
  // A sample that is no object (a proxy's null) is a bad answer, not a defect (found by review: INTERNAL).
  const sample = result[0] as VectorSample | null;
  return sampleValue(where, typeof sample === 'object' && sample !== null ? sample.value : sample);
}

/** The one call the source makes (the testing seam): GET an instant query and give back any HTTP answer. */
export type PrometheusClient = HttpClient;

/** The TLS settings a client is made for: one client per distinct setting, shared by every query. */
export type PrometheusTls = HttpTls;

export type PrometheusClientFactory = (tls: PrometheusTls) => PrometheusClient;

/** A warning quoted to this many characters, and said again this often while they last. */
const WARNING_CHARS = 200;
const WARNINGS_REMIND_MS = 10 * 60_000;

/** What the shared HTTP client's messages say of Prometheus. */
const prometheusWords = { server: 'Prometheus', keyPrefix: 'gpu', largeAnswerGuess: 'a query giving many series?' };

export interface GpuDriverOptions {
  readonly logger: Logger;
  readonly timeoutMs: number;
  /** Test seam: replaces the HTTP client (one per TLS setting). */
  readonly clientFactory?: PrometheusClientFactory;
}

export class GpuDriver implements SourceDriver<GpuSourceConfig> {
  readonly kind = 'gpu' as const;
  /** Clients, one per TLS setting (CA, verification), shared by every query. */
  private readonly clients = new ClientMap<PrometheusClient>();
  private readonly clientFactory: PrometheusClientFactory;
  private readonly logger: Logger;
  private readonly timeoutMs: number;

  constructor(options: GpuDriverOptions) {
    this.logger = options.logger;
    this.timeoutMs = options.timeoutMs;
    this.clientFactory = options.clientFactory ?? ((tls) => nodeHttpClient(tls, prometheusWords));
  }

  identity(config: GpuSourceConfig): string {
    // targetUtilization and activationThreshold shape the decision, not the read: left out, so
    // triggers that differ only there share one query.
    const secrets = secretHash(
      config.serverAddress,
      config.bearerToken,
      config.username,
      config.password,
      config.ca,
      String(config.unsafeSsl),
      JSON.stringify(config.customHeaders ?? []),
    );
    // Where the query came from too: an error names the setting to fix (gpu.query, or the selector
    // a built query came from), so one written like a built one is a source of its own (found by review).
    return sourceIdentity(
      'gpu',
      secrets,
      config.ignoreNullValues ? 'null=0' : 'null=error',
      config.query,
      config.queryFrom ?? '',
    );
  }

  create(config: GpuSourceConfig): Source {
    const where = label(config);
    const request = prometheusRequest(config, this.timeoutMs);
    const client = this.clientFor(request.url.protocol, config);
    // The server's warnings, once per WARNINGS_REMIND_MS a source while they last.
    const warned = new Throttle(WARNINGS_REMIND_MS);
    const onWarnings = (warnings: readonly string[]) => {
      if (warned.allows('warnings')) this.logger.warn({ source: where, warnings }, 'Prometheus answered with warnings');
    };
    return {
      identity: this.identity(config),
      label: where,
      kind: 'gpu',
      read: async (signal) => {
        const answer = await client().get(request, signal, where);
        const busyGpus = interpretAnswer(where, answer, config.ignoreNullValues, config.queryFrom, onWarnings);
        this.logger.trace({ source: where, busyGpus }, 'gpu reading');
        return busyGpus === 'no series' ? { backlog: 0, noSeries: true } : { backlog: 0, busyGpus };
      },
    };
  }

  /** The client for each read: its key hashed once (the CA), its use seen at every read (closeIdle). */
  private clientFor(protocol: string, config: GpuSourceConfig): () => PrometheusClient {
    const { tls, key } = httpTlsFor(protocol, config);
    return () => this.clients.get(key, () => this.clientFactory(tls));
  }

  async closeIdle(idleMs: number): Promise<void> {
    await this.clients.closeIdle(idleMs, (client) => client.close());
  }

  close(): Promise<void> {
    return this.clients.close((client) => client.close());
  }
}
