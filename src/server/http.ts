// The HTTP side port: /metrics for Prometheus, /healthz and /readyz for humans and probes that
// do not speak gRPC, and /explain for the `explain` CLI.
import { type Server, createServer } from 'node:http';
import { Readable, pipeline } from 'node:stream';
import type { Engine, Evaluation } from '../engine.ts';
import type { ScalerMetrics } from '../telemetry/metrics.ts';

/** An evaluation as shown to people: source labels instead of configs, so no secret leaves. */
function explainView(evaluation: Evaluation, sourceLabels: readonly string[]) {
  const { trigger, decision } = evaluation;
  return {
    trigger: {
      id: trigger.id,
      namespace: trigger.namespace,
      name: trigger.name,
      sources: sourceLabels,
      scaling: trigger.scaling,
    },
    desiredReplicas: decision.desiredReplicas,
    active: decision.active,
    metricValue: evaluation.metricValue,
    explanation: decision.explanation,
  };
}

export interface HttpOptions {
  readonly metrics: ScalerMetrics;
  readonly engine: Engine;
  readonly ready: () => boolean;
  readonly sourceLabels: (evaluation: Evaluation) => readonly string[];
}

export function createHttpServer({ metrics, engine, ready, sourceLabels }: HttpOptions): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, 'method not allowed\n');
    switch (url.pathname) {
      case '/metrics': {
        // Streamed with backpressure, one chunk read ahead of the socket: at 10,000 triggers the
        // text is some 10 MB, of which no more than a couple of 64 KB chunks is held at a time.
        // The first chunk (the registry's families) decides the status; a failure after it cuts
        // the response, which Prometheus counts as a failed scrape.
        const chunks = metrics.exposition();
        chunks.next().then(
          (first) => {
            res.writeHead(200, { 'content-type': metrics.registry.contentType });
            if (first.done !== true) res.write(first.value);
            pipeline(Readable.from(chunks, { highWaterMark: 1 }), res, () => {});
          },
          (err: unknown) => send(500, `${String(err)}\n`),
        );
        return;
      }
      case '/healthz':
        return send(200, 'ok\n');
      case '/readyz':
        return ready() ? send(200, 'ready\n') : send(503, 'not ready\n');
      case '/explain': {
        const namespace = url.searchParams.get('namespace');
        const name = url.searchParams.get('name');
        const matches = engine
          .lastEvaluations()
          .filter((e) => (namespace === null || e.trigger.namespace === namespace) && (name === null || e.trigger.name === name))
          .map((e) => explainView(e, sourceLabels(e)));
        return send(200, `${JSON.stringify(matches, null, 2)}\n`, 'application/json');
      }
      default:
        return send(404, 'not found\n');
    }
  });
}
