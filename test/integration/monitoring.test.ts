// The alerts and the dashboard the chart ships (deploy/helm/keda-inference-scaler/files/):
// Prometheus' own rule engine (promtool, from Debian's prometheus package that
// scripts/services.sh installs) checks the rule file and evaluates every rule on series that
// should fire it and on series that should not, and parses every query of the dashboard; a live
// scaler's /metrics must carry every metric either reads, so that a renamed metric cannot leave an
// alert that never fires or a panel that stays empty.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { RabbitFixture } from '../support/rabbitmq.ts';
import { ref, requireService, startTestScaler } from '../support/scaler.ts';

const files = fileURLToPath(new URL('../../deploy/helm/keda-inference-scaler/files/', import.meta.url));
const rulesFile = join(files, 'prometheus-rules.yaml');

interface Rule {
  readonly alert: string;
  readonly expr: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}
const rules: Rule[] = (parseYaml(readFileSync(rulesFile, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (g) => g.rules,
);

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  expect(r.error, 'promtool not found: run scripts/services.sh up (it installs prometheus)').toBeUndefined();
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** A counter that grows by `perMinute` for `minutes`, then stays (promtool's expanding notation). */
const growing = (perMinute: number, minutes: number, thenFlatFor = 0) =>
  `0+${perMinute}x${minutes}${thenFlatFor > 0 ? ` ${perMinute * minutes}x${thenFlatFor}` : ''}`;

interface Case {
  readonly name: string;
  readonly alert: string;
  readonly series: Record<string, string>;
  readonly at: string;
  /** The labels the expression yields for each alert expected to fire (none: silent). */
  readonly fires: Record<string, string>[];
}

const pod = { namespace: 'keda', pod: 'kis-0' };
const requests = (method: string, code: string) =>
  `keda_inference_scaler_grpc_requests_total{namespace="keda",pod="kis-0",method="${method}",code="${code}"}`;
const buckets = (counts: Record<string, number>) =>
  Object.fromEntries(
    Object.entries(counts).map(([le, perMinute]) => [
      `keda_inference_scaler_grpc_request_duration_seconds_bucket{namespace="keda",pod="kis-0",method="GetMetrics",le="${le}"}`,
      growing(perMinute, 30),
    ]),
  );

const CASES: Case[] = [
  {
    name: 'a source failing for 20 minutes',
    alert: 'KedaInferenceScalerSourceFailing',
    series: {
      'keda_inference_scaler_source_errors_total{namespace="keda",pod="kis-0",kind="rabbitmq",code="UNAVAILABLE"}': growing(
        6,
        20,
      ),
    },
    at: '20m',
    fires: [{ ...pod, kind: 'rabbitmq', code: 'UNAVAILABLE' }],
  },
  {
    name: 'a source that failed for 3 minutes and recovered',
    alert: 'KedaInferenceScalerSourceFailing',
    series: {
      'keda_inference_scaler_source_errors_total{namespace="keda",pod="kis-0",kind="kafka",code="DEADLINE_EXCEEDED"}': growing(
        6,
        3,
        20,
      ),
    },
    at: '20m',
    fires: [],
  },
  {
    name: 'metadata refused for 20 minutes',
    alert: 'KedaInferenceScalerTriggerRefused',
    series: { [requests('GetMetrics', 'INVALID_ARGUMENT')]: growing(2, 20), [requests('GetMetrics', 'OK')]: growing(100, 20) },
    at: '20m',
    fires: [{ ...pod, method: 'GetMetrics' }],
  },
  {
    name: 'only answers that are OK',
    alert: 'KedaInferenceScalerTriggerRefused',
    series: { [requests('GetMetrics', 'OK')]: growing(100, 20) },
    at: '20m',
    fires: [],
  },
  {
    name: 'INTERNAL answers for 10 minutes',
    alert: 'KedaInferenceScalerInternalErrors',
    series: { [requests('IsActive', 'INTERNAL')]: growing(1, 10) },
    at: '10m',
    fires: [{ ...pod, method: 'IsActive' }],
  },
  {
    name: 'one INTERNAL answer 20 minutes ago',
    alert: 'KedaInferenceScalerInternalErrors',
    series: { [requests('IsActive', 'INTERNAL')]: '0 1x25' },
    at: '25m',
    fires: [],
  },
  {
    name: 'an uncaught exception two minutes ago',
    alert: 'KedaInferenceScalerUncaughtErrors',
    series: { 'keda_inference_scaler_uncaught_errors_total{namespace="keda",pod="kis-0",kind="exception"}': '0 0 0 1 1 1 1' },
    at: '5m',
    fires: [pod],
  },
  {
    name: 'an unhandled rejection twenty minutes ago',
    alert: 'KedaInferenceScalerUncaughtErrors',
    series: { 'keda_inference_scaler_uncaught_errors_total{namespace="keda",pod="kis-0",kind="rejection"}': '0 0 0 1x20' },
    at: '22m',
    fires: [],
  },
  {
    name: 'streams refused two minutes ago',
    alert: 'KedaInferenceScalerStreamsRefused',
    series: { [requests('StreamIsActive', 'RESOURCE_EXHAUSTED')]: '0 0 0 40 40 40 40' },
    at: '5m',
    fires: [pod],
  },
  {
    name: 'streams refused twenty minutes ago',
    alert: 'KedaInferenceScalerStreamsRefused',
    series: { [requests('StreamIsActive', 'RESOURCE_EXHAUSTED')]: '0 0 0 40x20' },
    at: '22m',
    fires: [],
  },
  {
    name: 'answers of about 2 s',
    alert: 'KedaInferenceScalerSlowAnswers',
    series: buckets({ '0.001': 0, '1': 0, '2.5': 60, '+Inf': 60 }),
    at: '20m',
    fires: [pod],
  },
  {
    name: 'answers under a millisecond',
    alert: 'KedaInferenceScalerSlowAnswers',
    series: buckets({ '0.001': 60, '1': 60, '2.5': 60, '+Inf': 60 }),
    at: '20m',
    fires: [],
  },
  {
    name: 'source reads waiting at every scrape for 10 minutes',
    alert: 'KedaInferenceScalerReadsWaiting',
    series: { 'keda_inference_scaler_source_reads_waiting{namespace="keda",pod="kis-0"}': '0 0 12 40 35x12' },
    at: '14m',
    fires: [pod],
  },
  {
    name: 'source reads waiting through a burst of new triggers',
    alert: 'KedaInferenceScalerReadsWaiting',
    series: { 'keda_inference_scaler_source_reads_waiting{namespace="keda",pod="kis-0"}': '0 900 0x20' },
    at: '12m',
    fires: [],
  },
  // Found by review: a replica that started in a burst had one or two samples in the 10-minute
  // window, all of them positive.
  {
    name: 'source reads waiting in the burst a restart brings, on the first scrapes of a new replica',
    alert: 'KedaInferenceScalerReadsWaiting',
    series: { 'keda_inference_scaler_source_reads_waiting{namespace="keda",pod="kis-0"}': '40 12 0x20' },
    at: '1m',
    fires: [],
  },
  {
    name: 'state store commands refused for 15 minutes while it answers',
    alert: 'KedaInferenceScalerStateStoreErrors',
    series: { 'keda_inference_scaler_state_store_errors_total{namespace="keda",pod="kis-0",op="lease"}': growing(30, 15) },
    at: '15m',
    fires: [{ ...pod, op: 'lease' }],
  },
  {
    name: 'one state store timeout',
    alert: 'KedaInferenceScalerStateStoreErrors',
    series: { 'keda_inference_scaler_state_store_errors_total{namespace="keda",pod="kis-0",op="read"}': '0 0 1x20' },
    at: '15m',
    fires: [],
  },
  {
    name: 'a state store down for 10 minutes',
    alert: 'KedaInferenceScalerStateStoreDown',
    series: { 'keda_inference_scaler_state_store_up{namespace="keda",pod="kis-0"}': '1 1 0x10' },
    at: '12m',
    fires: [pod],
  },
  {
    name: 'a state store up',
    alert: 'KedaInferenceScalerStateStoreDown',
    series: { 'keda_inference_scaler_state_store_up{namespace="keda",pod="kis-0"}': '1x20' },
    at: '20m',
    fires: [],
  },
  {
    name: 'a served certificate that expires in 2 days',
    alert: 'KedaInferenceScalerCertificateExpiring',
    // promtool's clock starts at 0: 2 hours on, the certificate has 2 days left.
    series: {
      'keda_inference_scaler_tls_certificate_expiry_timestamp_seconds{namespace="keda",pod="kis-0"}': `${2 * 3600 + 2 * 86400}x120`,
    },
    at: '2h',
    fires: [pod],
  },
  {
    name: 'a served certificate with 60 days left',
    alert: 'KedaInferenceScalerCertificateExpiring',
    series: {
      'keda_inference_scaler_tls_certificate_expiry_timestamp_seconds{namespace="keda",pod="kis-0"}': `${60 * 86400}x120`,
    },
    at: '2h',
    fires: [],
  },
  {
    name: 'TLS reloads failing for an hour',
    alert: 'KedaInferenceScalerTlsReloadFailing',
    series: { 'keda_inference_scaler_tls_reload_failures_total{namespace="keda",pod="kis-0"}': growing(2, 60) },
    at: '60m',
    fires: [pod],
  },
  {
    name: 'a reload that failed for 5 minutes while a certificate was half written',
    alert: 'KedaInferenceScalerTlsReloadFailing',
    series: { 'keda_inference_scaler_tls_reload_failures_total{namespace="keda",pod="kis-0"}': growing(2, 5, 55) },
    at: '60m',
    fires: [],
  },
  {
    name: 'records of another version for an hour',
    alert: 'KedaInferenceScalerStateRecordsRejected',
    series: {
      'keda_inference_scaler_state_records_rejected_total{namespace="keda",pod="kis-0",reason="format"}': growing(3, 70),
    },
    at: '70m',
    fires: [{ ...pod, reason: 'format' }],
  },
  {
    name: "records of another version for a rollout's 5 minutes, then none",
    alert: 'KedaInferenceScalerStateRecordsRejected',
    series: {
      'keda_inference_scaler_state_records_rejected_total{namespace="keda",pod="kis-0",reason="format"}': growing(3, 5, 60),
    },
    at: '40m',
    fires: [],
  },
  {
    name: 'streams refused from the first scrape of a replica that just started',
    alert: 'KedaInferenceScalerStreamsRefused',
    series: { [requests('StreamIsActive', 'RESOURCE_EXHAUSTED')]: '0 40 40 40' },
    at: '3m',
    fires: [pod],
  },
  {
    name: 'records too large to publish',
    alert: 'KedaInferenceScalerStateRecordsRejected',
    series: {
      'keda_inference_scaler_state_records_rejected_total{namespace="keda",pod="kis-0",reason="too-large"}': growing(3, 70),
    },
    at: '70m',
    fires: [],
  },
  {
    name: 'a trigger held at maxReplicas for 20 minutes, on two scaler replicas',
    alert: 'KedaInferenceScalerTriggerAtMaxReplicas',
    series: {
      'keda_inference_scaler_trigger_winning_term{namespace="ml",scaled_object="llm",trigger="ab12",term="maxReplicas",pod="kis-0"}':
        '1x20',
      'keda_inference_scaler_trigger_winning_term{namespace="ml",scaled_object="llm",trigger="ab12",term="maxReplicas",pod="kis-1"}':
        '1x20',
    },
    at: '20m',
    fires: [{ namespace: 'ml', scaled_object: 'llm', term: 'maxReplicas' }],
  },
  {
    name: 'a trigger sized by its backlog',
    alert: 'KedaInferenceScalerTriggerAtMaxReplicas',
    series: {
      'keda_inference_scaler_trigger_winning_term{namespace="ml",scaled_object="llm",trigger="ab12",term="backlog",pod="kis-0"}':
        '1x20',
    },
    at: '20m',
    fires: [],
  },
];

/** An annotation as Prometheus renders it for an alert with these labels (the rules use `$labels` only). */
function rendered(template: string, labels: Record<string, string>): string {
  return template.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name] ?? '');
}

function ruleTest(c: Case) {
  const rule = rules.find((r) => r.alert === c.alert)!;
  return {
    interval: '1m',
    input_series: Object.entries(c.series).map(([series, values]) => ({ series, values })),
    alert_rule_test: [
      {
        eval_time: c.at,
        alertname: c.alert,
        exp_alerts: c.fires.map((labels) => ({
          exp_labels: { ...labels, ...rule.labels },
          exp_annotations: Object.fromEntries(Object.entries(rule.annotations).map(([k, v]) => [k, rendered(v, labels)])),
        })),
      },
    ],
  };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kis-monitoring-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the alert rules', () => {
  it('are valid Prometheus rules (promtool check rules)', () => {
    const { status, output } = promtool('check', 'rules', rulesFile);
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(status).toBe(0);
  });

  it('each has a case that fires it and one that does not', () => {
    for (const rule of rules) {
      const cases = CASES.filter((c) => c.alert === rule.alert);
      expect(
        cases.some((c) => c.fires.length > 0),
        rule.alert,
      ).toBe(true);
      expect(
        cases.some((c) => c.fires.length === 0),
        rule.alert,
      ).toBe(true);
    }
  });

  it.each(CASES.map((c) => [c.alert, c.name, c] as const))('%s: %s', (_alert, name, c) => {
    const file = join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
    writeFileSync(file, toYaml({ rule_files: [rulesFile], evaluation_interval: '1m', tests: [ruleTest(c)] }));
    const { status, output } = promtool('test', 'rules', file);
    expect(status, output).toBe(0);
  });
});

