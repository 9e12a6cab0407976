// The HTTP side port: /metrics for Prometheus, /healthz and /readyz for humans and probes that
// do not speak gRPC, and /explain for the `explain` CLI.
import { type Server, type ServerResponse, createServer } from 'node:http';
import { Readable, pipeline } from 'node:stream';
import type { Engine, Evaluation, TriggerFailure } from '../engine.ts';
import { redact } from '../errors.ts';
import type { Trigger } from '../trigger/types.ts';
import type { ScalerMetrics } from '../telemetry/metrics.ts';
import type { Logger } from '../telemetry/logger.ts';

/** Triggers one /explain answer shows at most; past it, the caller names a namespace. */
export const EXPLAIN_MAX_TRIGGERS = 500;

/**
 * What the port holds for clients at most (found by review: 40 clients that asked for /metrics at
 * 10,000 triggers and read nothing held 104 MB of heap, the chart's cap 160 MB, for as long as they
 * stayed): answers of /metrics and /explain being sent at once (each some megabytes at 10,000
 * triggers; Prometheus' HA pair and an operator's CLI need three), a client that takes nothing for
 * this long is let go (longer than any scrape timeout), and connections at once.
 */
export interface HttpLimits {
  readonly answers: number;
  readonly idleMs: number;
  readonly connections: number;
}
const LIMITS: HttpLimits = { answers: 4, idleMs: 60_000, connections: 256 };

/**
 * A trigger as shown to people: source labels instead of configs, so no secret leaves. Its last
 * decision (null before one was made), and `lastFailure` when its last answer was an error: KEDA
 * got that error, and the decision shown is the one before it.
 */
function explainView(
  trigger: Trigger,
  sourceLabels: readonly string[],
  evaluation: Evaluation | undefined,
  failure: TriggerFailure | undefined,
  engine: Engine,
) {
  const shared = engine.sharedState(trigger);
  const learnedUnder = engine.learnedUnder(trigger);
  const asked = engine.lastAsked(trigger);
  return {
    trigger: {
      id: trigger.id,
      namespace: trigger.namespace,
      name: trigger.name,
      sources: sourceLabels,
      scaling: trigger.scaling,
    },
    desiredReplicas: evaluation?.decision.desiredReplicas ?? null,
    active: evaluation?.decision.active ?? null,
    metricValue: evaluation?.metricValue ?? null,
    explanation: evaluation?.decision.explanation ?? null,
    // When KEDA last asked (the decision above may be older: an answer that did not change keeps
    // it), and by this process's clock how long ago: a trigger KEDA left looks current otherwise.
    ...(asked !== undefined && {
      lastAskedAt: new Date(asked.atMs).toISOString(),
      secondsSinceAsked: Math.round(asked.agoMs / 1000),
    }),
    // Its settings were edited: the trigger that answers KEDA now (this one goes at the idle sweep).
    ...(asked?.replacedBy !== undefined && { replacedBy: asked.replacedBy }),
    ...(failure !== undefined && {
      lastFailure: { at: new Date(failure.atMs).toISOString(), code: failure.code, message: failure.message },
    }),
    // A trigger whose settings were edited: the one it carried on from.
    ...(learnedUnder !== undefined && { learnedUnder }),
    // With a shared store: which replica writes the trigger's state, and what this one decided from.
    ...(shared !== undefined && {
      sharedState: {
        role: shared.role,
        decidedFrom:
          shared.decidedFromRecordAtMs === undefined
            ? 'its own state'
            : `the state another replica published at ${new Date(shared.decidedFromRecordAtMs).toISOString()}`,
      },
    }),
  };
}

export interface HttpOptions {
  readonly metrics: ScalerMetrics;
  /** Where a scrape that fails is said (once its status is sent, Prometheus sees a cut response only). */
  readonly logger?: Logger;
  readonly engine: Engine;
  readonly ready: () => boolean;
  readonly sourceLabels: (trigger: Trigger) => readonly string[];
  /** LIMITS unless told (tests). */
  readonly limits?: HttpLimits;
}

/** Writes a whole answer: status, content type (and more headers), body; no body to a HEAD. */
type Send = (code: number, body: string, type?: string, headers?: Record<string, string>) => void;

