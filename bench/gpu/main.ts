// The GPU source against a real GPU: drives a running scaler (GRPC_PORT 9090, METRICS_PORT 8080)
// as KEDA would, for a GPU-only trigger over Prometheus (127.0.0.1:9091) and one whose podSelector
// matches nothing, and writes one JSON line every 2 s: what Prometheus answers for the trigger's
// query, and what the scaler answers (GetMetrics, IsActive, /explain). bench/gpu/run.sh starts the
// exporter, Prometheus, the scaler and the GPU load around it; docs/gpu.md has the figures.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { defaultGpuQuery } from '../../src/trigger/schema.ts';
import { KedaClient, explainViews, ref } from '../../test/support/kedaClient.ts';

// Until the load writes its last phase (its "end" line), at most `seconds`.
const [out = 'driver.log', phases = 'phases.log', seconds = '300'] = process.argv.slice(2);
const loadEnded = () => existsSync(phases) && readFileSync(phases, 'utf8').includes('"phase": "end"');
const prometheus = 'http://127.0.0.1:9091';
const triggers = {
  llm: ref(
    {
      'gpu.serverAddress': prometheus,
      'gpu.namespace': 'inference',
      'gpu.podSelector': 'llm-.*',
      'gpu.targetUtilization': '0.5',
    },
    'llm',
    'inference',
  ),
  typo: ref({ 'gpu.serverAddress': prometheus, 'gpu.namespace': 'inference', 'gpu.podSelector': 'lm-.*' }, 'typo', 'inference'),
};
// The query the scaler builds for `llm`, asked of Prometheus directly.
const query = defaultGpuQuery('inference', 'llm-.*');

const client = new KedaClient('127.0.0.1:9090');
const settle = <T>(p: Promise<T>) => p.catch((err: unknown) => ({ error: String(err) }));
writeFileSync(out, `${JSON.stringify({ spec: await settle(client.getMetricSpec(triggers.llm)) })}\n`);
for (const end = Date.now() + Number(seconds) * 1000; Date.now() < end && !loadEnded();) {
  const t = Date.now() / 1000;
  const answer = (await settle(fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(query)}`).then((r) => r.json()))) as {
    data?: { result?: { value: [number, string] }[] };
  };
  const row: Record<string, unknown> = { t, prom: answer.data?.result?.[0]?.value[1] ?? 'no series' };
  for (const [key, trigger] of Object.entries(triggers)) {
    const metrics = await settle(client.getMetrics(trigger));
    const active = await settle(client.isActive(trigger));
    row[key] = {
      metrics: 'metricValues' in metrics ? metrics.metricValues[0]?.metricValueFloat : metrics,
      active: 'result' in active ? active.result : active,
    };
  }
  const [view] = await settle(explainViews(8080, 'inference', 'llm')).then((v) => (Array.isArray(v) ? v : []));
  const explanation = view?.explanation as
    { signals?: { busyGpus?: number }; winner?: string; demands?: object } | null | undefined;
  row.busyGpus = explanation?.signals?.busyGpus;
  row.desired = view?.desiredReplicas;
  row.winner = explanation?.winner;
  row.demands = explanation?.demands;
  appendFileSync(out, `${JSON.stringify(row)}\n`);
  await new Promise((r) => setTimeout(r, 2000));
}
client.close();