interface Panel {
  readonly type: string;
  readonly title: string;
  readonly targets?: readonly { readonly expr: string }[];
}
const dashboard = JSON.parse(readFileSync(join(files, 'grafana-dashboard.json'), 'utf8')) as {
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
};
const panelQueries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
const variableQueries = dashboard.templating.list.flatMap((v) =>
  v.type === 'query' ? [typeof v.query === 'string' ? v.query : v.query.query] : [],
);

describe('the dashboard', () => {
  it("has a query on every panel, each one PromQL that Prometheus' parser takes", () => {
    expect(dashboard.panels.filter((p) => p.type !== 'row' && (p.targets ?? []).length === 0)).toEqual([]);
    expect(panelQueries.length).toBeGreaterThanOrEqual(10);
    // Grafana's own variables, as Prometheus would see them once Grafana has substituted them.
    const promql = (expr: string) =>
      expr.replace(/\$__rate_interval/g, '1m').replace(/"\$(namespace|scaled_object|pod)"/g, '".*"');
    const file = join(dir, 'dashboard-queries.yaml');
    const record = (expr: string, i: number) => ({ record: `dashboard:query_${i}`, expr: promql(expr) });
    writeFileSync(file, toYaml({ groups: [{ name: 'dashboard', rules: panelQueries.map((q, i) => record(q.expr, i)) }] }));
    const { status, output } = promtool('check', 'rules', file);
    expect(status, output).toBe(0);
  });

  it('offers its namespace, ScaledObject and pod choices from scaler metrics, and filters every panel by them', () => {
    expect(variableQueries.map((q) => /^label_values\((\w+)/.exec(q)?.[1])).toEqual([
      'keda_inference_scaler_trigger_desired_replicas',
      'keda_inference_scaler_trigger_desired_replicas',
      'keda_inference_scaler_grpc_requests_total',
    ]);
    for (const q of panelQueries) {
      if (q.expr.includes('keda_inference_scaler_trigger_')) expect(q.expr, q.panel).toContain('scaled_object=~"$scaled_object"');
      else expect(q.expr, q.panel).toContain('pod=~"$pod"');
    }
  });
});

const metricsIn = (text: string) => [...text.matchAll(/keda_inference_scaler_\w+/g)].map((m) => m[0]);

describe('the metrics they read', () => {
  it("are all on a live scaler's /metrics (a trigger held at its cap among them)", async () => {
    await using rabbit = await RabbitFixture.connect(requireService('RABBITMQ_URL'));
    await using t = await startTestScaler();
    // A trigger held at its maxReplicas: the per-trigger families have a series with term="maxReplicas".
    const queue = await rabbit.queue(50);
    const metadata = {
      'rabbitmq.host': requireService('RABBITMQ_URL'),
      'rabbitmq.queueName': queue,
      maxReplicas: '2',
      keepWarm: '0',
    };
    const answer = await t.client.getMetrics(ref(metadata, 'capped', 'ml'));
    expect(answer.metricValues[0]!.metricValueFloat).toBe(2);
    const text = await (await fetch(`http://127.0.0.1:${t.scaler.metricsPort}/metrics`)).text();
    const families = new Set([...text.matchAll(/^# TYPE (\w+) (\w+)$/gm)].map((m) => m[1]));
    const read = new Set([
      ...rules.flatMap((r) => metricsIn(r.expr)),
      ...panelQueries.flatMap((q) => metricsIn(q.expr)),
      ...variableQueries.flatMap(metricsIn),
    ]);
    expect(read.size).toBeGreaterThanOrEqual(15);
    for (const name of read) {
      const family = name.replace(/_bucket$/, '');
      // The TLS families are there with TLS on the gRPC port alone: tls.test.ts checks them there.
      if (family.startsWith('keda_inference_scaler_tls_')) expect(families.has(family)).toBe(false);
      else expect(families.has(family), `${name} is not on /metrics`).toBe(true);
    }
    expect(text).toMatch(
      /^keda_inference_scaler_trigger_winning_term\{namespace="ml",scaled_object="capped",trigger="\w+",term="maxReplicas"\} 1$/m,
    );
    expect(text).toMatch(/^keda_inference_scaler_grpc_requests_total\{method="GetMetrics",code="OK"\} 1$/m);
  });
});