export function createHttpServer({ metrics, engine, ready, sourceLabels, logger, limits = LIMITS }: HttpOptions): Server {
  let answering = 0;
  /** Runs a large answer if fewer than limits.answers are being sent, else 503. */
  const large = (res: ServerResponse, send: Send, answer: () => void) => {
    if (answering >= limits.answers)
      return send(503, `${answering} answers of /metrics or /explain are being sent; try again\n`, undefined, {
        'retry-after': '1',
      });
    answering++;
    res.once('close', () => answering--);
    answer();
  };
  const server = createServer((req, res) => {
    const send: Send = (code, body, type = 'text/plain; charset=utf-8', headers = {}) => {
      res.writeHead(code, { 'content-type': type, ...headers });
      // Node sends no body to a HEAD request, whatever is written.
      res.end(body);
    };
    // A request target that is no URL path ("GET http://[oops") would throw here, in the handler.
    const url = URL.parse(req.url ?? '/', 'http://localhost');
    if (url === null) return send(400, 'bad request target\n');
    // HEAD as GET without the body (RFC 9110: every general-purpose server supports both), and a
    // 405 says what is allowed.
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(405, 'method not allowed\n', undefined, { allow: 'GET, HEAD' });
    switch (url.pathname) {
      case '/metrics':
        return large(res, send, () => serveMetrics(metrics, req.method === 'HEAD', res, send, logger));
      case '/healthz':
        return send(200, 'ok\n');
      case '/readyz':
        return ready() ? send(200, 'ready\n') : send(503, 'not ready\n');
      case '/explain':
        return large(res, send, () => serveExplain(url.searchParams, req.method === 'HEAD', engine, sourceLabels, send));
      default:
        return send(404, 'not found\n');
    }
  });
  // A socket with nothing sent nor received for this long is destroyed (Node's default: never).
  server.setTimeout(limits.idleMs);
  server.maxConnections = limits.connections;
  return server;
}

/**
 * Streamed with backpressure, one chunk read ahead of the socket: at 10,000 triggers the text is
 * some 10 MB, of which no more than a couple of 64 KB chunks is held at a time. The first chunk
 * (the registry's families) decides the status; a failure after it cuts the response, which
 * Prometheus counts as a failed scrape, and the log says why.
 */
function serveMetrics(metrics: ScalerMetrics, head: boolean, res: ServerResponse, send: Send, logger: Logger | undefined): void {
  const chunks = metrics.exposition();
  chunks.next().then(
    (first) => {
      // A HEAD gets the status the first chunk decides, not the per-trigger text; a scraper
      // gone while it was built gets nothing (piping to it throws on Node 24).
      if (head || res.destroyed) {
        void chunks.return();
        if (!res.destroyed) send(200, '', metrics.registry.contentType);
        return;
      }
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      if (first.done !== true) res.write(first.value);
      pipeline(Readable.from(chunks, { highWaterMark: 1 }), res, (err) => {
        // A scraper that hangs up (its timeout) is no failure of ours.
        if (err !== undefined && err !== null && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE')
          logger?.warn({ err }, '/metrics scrape failed after its first chunk: the response was cut');
      });
    },
    (err: unknown) => {
      logger?.warn({ err }, '/metrics scrape failed');
      send(500, `${redact(String(err))}\n`);
    },
  );
}

/** The triggers of `?namespace=` and `?name=` (each optional): decisions, errors alone, refusals. */
function serveExplain(
  query: URLSearchParams,
  head: boolean,
  engine: Engine,
  sourceLabels: HttpOptions['sourceLabels'],
  send: Send,
): void {
  const namespace = query.get('namespace');
  const name = query.get('name');
  const wanted = (t: { readonly namespace: string; readonly name: string }) =>
    (namespace === null || t.namespace === namespace) && (name === null || t.name === name);
  const failures = new Map(engine.lastFailures().flatMap((f) => (wanted(f.trigger) ? [[f.trigger.id, f] as const] : [])));
  const evaluations = engine.lastEvaluations().filter((e) => wanted(e.trigger));
  const refusals = engine.lastRefusals().filter((r) => wanted(r));
  // One answer is built whole (some 1.2 KB a trigger): at thousands of triggers, a few unread ones
  // took the heap past the chart's limit (found by review). Every entry counts: triggers that
  // never got an answer too (a broker down at start), and refusals.
  let entries = evaluations.length + refusals.length + failures.size;
  for (const e of evaluations) if (failures.has(e.trigger.id)) entries--;
  if (entries > EXPLAIN_MAX_TRIGGERS) {
    send(400, `${entries} triggers match; at most ${EXPLAIN_MAX_TRIGGERS} in one answer: add ?namespace= (and ?name=)\n`);
    return;
  }
  // A HEAD gets the status and type without the answer built (Node would drop its body anyway).
  if (head) return send(200, '', 'application/json');
  const matches = evaluations.map((e) => {
    const failure = failures.get(e.trigger.id);
    failures.delete(e.trigger.id);
    return explainView(e.trigger, sourceLabels(e.trigger), e, failure, engine);
  });
  // Triggers that never got an answer: only their error.
  for (const f of failures.values()) matches.push(explainView(f.trigger, sourceLabels(f.trigger), undefined, f, engine));
  // Metadata KEDA sent and the scaler refused: the ScaledObject and what KEDA was told.
  const refused: object[] = refusals.map((r) => ({
    trigger: { namespace: r.namespace, name: r.name },
    refused: { at: new Date(r.atMs).toISOString(), code: 'INVALID_ARGUMENT', message: r.message, calls: r.refusals },
  }));
  send(200, `${JSON.stringify([...matches, ...refused], null, 2)}\n`, 'application/json');
}
