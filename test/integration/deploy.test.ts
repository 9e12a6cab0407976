// The shipping files: the Helm chart (helm lint, helm template with the default and the full
// values, the rendered manifests against Kubernetes' types and schemas, values.schema.json
// rejecting wrong values), the compose file (against the compose specification, and its images
// against the test bed's versions), and the Dockerfile (hadolint, its COPY sources, and its entry
// point built and started as the image does).
// Tools come from scripts/tools.sh: helm (Go module proxy), test/tools/validate (k8s.io/api strict
// decoding, compose-go's loader) and hadolint (PyPI).
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { loadConfig, parseProfiles, readConfigYaml } from '../../src/config.ts';
import { sourceFields } from '../../src/trigger/fields.ts';
import { KafkaFixture } from '../support/kafka.ts';
import { rawClient } from '../support/redis.ts';
import { RabbitFixture, managementCounts } from '../support/rabbitmq.ts';
import { eventually, requireService, startTestScaler } from '../support/scaler.ts';
import { SqsFixture, useLocalAwsCredentials } from '../support/sqs.ts';
import { PEM_CERTIFICATE_STUB, PEM_PRIVATE_KEY_STUB } from '../fixtures/pem.ts';
import { type Manifest, describe as name, parseManifests, schemaProblems } from '../support/manifests.ts';
import { loadCrdSchemas, unknownFields } from '../support/crdFields.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const chart = join(root, 'deploy/helm/keda-inference-scaler');
const fullValues = join(chart, 'ci/full-values.yaml');
const valkeyValues = join(chart, 'ci/valkey-values.yaml');
const composeFile = join(root, 'deploy/compose/docker-compose.yaml');
const chartAppVersion = (parseYaml(readFileSync(join(chart, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion;
const KUBE_VERSION = '1.33.0';

let tools: Record<'HELM' | 'VALIDATE' | 'HADOLINT' | 'CRDS', string>;

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}
function run(command: string, args: string[], input?: string): Run {
  const r = spawnSync(command, args, { cwd: root, encoding: 'utf8', input, maxBuffer: 16 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function runAsync(command: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

beforeAll(() => {
  // Cached after the first run; scripts/test.sh builds them before the integration step.
  const out = execFileSync('bash', ['scripts/tools.sh'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  tools = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split('=') as [string, string]),
  ) as typeof tools;
}, 900_000);

function template(...args: string[]): Run {
  return run(tools.HELM, [
    'template',
    'keda-inference-scaler',
    chart,
    '--namespace',
    'keda',
    '--kube-version',
    KUBE_VERSION,
    ...args,
  ]);
}
function rendered(...args: string[]): Manifest[] {
  const r = template(...args);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return parseManifests(r.stdout);
}
/** A kind of Kubernetes' own API (the strict decoder's), not a custom resource. */
const builtIn = (m: Manifest) => !m.apiVersion.includes('.') || /\.k8s\.io\//.test(m.apiVersion);
const find = (ms: Manifest[], kind: string) => {
  const m = ms.find((x) => x.kind === kind);
  if (m === undefined) throw new Error(`no ${kind} rendered`);
  return m as Manifest & { spec: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
};

const valuesFiles = [
  ['default values (one replica, state in memory)', []],
  ['ci/full-values.yaml (three replicas, an external store over TLS)', ['-f', fullValues]],
  ['ci/valkey-values.yaml (two replicas, the bundled Valkey)', ['-f', valkeyValues]],
];

/** A container's env as name -> value, or -> valueFrom for variables from Secrets. */
function envOf(container: { env: { name: string; value?: string; valueFrom?: unknown }[] }): Record<string, unknown> {
  return Object.fromEntries(container.env.map((e) => [e.name, e.value ?? e.valueFrom]));
}

/** The scaler container's environment in the Deployment rendered with `values` (each `key=value`). */
function scalerEnv(...values: string[]): Record<string, unknown> {
  return envOf(find(rendered(...values.flatMap((v) => ['--set', v])), 'Deployment').spec.template.spec.containers[0]);
}

/** What the scaler's configuration makes of that environment (and `extra`, the Secrets' values), without a config file. */
function scalerConfig(env: Record<string, unknown>, extra: Record<string, string> = {}) {
  return loadConfig({ ...(env as Record<string, string>), ...extra, CONFIG_FILE: undefined });
}

describe('Helm chart', () => {
  it.each(valuesFiles)('passes helm lint --strict with %s', (_l, args) => {
    const r = run(tools.HELM, ['lint', chart, '--strict', ...(args as string[])]);
    expect(r.stdout + r.stderr).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(r.status).toBe(0);
  });

  it.each(valuesFiles)('renders with %s to manifests that pass Kubernetes schema validation', (_l, args) => {
    const r = template(...(args as string[]));
    expect(r.status).toBe(0);
    // Strict decoding into k8s.io/api types: unknown fields, wrong types, duplicate keys.
    const strict = run(tools.VALIDATE, ['k8s', '-'], r.stdout);
    expect(strict.stderr).toBe('');
    expect(strict.status).toBe(0);
    // OpenAPI schemas (kubernetes-models): required fields, enums, formats; CRDs included.
    const manifests = parseManifests(r.stdout);
    for (const m of manifests) expect(schemaProblems(m), name(m)).toEqual([]);
    const kinds = manifests.map((m) => m.kind).sort();
    expect(kinds).toEqual(
      expect.arrayContaining(['ConfigMap', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount']),
    );
  });

  it.each(valuesFiles)('renders with %s custom resources whose every field their CRD defines', (_l, args) => {
    const crds = loadCrdSchemas(tools.CRDS);
    // The chart's custom resources are off by default: on in every row, so that each has them.
    const on = ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.prometheusRule.enabled=true'];
    const custom = parseManifests(template(...(args as string[]), ...on).stdout).filter((m) => !builtIn(m));
    expect(custom.map((m) => m.kind).sort()).toEqual(['PrometheusRule', 'ServiceMonitor']);
    for (const m of custom) {
      const schema = crds.get(`${m.apiVersion} ${m.kind}`);
      expect(schema, `a CRD for ${name(m)}`).toBeDefined();
      expect(unknownFields(m, schema!), name(m)).toEqual([]);
    }
  });

  it('the strict validation catches an unknown field (the check can fail)', () => {
    const r = template();
    const broken = r.stdout.replace('revisionHistoryLimit: 5', 'revisionHistoryLimit: 5\n  replicasTypo: 3');
    const strict = run(tools.VALIDATE, ['k8s', '-'], broken);
    expect(strict.status).toBe(1);
    expect(strict.stderr).toMatch(/unknown field "spec.replicasTypo"/);
  });

  it('defaults: 1 replica with its state in memory, a PDB that lets a drain evict it, hardened pods, native gRPC probes on the main port, a headless Service', () => {
    const ms = rendered();
    const deployment = find(ms, 'Deployment');
    expect(deployment.metadata.name).toBe('keda-inference-scaler');
    expect(deployment.spec.replicas).toBe(1);
    // One pod, and one eviction allowed: a node drain goes on (KEDA retries while it moves).
    expect(find(ms, 'PodDisruptionBudget').spec.maxUnavailable).toBe(1);
    // Pods that are not ready (crash-looping on a bad setting) may go whatever the budget.
    expect(find(ms, 'PodDisruptionBudget').spec.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
    expect(ms.filter((m) => m.kind === 'Deployment')).toHaveLength(1);
    expect(Object.keys(envOf(deployment.spec.template.spec.containers[0])).filter((n) => n.startsWith('STATE_STORE'))).toEqual(
      [],
    );
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    expect(container.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(container.livenessProbe.grpc).toEqual({ port: 9090 });
    expect(container.readinessProbe.grpc).toEqual({ port: 9090, service: 'externalscaler.ExternalScaler' });
    expect(container.ports.map((p: { containerPort: number }) => p.containerPort)).toEqual([9090, 8080]);
    expect(container.resources.requests).toBeDefined();
    const shutdownMs = Number(container.env.find((e: { name: string }) => e.name === 'SHUTDOWN_TIMEOUT_MS').value);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(shutdownMs);
    // V8's heap cap leaves room under the memory limit for the rest of the process (about 80 MB).
    const nodeOptions = container.env.find((e: { name: string }) => e.name === 'NODE_OPTIONS').value as string;
    const heapMb = Number(/^--max-old-space-size=(\d+)$/.exec(nodeOptions)?.[1]);
    expect(container.resources.limits.memory).toBe('256Mi');
    expect(heapMb + 80).toBeLessThanOrEqual(256);
    const unset = find(rendered('--set', 'nodeHeapMb=null'), 'Deployment').spec.template.spec.containers[0];
    expect(unset.env.map((e: { name: string }) => e.name)).not.toContain('NODE_OPTIONS');
    // Per-trigger metric families: on by default, off with config.triggerMetrics=false (as the
    // scaler's TRIGGER_METRICS parses it: "true" or "false").
    const envValue = (c: { env: { name: string; value: string }[] }, name: string) => c.env.find((e) => e.name === name)?.value;
    expect(envValue(container, 'TRIGGER_METRICS')).toBe('true');
    // The receive limit reaches the scaler as the number its schema parses.
    expect(envValue(container, 'GRPC_MAX_RECEIVE_MESSAGE_BYTES')).toBe('262144');
    expect(envValue(container, 'GRPC_MAX_OPEN_STREAMS')).toBe('5000');
    // The loop's target reaches the scaler as a number its schema takes, the default and the "off".
    expect(loadConfig({ LOOP_TARGET_UTILIZATION: envValue(container, 'LOOP_TARGET_UTILIZATION') }).LOOP_TARGET_UTILIZATION).toBe(
      0.5,
    );
    const off = find(rendered('--set', 'config.loopTargetUtilization=1'), 'Deployment').spec.template.spec.containers[0];
    expect(loadConfig({ LOOP_TARGET_UTILIZATION: envValue(off, 'LOOP_TARGET_UTILIZATION') }).LOOP_TARGET_UTILIZATION).toBe(1);
    // Helm renders a small number with an exponent ("1e-05"), which the scaler takes too.
    const low = find(rendered('--set-json', 'config.loopTargetUtilization=0.00001'), 'Deployment').spec.template.spec
      .containers[0];
    expect(loadConfig({ LOOP_TARGET_UTILIZATION: envValue(low, 'LOOP_TARGET_UTILIZATION') }).LOOP_TARGET_UTILIZATION).toBe(
      0.00001,
    );
    // The retention reaches the scaler as the number its schema parses (a day).
    expect(loadConfig({ STATE_RETENTION_MS: envValue(container, 'STATE_RETENTION_MS') }).STATE_RETENTION_MS).toBe(86_400_000);
    const quiet = find(rendered('--set', 'config.triggerMetrics=false'), 'Deployment').spec.template.spec.containers[0];
    expect(envValue(quiet, 'TRIGGER_METRICS')).toBe('false');
    expect(pod.topologySpreadConstraints.map((c: { topologyKey: string }) => c.topologyKey)).toEqual([
      'topology.kubernetes.io/zone',
      'kubernetes.io/hostname',
    ]);
    // This revision's pods only: during a rollout the old ones counted (found by review).
    for (const c of pod.topologySpreadConstraints) expect(c.matchLabelKeys).toEqual(['pod-template-hash']);
    // The version the pod runs: the image tag when set (found by review: the chart's appVersion whatever ran).
    expect((deployment.metadata.labels as Record<string, string>)['app.kubernetes.io/version']).toBe(chartAppVersion);
    const tagged = find(rendered('--set', 'image.tag=0.2.3'), 'Deployment');
    expect((tagged.metadata.labels as Record<string, string>)['app.kubernetes.io/version']).toBe('0.2.3');
    expect(tagged.spec.template.spec.containers[0].image).toMatch(/:0\.2\.3$/);
    // A tag written as a number (`tag: 8` in a values file is one): refused by the schema before (found by review).
    const numbered = find(rendered('--set-json', 'image.tag=2'), 'Deployment');
    expect((numbered.metadata.labels as Record<string, string>)['app.kubernetes.io/version']).toBe('2');
    expect(numbered.spec.template.spec.containers[0].image).toMatch(/:2$/);
    const service = find(ms, 'Service');
    expect(service.spec.clusterIP).toBe('None');
    expect(service.spec.ports.map((p: { name: string; port: number }) => `${p.name}:${p.port}`)).toEqual([
      'grpc:9090',
      'metrics:8080',
    ]);
    expect(ms.some((m) => m.kind === 'ServiceMonitor')).toBe(false);
    expect(ms.some((m) => m.kind === 'PrometheusRule')).toBe(false);
    expect(ms.filter((m) => m.kind === 'ConfigMap')).toHaveLength(1);
  });

  it('NetworkPolicy lets KEDA reach gRPC and Prometheus reach metrics, nothing else', () => {
    const policy = find(rendered(), 'NetworkPolicy');
    const [keda, prometheus, ...rest] = policy.spec.ingress;
    expect(rest).toEqual([]);
    expect(keda.ports).toEqual([{ port: 'grpc', protocol: 'TCP' }]);
    expect(keda.from[0].namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'keda' });
    // KEDA's pods carry `app` from its Helm chart and from its release manifests alike.
    expect(keda.from[0].podSelector.matchExpressions).toEqual([
      { key: 'app', operator: 'In', values: ['keda-operator', 'keda-operator-metrics-apiserver', 'keda-metrics-apiserver'] },
    ]);
    expect(prometheus.ports).toEqual([{ port: 'metrics', protocol: 'TCP' }]);
  });

  // Found by review: Helm merged a user's selector with the default one, and a pod had to match both.
  it("NetworkPolicy takes a KEDA pod selector of the user's in place of the default, not beside it", () => {
    const policy = find(
      rendered('--set', 'networkPolicy.keda.podSelector.matchLabels.app\\.kubernetes\\.io/name=keda-operator'),
      'NetworkPolicy',
    );
    expect(policy.spec.ingress[0].from[0].podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/name': 'keda-operator' } });
  });

  it('full values: mutual TLS from Secrets, probes on the plaintext health port, secrets as env, IRSA, ServiceMonitor, alerts, dashboard', () => {
    const ms = rendered('-f', fullValues);
    const pod = find(ms, 'Deployment').spec.template.spec;
    const container = pod.containers[0];
    const env = Object.fromEntries(
      container.env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]),
    );
    expect(env.TLS_CERT_FILE).toBe('/etc/keda-inference-scaler/tls/tls.crt');
    expect(env.TLS_KEY_FILE).toBe('/etc/keda-inference-scaler/tls/tls.key');
    expect(env.TLS_CLIENT_CA_FILE).toBe('/etc/keda-inference-scaler/client-ca/ca.crt');
    expect(env.HEALTH_PORT).toBe('9091');
    expect(env.KAFKA_PASSWORD).toEqual({ secretKeyRef: { name: 'kafka-scaler', key: 'password' } });
    expect(container.livenessProbe.grpc).toEqual({ port: 9091 });
    expect(container.readinessProbe.grpc.port).toBe(9091);
    const volumes = Object.fromEntries(
      pod.volumes.map((v: { name: string; secret?: { secretName: string } }) => [v.name, v.secret?.secretName]),
    );
    expect(volumes).toMatchObject({ tls: 'keda-inference-scaler-tls', 'client-ca': 'keda-clients-ca' });
    // Whole-directory mounts: a subPath mount would never see a renewed certificate.
    for (const mount of container.volumeMounts) expect(mount.subPath).toBeUndefined();
    // The client CA volume carries the CA alone, never a private key of the Secret it comes from.
    const clientCA = pod.volumes.find((v: { name: string }) => v.name === 'client-ca');
    expect(clientCA.secret.items).toEqual([{ key: 'ca.crt', path: 'ca.crt' }]);
    expect(find(ms, 'ServiceAccount').metadata.annotations).toEqual({
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/keda-inference-scaler',
    });
    // honorLabels: the per-trigger series' namespace (the ScaledObject's) is kept, not renamed
    // exported_namespace under the Operator's target label (the dashboard and alerts group by it).
    expect(find(ms, 'ServiceMonitor').spec.endpoints[0]).toMatchObject({ port: 'metrics', honorLabels: true });
    // The rules Prometheus loads without the Operator (test/integration/monitoring.test.ts), as they are.
    const rule = find(ms, 'PrometheusRule');
    expect(rule.metadata).toMatchObject({ namespace: 'monitoring', labels: { release: 'kube-prometheus-stack' } });
    const file = parseYaml(readFileSync(join(chart, 'files/prometheus-rules.yaml'), 'utf8')) as { groups: unknown[] };
    expect(rule.spec.groups.slice(0, file.groups.length)).toEqual(file.groups);
    // And, with the chart's ServiceMonitor (the scrape job is then its Service's name), an alert
    // for no replica up, which no rule on the scaler's own series can be (they vanish with it).
    const up = rule.spec.groups.at(-1);
    expect(up.rules.map((r: { alert: string; expr: string }) => [r.alert, r.expr])).toEqual([
      ['KedaInferenceScalerDown', 'absent(up{job="keda-inference-scaler", namespace="keda"} == 1)'],
    ]);
    const rulesDir = mkdtempSync(join(tmpdir(), 'kis-rules-'));
    try {
      writeFileSync(join(rulesDir, 'rules.yaml'), JSON.stringify({ groups: [up] }));
      const test = (values: string, at: string, fires: boolean) => ({
        interval: '1m',
        input_series: [{ series: 'up{job="keda-inference-scaler",namespace="keda",pod="kis-0"}', values }],
        alert_rule_test: [
          {
            eval_time: at,
            alertname: 'KedaInferenceScalerDown',
            exp_alerts: fires ? [{ exp_labels: { severity: 'critical' }, exp_annotations: up.rules[0].annotations }] : [],
          },
        ],
      });
      // Down (up 0), up, and gone (no series: a pod deleted; stale 5 minutes after its last scrape, then 5 more).
      writeFileSync(
        join(rulesDir, 'test.yaml'),
        JSON.stringify({
          rule_files: ['rules.yaml'],
          tests: [test('0x10', '10m', true), test('1x10', '10m', false), test('1 1 _x20', '15m', true)],
        }),
      );
      const r = spawnSync('promtool', ['test', 'rules', 'test.yaml'], { cwd: rulesDir, encoding: 'utf8' });
      expect(r.stdout + r.stderr).toContain('SUCCESS');
      expect(r.status).toBe(0);
    } finally {
      rmSync(rulesDir, { recursive: true, force: true });
    }
    // The dashboard, for Grafana's sidecar: the file as it is, under the label the sidecar looks for.
    const dashboard = ms.find((m) => m.kind === 'ConfigMap' && m.metadata?.name?.endsWith('-dashboard'));
    expect(dashboard?.metadata).toMatchObject({ namespace: 'monitoring', labels: { grafana_dashboard: '1' } });
    const json = (dashboard as unknown as { data: Record<string, string> }).data['keda-inference-scaler.json']!;
    expect(JSON.parse(json)).toEqual(JSON.parse(readFileSync(join(chart, 'files/grafana-dashboard.json'), 'utf8')));
    expect(find(ms, 'PodDisruptionBudget').spec.minAvailable).toBe(2);
  });

  it('an external store: the URL and password from a Secret (or the URL from values), the CA of a rediss:// store mounted', () => {
    const pod = find(rendered('-f', fullValues), 'Deployment').spec.template.spec;
    const env = envOf(pod.containers[0]);
    expect(env.STATE_STORE_URL).toEqual({ secretKeyRef: { name: 'scaler-state-store', key: 'url' } });
    expect(env.STATE_STORE_PASSWORD).toEqual({ secretKeyRef: { name: 'scaler-state-store', key: 'password', optional: true } });
    expect(env.STATE_STORE_TLS_CA_FILE).toBe('/etc/keda-inference-scaler/state-store-ca/ca.crt');
    const mount = pod.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'state-store-ca');
    expect(mount).toEqual({ name: 'state-store-ca', mountPath: '/etc/keda-inference-scaler/state-store-ca', readOnly: true });
    expect(pod.volumes.find((v: { name: string }) => v.name === 'state-store-ca').secret.secretName).toBe('state-store-ca');

    const plainEnv = scalerEnv('replicaCount=2', 'stateStore.url=redis://valkey.cache:6379/1');
    expect(plainEnv.STATE_STORE_URL).toBe('redis://valkey.cache:6379/1');
    expect(plainEnv.STATE_STORE_PASSWORD).toBeUndefined();
    expect(scalerConfig(plainEnv).STATE_STORE_URL).toBe('redis://valkey.cache:6379/1');
    expect(plainEnv.STATE_STORE_CLUSTER).toBeUndefined();
    // A trailing slash, as the scaler takes it (database 0; found by review: the chart refused it).
    expect(scalerConfig(scalerEnv('stateStore.url=redis://valkey.cache:6379/')).STATE_STORE_URL).toBe(
      'redis://valkey.cache:6379/',
    );

    // A cluster in cluster mode (ElastiCache Serverless, MemoryDB): the flag, and a config the scaler takes.
    const clusterEnv = scalerEnv('replicaCount=2', 'stateStore.url=rediss://clustercfg.cache:6379', 'stateStore.cluster=true');
    expect(clusterEnv.STATE_STORE_CLUSTER).toBe('true');
    expect(scalerConfig(clusterEnv).STATE_STORE_CLUSTER).toBe(true);

    // Sentinel-managed (the Bitnami chart's Sentinels): the master's name, and the Sentinels' password from the Secret.
    const sentinelEnv = scalerEnv(
      'replicaCount=2',
      'stateStore.url=redis://redis.cache:26379',
      'stateStore.existingSecret=scaler-state-store',
      'stateStore.sentinel.masterName=mymaster',
    );
    expect(sentinelEnv.STATE_STORE_SENTINEL_MASTER).toBe('mymaster');
    expect(sentinelEnv.STATE_STORE_SENTINEL_PASSWORD).toEqual({
      secretKeyRef: { name: 'scaler-state-store', key: 'sentinel-password', optional: true },
    });
    const fromChart = scalerConfig(sentinelEnv, { STATE_STORE_PASSWORD: 'p', STATE_STORE_SENTINEL_PASSWORD: 's' });
    expect(fromChart.STATE_STORE_SENTINEL_MASTER).toBe('mymaster');
  });

  it('the bundled Valkey: the scaler points at its Service, only the scaler reaches it, bounded memory, its own labels', () => {
    const ms = rendered('-f', valkeyValues);
    const [scaler, valkey] = ['keda-inference-scaler', 'keda-inference-scaler-valkey'].map((n) => {
      const d = ms.find((m) => m.kind === 'Deployment' && m.metadata.name === n);
      if (d === undefined) throw new Error(`no Deployment ${n}`);
      return d as Manifest & { spec: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
    });
    expect(scaler!.spec.replicas).toBe(2);
    const env = envOf(scaler!.spec.template.spec.containers[0]);
    expect(env.STATE_STORE_URL).toBe('redis://keda-inference-scaler-valkey.keda.svc.cluster.local:6379');
    expect(env.STATE_STORE_PASSWORD).toEqual({ secretKeyRef: { name: 'scaler-valkey', key: 'password' } });
    const config = scalerConfig(env, { STATE_STORE_PASSWORD: 'from-the-secret' });
    expect(config.STATE_STORE_URL).toBe(env.STATE_STORE_URL);

    expect(valkey!.spec.replicas).toBe(1);
    expect(valkey!.spec.strategy).toEqual({ type: 'Recreate' });
    // Recreated on any change of its pod template: no label there that a chart upgrade changes
    // (an upgrade would empty the shared state just as the scaler's pods roll).
    const podLabels = valkey!.spec.template.metadata.labels as Record<string, string>;
    expect(Object.keys(podLabels).filter((k) => k === 'helm.sh/chart' || k === 'app.kubernetes.io/version')).toEqual([]);
    expect(podLabels).toMatchObject(valkey!.spec.selector.matchLabels as Record<string, string>);
    const server = valkey!.spec.template.spec.containers[0];
    expect(server.image).toBe('valkey/valkey:7.2');
    expect(server.args.join(' ')).toContain('--maxmemory 128mb --maxmemory-policy volatile-lru --requirepass $(VALKEY_PASSWORD)');
    expect(server.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
    });

    // The scaler's Service, PDB and spread select the scaler's pods only, never Valkey's.
    const service = ms.find((m) => m.kind === 'Service' && m.metadata.name === 'keda-inference-scaler') as Manifest & {
      spec: { selector: Record<string, string> };
    };
    const valkeyPodLabels = valkey!.spec.template.metadata.labels as Record<string, string>;
    expect(Object.entries(service.spec.selector).every(([k, v]) => valkeyPodLabels[k] === v)).toBe(false);
    const valkeyService = ms.find(
      (m) => m.kind === 'Service' && m.metadata.name === 'keda-inference-scaler-valkey',
    ) as Manifest & { spec: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(valkeyService.spec.ports).toEqual([{ name: 'redis', port: 6379, targetPort: 'redis', protocol: 'TCP' }]);

    const policies = ms.filter((m) => m.kind === 'NetworkPolicy') as (Manifest & { spec: Record<string, any> })[]; // eslint-disable-line @typescript-eslint/no-explicit-any
    const valkeyPolicy = policies.find((p) => p.metadata.name === 'keda-inference-scaler-valkey')!;
    expect(valkeyPolicy.spec.ingress).toEqual([
      {
        from: [{ podSelector: { matchLabels: scaler!.spec.selector.matchLabels } }],
        ports: [{ port: 'redis', protocol: 'TCP' }],
      },
    ]);
    const scalerPolicy = policies.find((p) => p.metadata.name === 'keda-inference-scaler')!;
    expect(scalerPolicy.spec.egress.at(-1)).toEqual({
      to: [{ podSelector: { matchLabels: valkeyService.spec.selector } }],
      ports: [{ port: 6379, protocol: 'TCP' }],
    });
  });

  const profile = ['--set', 'connections.rabbitmq.main.hostFromEnv=RABBITMQ_MAIN_URL'];
  it.each([
    ['plaintext', profile, undefined],
    // Found by review: the notes named a profile `main` whatever the connections held.
    ['no profiles', [], undefined],
    ['TLS', [...profile, '--set', 'tls.enabled=true', '--set', 'tls.secretName=keda-inference-scaler-tls'], 'caCert'],
    [
      'mutual TLS',
      [...profile, '--set', 'tls.enabled=true', '--set', 'tls.secretName=x', '--set', 'tls.clientCA.enabled=true'],
      'tlsClientKey',
    ],
  ])('the install notes (%s) print a trigger that parses as KEDA reads it', (_l, args, auth) => {
    // helm template leaves NOTES.txt out: a copy of the chart renders it into a ConfigMap.
    const dir = mkdtempSync(join(tmpdir(), 'kis-notes-'));
    try {
      const copy = join(dir, 'chart');
      cpSync(chart, copy, { recursive: true });
      cpSync(join(chart, 'templates/NOTES.txt'), join(copy, 'notes.txt'));
      writeFileSync(
        join(copy, 'templates/notes-check.yaml'),
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n',
      );
      const r = run(tools.HELM, [
        'template',
        'keda-inference-scaler',
        copy,
        '--namespace',
        'keda',
        '--kube-version',
        KUBE_VERSION,
        ...(args as string[]),
      ]);
      expect(r.status, r.stderr).toBe(0);
      const notes = (parseManifests(r.stdout).find((m) => m.metadata?.name === 'notes') as unknown as { data: { notes: string } })
        .data.notes;
      const snippet = /^ {2}triggers:\n(?: {4}.*\n)+/m.exec(notes)?.[0];
      expect(snippet, notes).toBeDefined();
      const [trigger] = (parseYaml(snippet!) as { triggers: Record<string, any>[] }).triggers; // eslint-disable-line @typescript-eslint/no-explicit-any
      const named = args.length === 0 ? 'rabbitmq.hostFromEnv' : 'rabbitmq.connection';
      expect(Object.keys(trigger!.metadata as object)).toEqual(
        expect.arrayContaining(['scalerAddress', named, 'rabbitmq.queueName', 'drainSeconds']),
      );
      if (named === 'rabbitmq.connection') expect(trigger!.metadata[named]).toBe('main');
      expect(trigger!.metadata.scalerAddress).toMatch(/^keda-inference-scaler\.keda\.svc\.cluster\.local:9090$/);
      if (auth === undefined) {
        expect(trigger!.authenticationRef).toBeUndefined();
        expect(trigger!.metadata.enableTLS).toBeUndefined();
        expect(notes).not.toContain('dnsNames');
      } else {
        expect(trigger!.metadata.enableTLS).toBe('true');
        // Found by review: the example certificate names the default release and namespace only.
        expect(notes.replace(/\s+/g, ' ')).toContain(
          `dnsNames must hold ${String(trigger!.metadata.scalerAddress).split(':')[0]}`,
        );
        // The TriggerAuthentication of the examples, which gives what the comment says.
        const example = parseYaml(readFileSync(join(root, 'examples/triggerauthentication-mtls.yaml'), 'utf8')) as {
          kind: string;
          metadata: { name: string; namespace?: string };
        };
        // A ClusterTriggerAuthentication: its Secret in KEDA's namespace serves every namespace.
        expect(example.kind).toBe('ClusterTriggerAuthentication');
        expect(example.metadata.namespace).toBeUndefined();
        expect(trigger!.authenticationRef).toEqual({ name: example.metadata.name, kind: example.kind });
        expect(/authenticationRef:\n.*name: .*# (.*)/.exec(snippet!)?.[1]).toContain(auth);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the rendered profile file loads in the scaler with the env the Deployment provides', () => {
    const ms = rendered('-f', fullValues);
    const configYaml = (find(ms, 'ConfigMap').data as Record<string, string>)['config.yaml']!;
    const envNames = find(ms, 'Deployment').spec.template.spec.containers[0].env.map((e: { name: string }) => e.name) as string[];
    // Each variable a value of its kind: the profiles' values are checked as the scaler starts.
    const urls: Record<string, string> = {
      RABBITMQ_MAIN_URL: 'amqp://scaler:pw@rabbitmq.messaging:5672/inference',
      RABBITMQ_MANAGEMENT_URL: 'http://scaler:pw@rabbitmq.messaging:15672/inference',
    };
    // PEM where PEM belongs (kafka.ca, cert and key are checked for it).
    const pem = (n: string) =>
      /_CA$|_CERT$/.test(n) ? PEM_CERTIFICATE_STUB : /_KEY$/.test(n) ? PEM_PRIVATE_KEY_STUB : undefined;
    const env = Object.fromEntries(envNames.map((n) => [n, urls[n] ?? pem(n) ?? `value-of-${n}`]));
    const profiles = parseProfiles(readConfigYaml(configYaml), env);
    expect(Object.keys(profiles).sort()).toEqual(['gpu', 'kafka', 'rabbitmq', 'sqs']);
    expect(profiles.kafka?.events?.password).toBe('value-of-KAFKA_PASSWORD');
    // And a profile naming a variable the Deployment does not set is caught by the same check.
    expect(() => parseProfiles({ connections: { rabbitmq: { x: { hostFromEnv: 'NOT_PROVIDED' } } } }, env)).toThrow(
      /NOT_PROVIDED/,
    );
  });

  it.each([
    ['a wrong type', ['--set', 'replicaCount=two'], /replicaCount/],
    ['an unknown top-level key', ['--set', 'replicas=3'], /replicas/],
    ['an unknown log level', ['--set', 'config.logLevel=loud'], /logLevel/],
    ['an unknown profile key', ['--set', 'connections.rabbitmq.main.queue=q'], /queue/],
    ['TLS without a Secret', ['--set', 'tls.enabled=true'], /secretName/],
    ['mutual TLS without TLS', ['--set', 'tls.clientCA.enabled=true'], /tls/],
    ['a grace period below the shutdown timeout', ['--set', 'terminationGracePeriodSeconds=5'], /terminationGracePeriodSeconds/],
    ['a bad image digest', ['--set', 'image.digest=latest'], /digest/],
    [
      'two replicas without a shared state store',
      ['--set', 'replicaCount=2'],
      /replicaCount above 1 needs a shared state store: stateStore.url, stateStore.existingSecret or valkey.enabled/,
    ],
    [
      'a password in stateStore.url (it belongs in a Secret)',
      ['--set', 'stateStore.url=redis://:hunter2@cache:6379'],
      /stateStore\/url/,
    ],
    ['a stateStore.url that is not redis:// or rediss://', ['--set', 'stateStore.url=http://cache:6379'], /stateStore\/url/],
    // Found by review: any five digits passed, and the scaler refused the URL at start-up.
    ['a stateStore.url port past 65535', ['--set', 'stateStore.url=redis://cache:65536'], /stateStore\/url/],
    // Found by review: the alerts' windows (2m, 5m) had no samples, and never fired.
    [
      'a scrape interval above 1m with the alerts on',
      [
        '--set',
        'metrics.prometheusRule.enabled=true',
        '--set',
        'metrics.serviceMonitor.enabled=true',
        '--set',
        'metrics.serviceMonitor.interval=2m',
      ],
      /the rules read windows of 2m and 5m/,
    ],
    // Found by review: the scaler refuses each of these at start-up (exit 2, a crash loop).
    ['a stateStore.url with a query', ['--set-string', 'stateStore.url=redis://cache?db=1'], /stateStore\/url/],
    ['a stateStore.url with a fragment', ['--set-string', 'stateStore.url=redis://cache#a'], /stateStore\/url/],
    ['a stateStore.url user with a stray %', ['--set-string', 'stateStore.url=redis://%zz@cache'], /stateStore\/url/],
    ['a stateStore.url on port 0', ['--set-string', 'stateStore.url=redis://cache:0'], /stateStore\/url/],
    [
      'the bundled Valkey and an external store at once',
      ['--set', 'valkey.enabled=true', '--set', 'stateStore.url=redis://cache:6379'],
      /valkey.enabled is the state store/,
    ],
    [
      'a store CA without TLS',
      ['--set', 'stateStore.url=redis://cache:6379', '--set', 'stateStore.tls.caSecret=ca'],
      /rediss:\/\//,
    ],
    ['a retention shorter than the idle sweep (30 minutes)', ['--set', 'config.stateRetentionMs=60000'], /stateRetentionMs/],
    // The scaler reads these as 32-bit timer delays: a larger one would stop it at start-up.
    ['a cache TTL past a timer delay (2^31 - 1 ms)', ['--set', 'config.cacheTtlMs=3000000000'], /cacheTtlMs/],
    ['an open-streams limit past 2^31 - 1', ['--set', 'config.grpcMaxOpenStreams=3000000000'], /grpcMaxOpenStreams/],
    ['a misspelled alerts option', ['--set', 'metrics.prometheusRule.enable=true'], /prometheusRule/],
    ['a misspelled dashboard option', ['--set', 'metrics.grafanaDashboard.label=x'], /grafanaDashboard/],
    ['a store CA with no store', ['--set', 'stateStore.tls.caSecret=ca'], /stateStore.tls.caSecret needs the store/],
    ['cluster mode with no store', ['--set', 'stateStore.cluster=true'], /stateStore.cluster needs the store/],
    [
      'cluster mode on a database other than 0',
      ['--set', 'stateStore.url=redis://cache:6379/3', '--set', 'stateStore.cluster=true'],
      /a cluster has database 0 only/,
    ],
    [
      'cluster mode on the bundled Valkey (one server)',
      ['-f', valkeyValues, '--set', 'stateStore.cluster=true'],
      /valkey.enabled is the state store \(one server\)/,
    ],
    ['a cluster flag that is no boolean', ['--set-string', 'stateStore.cluster=yes'], /stateStore\/cluster/],
    [
      'a Sentinel master with no store',
      ['--set', 'stateStore.sentinel.masterName=mymaster'],
      /stateStore.sentinel.masterName needs the store/,
    ],
    [
      'a cluster that is Sentinel-managed too',
      [
        '--set',
        'stateStore.url=redis://cache:6379',
        '--set',
        'stateStore.cluster=true',
        '--set',
        'stateStore.sentinel.masterName=m',
      ],
      /a cluster or Sentinel-managed, not both/,
    ],
    ['a Sentinel master name with a space', ['--set', 'stateStore.sentinel.masterName=my master'], /masterName/],
    ['two ports alike', ['--set', 'service.metricsPort=9090'], /must differ: \[9090 9090\]/],
    [
      'the plaintext health port on the gRPC port',
      ['--set', 'tls.enabled=true', '--set', 'tls.secretName=s', '--set', 'tls.healthPort=9090'],
      /must differ: \[9090 8080 9090\]/,
    ],
    [
      'a heap past the memory limit',
      ['--set', 'nodeHeapMb=512'],
      /nodeHeapMb 512 leaves no room under resources.limits.memory 256Mi/,
    ],
    [
      'a heap past a memory limit in Gi',
      ['--set', 'nodeHeapMb=1000', '--set', 'resources.limits.memory=1Gi'],
      /nodeHeapMb 1000 leaves no room under resources.limits.memory 1Gi \(1024 MiB\)/,
    ],
    [
      'a heap past a memory limit in decimal megabytes',
      ['--set', 'resources.limits.memory=200M'],
      /nodeHeapMb 160 leaves no room under resources.limits.memory 200M \(191 MiB\)/,
    ],
    [
      'a heap past a memory limit in bytes',
      ['--set', 'resources.limits.memory=234881024'],
      /nodeHeapMb 160 leaves no room under resources.limits.memory 234881024 \(224 MiB\)/,
    ],
    [
      'a loop target past 1, as --set gives it (a string)',
      ['--set', 'config.loopTargetUtilization=1.5'],
      /loopTargetUtilization/,
    ],
    [
      'a variable the chart sets, again in extraEnv',
      ['--set', 'extraEnv[0].name=GRPC_PORT', '--set', 'extraEnv[0].value=9999'],
      /extraEnv or secretEnv sets GRPC_PORT, which the chart owns/,
    ],
    // Found by review (2026-12-08): with tls.enabled false the scaler served TLS on the port the
    // kubelet probes in plaintext, and the pod never became ready.
    [
      'a variable the chart owns but does not set (TLS off), in extraEnv',
      ['--set', 'extraEnv[0].name=TLS_CERT_FILE', '--set', 'extraEnv[0].value=/tls/tls.crt'],
      /extraEnv or secretEnv sets TLS_CERT_FILE, which the chart owns/,
    ],
    ['a TLS key name a Secret cannot hold', ['--set', 'tls.enabled=true', '--set', 'tls.certKey=a/b'], /certKey/],
    [
      'a variable the chart sets, again in secretEnv',
      ['--set', 'secretEnv[0].name=NODE_OPTIONS', '--set', 'secretEnv[0].secretName=s', '--set', 'secretEnv[0].key=k'],
      /extraEnv or secretEnv sets NODE_OPTIONS/,
    ],
    [
      'a Valkey with no password and no NetworkPolicy',
      ['--set', 'valkey.enabled=true', '--set', 'networkPolicy.enabled=false'],
      /runs Valkey with no password/,
    ],
    ['a liveness probe that needs more than one success', ['--set', 'probes.liveness.successThreshold=3'], /successThreshold/],
    [
      'a readiness probe with a grace period (Kubernetes refuses it)',
      ['--set', 'probes.readiness.terminationGracePeriodSeconds=5'],
      /terminationGracePeriodSeconds/,
    ],
    [
      'a PDB that allows no eviction (minAvailable 50 % of 1 replica)',
      ['--set', 'podDisruptionBudget.minAvailable=50%'],
      /minAvailable 50% with replicaCount 1 would block every node drain/,
    ],
    [
      'a PDB that allows no eviction (maxUnavailable 0)',
      ['--set', 'podDisruptionBudget.maxUnavailable=0'],
      /maxUnavailable 0 would block every node drain/,
    ],
    // Found by review: '00%' passed the checks of '0' and '0%', and any string reached the budget.
    [
      'a PDB that allows no eviction, its zero written otherwise (maxUnavailable 0%)',
      ['--set', 'podDisruptionBudget.maxUnavailable=0%'],
      /maxUnavailable 0 would block every node drain/,
    ],
    [
      'a PDB budget that is not a count or a percentage',
      ['--set', 'podDisruptionBudget.maxUnavailable=abc'],
      /podDisruptionBudget\/maxUnavailable/,
    ],
    ['a PDB budget past 100 %', ['--set', 'podDisruptionBudget.maxUnavailable=101%'], /podDisruptionBudget\/maxUnavailable/],
    [
      'a PDB budget with a leading zero (00%)',
      ['--set-string', 'podDisruptionBudget.maxUnavailable=00%'],
      /podDisruptionBudget\/maxUnavailable/,
    ],
    [
      'a PDB that allows no eviction (minAvailable = replicas)',
      ['--set', 'podDisruptionBudget.minAvailable=1'],
      /minAvailable 1 with replicaCount 1 would block every node drain/,
    ],
    [
      'a PDB that allows no eviction, given as a string (rendered as the same number)',
      ['--set-string', 'podDisruptionBudget.minAvailable=1'],
      /minAvailable 1 with replicaCount 1 would block every node drain/,
    ],
    // Found by review (2026-12-06): each of these rendered, and failed later or elsewhere.
    [
      'a PDB with its budget cleared (null)',
      ['--set', 'podDisruptionBudget.maxUnavailable=null'],
      /needs maxUnavailable or minAvailable/,
    ],
    [
      'a heap past a memory limit in bytes from a values file (a float64 there)',
      ['--set-json', 'resources.limits.memory=209715200'],
      /nodeHeapMb 160 leaves no room under resources.limits.memory 209715200 \(200 MiB\)/,
    ],
    [
      'a common label the chart sets itself',
      ['--set', 'commonLabels.app\\.kubernetes\\.io/name=foo'],
      /commonLabels sets app.kubernetes.io\/name, which the chart sets itself/,
    ],
    [
      'a pod label the chart selects by',
      ['--set', 'podLabels.app\\.kubernetes\\.io/instance=foo'],
      /podLabels sets app.kubernetes.io\/instance, which the chart sets itself/,
    ],
    ['a port cleared (null)', ['--set', 'service.grpcPort=null'], /grpcPort/],
    ['a setting cleared (null), which rendered 0 or <nil>', ['--set', 'config.cacheTtlMs=null'], /cacheTtlMs/],
    // Found by review (2026-12-07): Valkey killed at its limit before it evicts, the shared state with it.
    [
      'a Valkey maxmemory past its memory limit',
      ['--set', 'valkey.enabled=true', '--set', 'valkey.maxmemory=1gb'],
      /valkey.maxmemory 1gb leaves no room under valkey.resources.limits.memory 256Mi/,
    ],
    // Found by review (2026-12-08): a limit written as a number (a float64 in the values) skipped the check.
    [
      'a Valkey maxmemory past a memory limit written in bytes',
      [
        '--set',
        'valkey.enabled=true',
        '--set-json',
        'valkey.resources.limits.memory=134217728',
        '--set',
        'valkey.maxmemory=192mb',
      ],
      /valkey.maxmemory 192mb leaves no room under valkey.resources.limits.memory 134217728/,
    ],
    ['connection profiles cleared (null): the scaler read the string "null"', ['--set', 'connections=null'], /connections/],
    // Found by review (2026-12-07, later): each rendered, and failed at the API server or later.
    [
      'a memory limit raised without the heap cap (V8 stops at 160 MB of 1 GiB)',
      ['--set', 'resources.limits.memory=1Gi'],
      /resources.limits.memory 1Gi is more than twice what nodeHeapMb 160 lets the scaler use \(about 256 MiB\)/,
    ],
    [
      'a memory request above the limit',
      ['--set', 'resources.limits.memory=128Mi', '--set', 'nodeHeapMb=null'],
      /resources.requests.memory 224Mi is above resources.limits.memory 128Mi: Kubernetes refuses such a pod/,
    ],
    ['a memory limit in millibytes', ['--set', 'resources.limits.memory=300m'], /resources.limits.memory 300m is in millibytes/],
    [
      'a Valkey memory request above its limit',
      ['--set', 'valkey.enabled=true', '--set', 'valkey.resources.requests.memory=512Mi'],
      /valkey.resources.requests.memory 512Mi is above valkey.resources.limits.memory 256Mi/,
    ],
    [
      'a Valkey maxmemory of 0 (no limit at all)',
      ['--set', 'valkey.enabled=true', '--set', 'valkey.maxmemory=0mb'],
      /valkey\/maxmemory/,
    ],
    [
      'a scrape timeout past its interval',
      [
        '--set',
        'metrics.serviceMonitor.enabled=true',
        '--set',
        'metrics.serviceMonitor.interval=10s',
        '--set',
        'metrics.serviceMonitor.scrapeTimeout=1m',
      ],
      /scrapeTimeout 1m is longer than its interval 10s/,
    ],
    [
      'a scrape interval the Operator refuses (1.5s)',
      ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.serviceMonitor.interval=1.5s'],
      /serviceMonitor\/interval/,
    ],
    [
      'the pod security context cleared (null): the TLS files unreadable',
      ['--set', 'podSecurityContext=null'],
      /podSecurityContext/,
    ],
    // Found by review: the store's URL read "svc.%!s(<nil>)" and the scaler crash-looped.
    ['the cluster domain cleared (null)', ['--set', 'clusterDomain=null', '--set', 'valkey.enabled=true'], /clusterDomain/],
    ['the pull policy cleared (null)', ['--set', 'image.pullPolicy=null'], /pullPolicy/],
    // Found by review: compared in whole seconds, 29999 ms passed under 30 s, the SIGKILL mid-shutdown.
    [
      'a grace period without 2 s past the shutdown timeout',
      ['--set', 'config.shutdownTimeoutMs=29999'],
      /terminationGracePeriodSeconds 30 must be at least config.shutdownTimeoutMs 29999 plus 2 s .*: 32 or more/,
    ],
  ])('rejects %s at install time', (_l, args, message) => {
    const r = template(...(args as string[]));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message as RegExp);
  });

  it("values.schema.json allows exactly the profile keys that the scaler's config accepts, a secret that is no URL only as <key>FromEnv", () => {
    const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8'));
    for (const [kind, table] of Object.entries(sourceFields)) {
      const keys = Object.keys(table).filter((k) => k !== 'connection');
      // The profiles are rendered into a ConfigMap. A secret URL (rabbitmq.host) may be there without a password (below).
      const secret = keys.filter((k) => (table as Record<string, { secret?: boolean }>)[k]!.secret === true && k !== 'host');
      const plain = keys.filter((k) => !secret.includes(k));
      const pattern = schema.properties.connections.properties[kind].additionalProperties.propertyNames.pattern;
      expect(pattern, kind).toBe(
        secret.length === 0
          ? `^(${plain.join('|')})(FromEnv)?$`
          : `^((${plain.join('|')})(FromEnv)?|(${secret.join('|')})FromEnv)$`,
      );
    }
  });

  it.each([
    ['a Kafka SASL password', ['--set', 'connections.kafka.events.password=hunter2'], /invalid propertyName 'password'/],
    ['a Prometheus bearer token', ['--set', 'connections.gpu.dcgm.bearerToken=abc'], /invalid propertyName 'bearerToken'/],
    [
      'a broker URL with a password',
      ['--set', 'connections.rabbitmq.main.host=amqp://admin:s3cret@rabbit:5672/'],
      /connections.rabbitmq.main.host is a URL with a password[\s\S]*hostFromEnv/,
    ],
    [
      'a Kafka bootstrap URL with a password',
      ['--set', 'connections.kafka.events.bootstrapServers=sasl://u:p@kafka:9092'],
      /connections.kafka.events.bootstrapServers is a URL with a password[\s\S]*bootstrapServersFromEnv/,
    ],
  ])('keeps %s out of the ConfigMap: refused at install, <key>FromEnv and a Secret instead', (_l, args, message) => {
    const r = template(...(args as string[]));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message as RegExp);
    // The refusal names the key, never the secret it refused.
    expect(r.stderr).not.toMatch(/s3cret|hunter2|u:p@|=abc/);
  });

  // Found by review: unquoted, YAML read these as a boolean or a number, and Kubernetes refused the
  // manifests ("cannot unmarshal bool into ... secretName").
  it('renders names that YAML reads as booleans or numbers as strings (release 2024, namespace on, Secrets y and no, overrides 2025 and yes)', () => {
    const args = [
      ...['--set', 'tls.enabled=true', '--set', 'tls.secretName=y', '--set', 'tls.clientCA.enabled=true'],
      ...[
        '--set',
        'tls.clientCA.secretName=no',
        '--set',
        'networkPolicy.enabled=true',
        '--set',
        'networkPolicy.keda.namespace=on',
      ],
      ...['--set', 'replicaCount=2', '--set-string', 'stateStore.existingSecret=2024', '--set', 'priorityClassName=yes'],
      ...['--set-string', 'fullnameOverride=2025', '--set-string', 'nameOverride=yes'],
    ];
    const out = run(tools.HELM, ['template', '2024', chart, '-n', 'on', '--kube-version', KUBE_VERSION, ...args]);
    expect(out.status, out.stderr).toBe(0);
    const checked = run(tools.VALIDATE, ['k8s', '-'], out.stdout);
    expect(checked.stderr).toBe('');
    expect(checked.status).toBe(0);
    const ms = parseManifests(out.stdout);
    const pod = find(ms, 'Deployment').spec.template.spec;
    expect(pod.volumes.map((v: { secret?: { secretName: unknown } }) => v.secret?.secretName).filter(Boolean)).toEqual([
      'y',
      'no',
    ]);
    expect(find(ms, 'Deployment').metadata.namespace).toBe('on');
    expect(find(ms, 'Deployment').metadata).toMatchObject({
      name: '2025',
      labels: { 'app.kubernetes.io/instance': '2024', 'app.kubernetes.io/name': 'yes' },
    });
  });

  it('takes what --set gives as strings where a number is meant, and an IPv6 store', () => {
    const ms = rendered(
      '--set',
      'config.loopTargetUtilization=0.8',
      '--set',
      'replicaCount=2',
      '--set',
      'stateStore.url=redis://[fd00::1]:6379/0',
    );
    const env = find(ms, 'Deployment').spec.template.spec.containers[0].env as { name: string; value?: string }[];
    expect(env.find((e) => e.name === 'LOOP_TARGET_UTILIZATION')?.value).toBe('0.8');
    expect(env.find((e) => e.name === 'STATE_STORE_URL')?.value).toBe('redis://[fd00::1]:6379/0');
    // Each variable once: the chart's own, then what extraEnv and secretEnv add.
    const names = env.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('found by review: a scrape interval under 10s with no timeout of its own, the bundled Valkey pulled with imagePullSecrets, env lists cleared with null', () => {
    const monitor = (...args: string[]) =>
      find(rendered('--set', 'metrics.serviceMonitor.enabled=true', ...args), 'ServiceMonitor').spec.endpoints[0];
    // A fixed 10s timeout made Prometheus refuse a 5s interval ("scrape timeout greater than scrape interval").
    expect(monitor('--set', 'metrics.serviceMonitor.interval=5s')).not.toHaveProperty('scrapeTimeout');
    expect(monitor('--set', 'metrics.serviceMonitor.scrapeTimeout=4s')).toMatchObject({ scrapeTimeout: '4s' });
    const withValkey = rendered('-f', valkeyValues, '--set', 'imagePullSecrets[0].name=mirror');
    const valkey = withValkey.find((m) => m.kind === 'Deployment' && m.metadata.name.endsWith('-valkey')) as
      (Manifest & { spec: { template: { spec: { imagePullSecrets?: unknown } } } }) | undefined;
    expect(valkey?.spec.template.spec.imagePullSecrets).toEqual([{ name: 'mirror' }]);
    // A nil list crashed concat ("invalid memory address or nil pointer dereference").
    expect(find(rendered('--set', 'extraEnv=null', '--set', 'secretEnv=null'), 'Deployment').kind).toBe('Deployment');
  });

  it("found by review (2026-12-07, later): durations and memory as their owners write them, a topology selector of the user's left whole", () => {
    const monitor = find(
      rendered(
        '--set',
        'metrics.serviceMonitor.enabled=true',
        '--set',
        'metrics.serviceMonitor.interval=1m30s',
        '--set',
        'metrics.serviceMonitor.scrapeTimeout=1m',
      ),
      'ServiceMonitor',
    ).spec.endpoints[0];
    expect(monitor).toMatchObject({ interval: '1m30s', scrapeTimeout: '1m' });
    // No interval: Prometheus's global one, which the chart cannot compare; durations stay strings.
    const global = find(
      rendered(
        '--set',
        'metrics.serviceMonitor.enabled=true',
        '--set',
        'metrics.serviceMonitor.interval=',
        '--set',
        'metrics.serviceMonitor.scrapeTimeout=10s',
      ),
      'ServiceMonitor',
    ).spec.endpoints[0];
    expect(global).not.toHaveProperty('interval');
    expect(global.scrapeTimeout).toBe('10s');
    const zero = find(
      rendered('--set', 'metrics.serviceMonitor.enabled=true', '--set-string', 'metrics.serviceMonitor.interval=0'),
      'ServiceMonitor',
    ).spec.endpoints[0];
    expect(zero.interval).toBe('0');
    const valkey = rendered(
      '-f',
      valkeyValues,
      '--set',
      'valkey.maxmemory=100MB',
      '--set',
      'valkey.resources.limits.memory=256Mi',
    );
    expect(valkey.some((m) => m.kind === 'Deployment' && m.metadata.name.endsWith('-valkey'))).toBe(true);
    const own = { matchExpressions: [{ key: 'tier', operator: 'In', values: ['gpu-scaler'] }] };
    const spread = find(
      rendered(
        '--set-json',
        `topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"DoNotSchedule","labelSelector":${JSON.stringify(own)}}]`,
      ),
      'Deployment',
    ).spec.template.spec.topologySpreadConstraints;
    expect(spread).toEqual([{ maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: own }]);
    // Without a selector of its own, the entry gets the chart's.
    const filled = find(
      rendered(
        '--set-json',
        'topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"DoNotSchedule"}]',
      ),
      'Deployment',
    ).spec.template.spec.topologySpreadConstraints[0];
    expect(filled.labelSelector.matchLabels).toMatchObject({ 'app.kubernetes.io/name': 'keda-inference-scaler' });
  });

  it('takes a broker URL without a password, and secrets as <key>FromEnv', () => {
    const ms = rendered(
      '--set',
      'connections.rabbitmq.main.host=amqp://rabbit:5672/',
      '--set',
      'connections.kafka.events.passwordFromEnv=KAFKA_PASSWORD',
    );
    expect((find(ms, 'ConfigMap').data as Record<string, string>)['config.yaml']).toContain('passwordFromEnv: KAFKA_PASSWORD');
  });
});

// What users copy: the examples, the compose trial's ScaledObjects, and the manifests in the docs.
// Each field must exist (the API server prunes an unknown one without a word): built-in kinds by
// strict decoding into k8s.io/api, custom resources against their projects' CRDs.
describe('the examples against Kubernetes and the CRDs', () => {
  const exampleFiles = [
    ...readdirSync(join(root, 'examples'), { recursive: true, encoding: 'utf8' })
      .filter((f) => /\.ya?ml$/.test(f) && f !== 'scaler-config.yaml')
      .map((f) => join('examples', f)),
    'deploy/compose/scaledobjects.yaml',
  ];
  // YAML blocks of the docs that are whole manifests (a fragment has no apiVersion).
  const docBlocks = ['README.md', 'examples/README.md', ...readdirSync(join(root, 'docs')).map((f) => join('docs', f))]
    .filter((f) => f.endsWith('.md'))
    .flatMap((f) =>
      [...readFileSync(join(root, f), 'utf8').matchAll(/```ya?ml\n([\s\S]*?)```/g)].map((m, i) => ({
        file: `${f} block ${i + 1}`,
        text: m[1]!,
      })),
    )
    .filter(({ text }) => /^apiVersion:/m.test(text) && /^kind:/m.test(text));
  const sources = [...exampleFiles.map((file) => ({ file, text: readFileSync(join(root, file), 'utf8') })), ...docBlocks];

  it('finds the manifests to check (the lists are not empty)', () => {
    expect(exampleFiles.length).toBeGreaterThan(5);
    expect(docBlocks.length).toBeGreaterThan(0);
  });

  it.each(sources.map((s) => [s.file, s.text]))('%s: every field exists', (_file, text) => {
    // A docs block may hold other YAML beside a manifest (a config file): its manifests only.
    const manifests = parseManifests(text).filter((m) => m.apiVersion !== undefined && m.kind !== undefined);
    expect(manifests.length).toBeGreaterThan(0);
    const strict = run(tools.VALIDATE, ['k8s', '-'], manifests.map((m) => stringifyYaml(m)).join('---\n'));
    expect(strict.stderr).toBe('');
    expect(strict.status).toBe(0);
    const crds = loadCrdSchemas(tools.CRDS);
    for (const m of manifests.filter((x) => !builtIn(x))) {
      const schema = crds.get(`${m.apiVersion} ${m.kind}`);
      expect(schema, `a CRD for ${name(m)}`).toBeDefined();
      expect(unknownFields(m, schema!), name(m)).toEqual([]);
    }
  });

  it('finds a field the CRD does not define, at any depth (the check can fail)', () => {
    const crds = loadCrdSchemas(tools.CRDS);
    const [so] = parseManifests(readFileSync(join(root, 'examples/scaledobject-rabbitmq.yaml'), 'utf8')).filter(
      (m) => m.kind === 'ScaledObject',
    );
    const spec = so!.spec as { triggers: Record<string, unknown>[]; advanced?: Record<string, unknown> };
    const broken = {
      ...so!,
      spec: {
        ...spec,
        pollingInteval: 5,
        triggers: [{ ...spec.triggers[0], metadataa: {} }],
        advanced: { ...spec.advanced, bogus: 1 },
      },
    } as Manifest;
    expect(unknownFields(broken, crds.get('keda.sh/v1alpha1 ScaledObject')!).sort()).toEqual([
      '.spec.advanced.bogus',
      '.spec.pollingInteval',
      '.spec.triggers[0].metadataa',
    ]);
  });
});

describe('docker compose trial', () => {
  it('validates against the compose specification (compose-go loader)', () => {
    const r = run(tools.VALIDATE, ['compose', composeFile]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const services = r.stdout.match(/^ok service (\S+)$/gm)?.map((l) => l.slice('ok service '.length));
    expect(services).toEqual(
      expect.arrayContaining([
        'rabbitmq',
        'kafka',
        'sqs',
        'prometheus',
        'dcgm-exporter',
        'redis',
        'scaler',
        'worker',
        'producer',
        'keda-probe',
      ]),
    );
  });

  it('the compose check fails on a file that breaks the specification', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kis-compose-'));
    try {
      const broken = readFileSync(composeFile, 'utf8').replace('  scaler:\n', '  scaler:\n    restart_policy: always\n');
      writeFileSync(join(dir, 'docker-compose.yaml'), broken);
      const r = run(tools.VALIDATE, ['compose', join(dir, 'docker-compose.yaml')]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/restart_policy/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the versions the native test bed runs: those its scripts pin, and those its Debian packages report', async () => {
    const compose = parseYaml(readFileSync(composeFile, 'utf8')) as { services: Record<string, { image?: string }> };
    const image = (svc: string) => compose.services[svc]?.image;
    const pinned = (file: string, name: string) =>
      new RegExp(`^${name}="\\$\\{SERVICES_${name}:-([^}]+)\\}"$`, 'm').exec(
        readFileSync(join(root, 'scripts/services', file), 'utf8'),
      )?.[1];
    expect(image('kafka')).toBe(`apache/kafka:${pinned('kafka.sh', 'KAFKA_VERSION')}`);
    expect(image('kafka-seed')).toBe(image('kafka'));
    expect(image('sqs')).toBe(`motoserver/moto:${pinned('sqs.sh', 'MOTO_VERSION')}`);

    const management = new URL(requireService('RABBITMQ_MANAGEMENT_URL'));
    const credentials = `${decodeURIComponent(management.username)}:${decodeURIComponent(management.password)}`;
    const overview = (await (
      await fetch(new URL('/api/overview', management.origin), {
        headers: { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` },
      })
    ).json()) as { rabbitmq_version: string };
    expect(image('rabbitmq')).toBe(`rabbitmq:${overview.rabbitmq_version}-management`);
    const build = (await (await fetch(new URL('/api/v1/status/buildinfo', requireService('PROMETHEUS_URL')))).json()) as {
      data: { version: string };
    };
    expect(image('prometheus')).toBe(`prom/prometheus:v${build.data.version.replace(/\+.*$/, '')}`); // Debian's reads 2.42.0+ds
    using redis = rawClient(requireService('STATE_STORE_URL'));
    expect(image('redis')).toBe(`redis:${/redis_version:(\S+)/.exec(await redis.info('server'))?.[1]}`);
  });

  it('every file the compose services mount or build from exists', () => {
    const compose = parseYaml(readFileSync(composeFile, 'utf8')) as {
      services: Record<string, { volumes?: string[]; build?: string | { context: string; dockerfile?: string } }>;
    };
    const base = join(root, 'deploy/compose');
    for (const [svc, s] of Object.entries(compose.services)) {
      for (const v of s.volumes ?? []) expect(existsSync(join(base, v.split(':')[0]!)), `${svc}: ${v}`).toBe(true);
      if (s.build !== undefined) {
        const context = typeof s.build === 'string' ? s.build : s.build.context;
        const dockerfile = typeof s.build === 'string' ? 'Dockerfile' : (s.build.dockerfile ?? 'Dockerfile');
        expect(existsSync(join(base, context, dockerfile)), `${svc}: build ${context}`).toBe(true);
      }
    }
  });
});

describe('compose trial content against the real brokers (what `docker compose up` runs)', () => {
  it('keda-probe gets an answer for every compose ScaledObject from a scaler using the compose profiles', async () => {
    useLocalAwsCredentials();
    await using rabbit = await RabbitFixture.connect(requireService('RABBITMQ_URL'));
    await using sqs = new SqsFixture(requireService('SQS_ENDPOINT'));
    await using kafka = await KafkaFixture.connect(requireService('KAFKA_BROKERS'));
    const queue = await rabbit.queue(6, 'compose-trial');
    // The compose profile reads the management API, whose figures follow at its next emission.
    await managementCounts(requireService('RABBITMQ_MANAGEMENT_URL'), queue, 6);
    const queueURL = await sqs.queue('compose-trial');
    await sqs.send(queueURL, 25);
    const topic = await kafka.topic([10, 10, 10, 10], 'compose-trial');

    // The compose files, with the compose host names swapped for the test bed's addresses.
    const config = parseYaml(readFileSync(join(root, 'deploy/compose/scaler-config.yaml'), 'utf8'));
    config.connections.kafka.local.bootstrapServers = requireService('KAFKA_BROKERS');
    config.connections.sqs.local = { awsEndpoint: requireService('SQS_ENDPOINT'), awsRegion: 'us-east-1' };
    config.connections.gpu.local.serverAddress = requireService('PROMETHEUS_URL');
    const profiles = parseProfiles(config, { RABBITMQ_MAIN_URL: requireService('RABBITMQ_MANAGEMENT_URL') });
    const objects = parseManifests(readFileSync(join(root, 'deploy/compose/scaledobjects.yaml'), 'utf8'));
    for (const so of objects) {
      for (const t of (so.spec as { triggers: { metadata: Record<string, string> }[] }).triggers) {
        if (t.metadata['rabbitmq.queueName'] !== undefined) t.metadata['rabbitmq.queueName'] = queue;
        if (t.metadata['sqs.queueURL'] !== undefined) t.metadata['sqs.queueURL'] = queueURL;
        if (t.metadata['kafka.topic'] !== undefined) t.metadata['kafka.topic'] = topic;
        if (t.metadata['kafka.consumerGroup'] !== undefined)
          t.metadata['kafka.consumerGroup'] = KafkaFixture.uniqueName('compose-trial');
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'kis-probe-'));
    await using scaler = await startTestScaler({ profiles });
    try {
      const file = join(dir, 'scaledobjects.yaml');
      writeFileSync(file, objects.map((o) => JSON.stringify(o)).join('\n---\n'));
      // Asynchronously: the scaler answering it runs in this process.
      const probe = await runAsync(process.execPath, ['examples/keda-probe/probe.mjs', file], {
        ONCE: '1',
        SCALER_ADDRESS: scaler.address,
        PROTO: join(root, 'proto/externalscaler.proto'),
      });
      expect(probe.stdout).not.toMatch(/ error /);
      expect(probe.status).toBe(0);
      const lines = probe.stdout.trim().split('\n');
      expect(lines).toHaveLength(objects.length);
      for (const line of lines) expect(line).toMatch(/active=true\s+desired replicas=[1-9]/);
      // Before any rate is learned, backlog / messagesPerReplica: the worker's 6 / 2 (its concurrency)
      // -> 3, SQS 25 / 10 -> 3, Kafka lag 40 / 10 -> 4.
      expect(probe.stdout).toMatch(/demo\/worker\s+active=true\s+desired replicas=3 /);
      expect(probe.stdout).toMatch(/demo\/batch-jobs\s+active=true\s+desired replicas=3 /);
      expect(probe.stdout).toMatch(/demo\/event-scorer\s+active=true\s+desired replicas=4 /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

  it('passes hadolint', () => {
    const r = run(tools.HADOLINT, ['Dockerfile', 'examples/worker/Dockerfile']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('runs as a non-root user, exposes gRPC and metrics, has a health check, builds from allowed files only', () => {
    expect(dockerfile).toMatch(/^USER 1000:1000$/m);
    expect(dockerfile).toMatch(/^EXPOSE 9090 8080$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    // npm and corepack leave the runtime stage: the image runs node alone.
    const runtime = dockerfile.slice(dockerfile.indexOf(' AS runtime'));
    expect(runtime).toMatch(/^RUN rm -rf \/usr\/local\/lib\/node_modules\/npm /m);
    expect(runtime).not.toMatch(/\bnpm (ci|install|run)\b/);
    const allowed = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/$/, ''));
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(existsSync(join(root, source)), source).toBe(true);
      expect(allowed, `${source} is excluded by .dockerignore`).toContain(source.replace(/\/$/, ''));
    }
    for (const secretish of ['.env', 'test', '.git', 'node_modules', '.services']) expect(allowed).not.toContain(secretish);
  });

  describe('the image layout, built and started as the Dockerfile does', () => {
    let dir: string;
    let child: ChildProcess | undefined;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'kis-image-'));
      // build stage: tsc -p tsconfig.build.json -> dist/; runtime: dist/ + proto/ side by side.
      execFileSync(
        process.execPath,
        [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist')],
        {
          cwd: root,
        },
      );
      cpSync(join(root, 'proto'), join(dir, 'proto'), { recursive: true });
      cpSync(join(root, 'package.json'), join(dir, 'package.json'));
      cpSync(join(root, 'node.flags'), join(dir, 'node.flags'));
      symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    }, 120_000);
    afterAll(() => {
      child?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    it('starts from dist/main.js, reports ready on /readyz, and stops on SIGTERM', async () => {
      const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
      expect(entrypoint.slice(0, 2)).toEqual(['/bin/sh', '-c']);
      expect(entrypoint[2]).toMatch(/^exec node .*\$\(cat node\.flags\) dist\/main\.js/);
      // The image's command as it is, its node this test's.
      child = spawn(
        '/bin/sh',
        ['-c', entrypoint[2]!.replace(/^exec node /, `exec ${process.execPath} `), ...entrypoint.slice(3)],
        {
          cwd: dir,
          // An address of its own, not 127.0.0.1: the HEALTHCHECK must ask where the server listens
          // (found by review: it asked 127.0.0.1 whatever BIND_ADDRESS said, and failed).
          env: { PATH: process.env.PATH, NODE_ENV: 'production', GRPC_PORT: '0', METRICS_PORT: '0', BIND_ADDRESS: '127.0.0.2' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      const listening = await eventually(async () => {
        const line = output.split('\n').find((l) => l.includes('keda-inference-scaler listening'));
        return line === undefined ? undefined : (JSON.parse(line) as { grpcPort: number; metricsPort: number });
      }, 20_000);
      expect(listening.grpcPort).toBeGreaterThan(0);
      // The HEALTHCHECK's command as it is, its node this test's: healthy, and unhealthy where
      // nothing answers.
      const healthcheck = JSON.parse(/^HEALTHCHECK .*\\\n\s+CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
      expect(healthcheck.slice(0, 2)).toEqual(['node', '-e']);
      const check = (env: Record<string, string>) =>
        spawnSync(process.execPath, healthcheck.slice(1), { env: { PATH: process.env.PATH, ...env }, timeout: 10_000 }).status;
      const port = String(listening.metricsPort);
      expect(check({ METRICS_PORT: port, BIND_ADDRESS: '127.0.0.2' })).toBe(0);
      expect(check({ METRICS_PORT: port, BIND_ADDRESS: '127.0.0.3' })).toBe(1);
      expect(check({ METRICS_PORT: port })).toBe(1);
      const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output).toMatch(/keda-inference-scaler stopped/);
      child = undefined;
    });
  });
});
