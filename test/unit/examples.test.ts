// The examples (examples/, and the ScaledObjects of the compose trial) are what users copy: each
// must parse, match its kind's schema, and carry trigger metadata that the scaler itself accepts
// with the connection profiles and environment shipped beside it.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { RECOMMENDED_SCALED_OBJECT } from '../../bench/decisions/recommended.ts';
import { parseProfiles, readConfigYaml } from '../../src/config.ts';
import { parseTrigger } from '../../src/trigger/schema.ts';
import type { ConnectionProfiles } from '../../src/trigger/types.ts';
import { type Manifest, describe as name, parseManifests, schemaProblems } from '../support/manifests.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

function yamlFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(dir, f))
    .sort();
}

// The environment the profiles' `...FromEnv` keys read: in a cluster, Secrets (chart secretEnv).
const exampleEnv = {
  RABBITMQ_MAIN_URL: 'http://scaler:secret@rabbitmq.messaging:15672/inference',
  KAFKA_USER: 'scaler',
  KAFKA_PASSWORD: 'secret',
};
const composeScalerEnv = (
  parseYaml(read('deploy/compose/docker-compose.yaml')) as {
    services: { scaler: { environment: Record<string, string> } };
  }
).services.scaler.environment;

const sets: { readonly files: string[]; readonly profiles: () => ConnectionProfiles; readonly env: Record<string, string> }[] = [
  {
    files: yamlFiles('examples').filter((f) => f !== join('examples', 'scaler-config.yaml')),
    profiles: () => parseProfiles(readConfigYaml(read('examples/scaler-config.yaml')), exampleEnv),
    env: exampleEnv,
  },
  {
    files: ['deploy/compose/scaledobjects.yaml'],
    profiles: () => parseProfiles(readConfigYaml(read('deploy/compose/scaler-config.yaml')), composeScalerEnv),
    env: composeScalerEnv,
  },
];

const manifests = sets.flatMap((set) => set.files.flatMap((file) => parseManifests(read(file)).map((m) => ({ file, m, set }))));

// The ScaledObjects the README and docs/ show are copied as often (found by review: two without
// the maxReplicas their maxReplicaCount asks for); checked with the examples' profiles.
const docs = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
];
const documented = docs.flatMap((file) =>
  [...read(file).matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((block) => block[1]!)
    .filter((text) => /^kind: ScaledObject$/m.test(text))
    .flatMap((text) => parseManifests(text).map((m) => ({ file, m, set: sets[0]! }))),
);
const scaledObjects = manifests.filter(({ m }) => m.kind === 'ScaledObject');

interface Trigger {
  type: string;
  metadata: Record<string, string>;
  authenticationRef?: { name: string; kind?: string };
}
const triggersOf = (m: Manifest) =>
  ((m.spec?.triggers ?? []) as Trigger[]).filter((t) => t.type === 'external' || t.type === 'external-push');

describe('examples', () => {
  it('are found: ScaledObjects for every source, both trigger types, a blend', () => {
    const kinds = new Set(
      scaledObjects.flatMap(({ m }) => triggersOf(m).flatMap((t) => Object.keys(t.metadata).map((k) => k.split('.')[0]))),
    );
    expect([...kinds]).toEqual(expect.arrayContaining(['rabbitmq', 'sqs', 'kafka', 'gpu']));
    const types = new Set(scaledObjects.flatMap(({ m }) => triggersOf(m).map((t) => t.type)));
    expect([...types].sort()).toEqual(['external', 'external-push']);
    const blends = scaledObjects.filter(({ m }) =>
      triggersOf(m).some(
        (t) =>
          new Set(
            Object.keys(t.metadata)
              .filter((k) => k.includes('.'))
              .map((k) => k.split('.')[0]),
          ).size >= 2,
      ),
    );
    expect(blends.length).toBeGreaterThan(0);
  });

  it.each(manifests.map(({ file, m }) => [`${file}: ${name(m)}`, m] as const))('%s matches its kind schema', (_label, m) => {
    expect(schemaProblems(m)).toEqual([]);
  });

  it('connection profiles load with the environment they reference', () => {
    for (const set of sets) expect(Object.keys(set.profiles()).length).toBeGreaterThan(0);
  });

  it('include the ScaledObjects of the README and docs/', () => {
    expect(documented.length).toBeGreaterThan(3);
  });

  const triggerCases = [...scaledObjects, ...documented.filter(({ m }) => m.kind === 'ScaledObject')].flatMap(
    ({ file, m, set }) => triggersOf(m).map((t, i) => [`${file}: ${name(m)} trigger ${i}`, m, t, set] as const),
  );
  it.each(triggerCases)("%s passes the scaler's own validation", (_label, m, trigger, set) => {
    expect(trigger.metadata.scalerAddress).toMatch(/^[a-z0-9.-]+:\d+$/);
    // KEDA resolves `...FromEnv` from the workload's environment; values are strings.
    for (const value of Object.values(trigger.metadata)) expect(typeof value).toBe('string');
    const parsed = parseTrigger(
      { name: m.metadata.name, namespace: m.metadata.namespace ?? 'default', metadata: trigger.metadata },
      { profiles: set.profiles(), env: set.env },
    );
    expect(parsed.sources.length).toBeGreaterThan(0);
    const maxReplicaCount = m.spec?.maxReplicaCount as number | undefined;
    if (maxReplicaCount !== undefined) expect(parsed.scaling.maxReplicas).toBe(maxReplicaCount);
  });
});

// One recommended ScaledObject: the one the decisions simulator runs the model with. Every example,
// and the YAML in examples/README.md, docs/model.md, README.md and docs/gpu.md, must say exactly that.
describe('recommended ScaledObject settings (examples/README.md, docs/model.md, bench/decisions)', () => {
  const expected = { cooldownPeriod: RECOMMENDED_SCALED_OBJECT.cooldownSeconds, behavior: RECOMMENDED_SCALED_OBJECT.behavior };
  const settingsOf = (spec: Record<string, unknown> | undefined) => ({
    cooldownPeriod: spec?.cooldownPeriod,
    behavior: (spec?.advanced as { horizontalPodAutoscalerConfig?: { behavior?: unknown } } | undefined)
      ?.horizontalPodAutoscalerConfig?.behavior,
  });

  it('the simulator runs cooldownPeriod 30 and an HPA without stabilization windows', () => {
    expect(expected.cooldownPeriod).toBe(30);
    expect(expected.behavior.scaleUp.stabilizationWindowSeconds).toBe(0);
    expect(expected.behavior.scaleDown.stabilizationWindowSeconds).toBe(0);
  });

  const recommended = scaledObjects.filter(({ file }) => file.startsWith('examples'));
  it.each(recommended.map(({ file, m }) => [`${file}: ${name(m)}`, m] as const))(
    '%s: cooldownPeriod and HPA behavior are the simulated ones',
    (_l, m) => {
      expect(settingsOf(m.spec)).toEqual(expected);
    },
  );

  it.each(['examples/README.md', 'docs/model.md', 'README.md', 'docs/gpu.md'])(
    '%s shows the same cooldownPeriod and HPA behavior',
    (doc) => {
      const blocks = [...read(doc).matchAll(/```yaml\n([\s\S]*?)```/g)]
        .map((b) => b[1]!)
        .filter((b) => b.includes('horizontalPodAutoscalerConfig'));
      expect(blocks.length).toBe(1);
      const parsed = parseYaml(blocks[0]!) as { spec?: Record<string, unknown> };
      expect(settingsOf(parsed.spec)).toEqual(expected);
    },
  );
});

describe('TLS to the scaler', () => {
  const auths = manifests
    .filter(({ m }) => m.kind === 'TriggerAuthentication' || m.kind === 'ClusterTriggerAuthentication')
    .map(({ m }) => m);

  it('TriggerAuthentications carry only what KEDA forwards to an external scaler: its own TLS material', () => {
    expect(auths.length).toBeGreaterThan(0);
    for (const auth of auths) {
      const params = ((auth.spec?.secretTargetRef ?? []) as { parameter: string }[]).map((r) => r.parameter);
      expect(params.length).toBeGreaterThan(0);
      for (const p of params) expect(['caCert', 'tlsClientCert', 'tlsClientKey']).toContain(p);
    }
  });

  it('every trigger with enableTLS references an existing (Cluster)TriggerAuthentication that gives caCert', () => {
    const tlsTriggers = scaledObjects.flatMap(({ m }) =>
      triggersOf(m)
        .filter((t) => t.metadata.enableTLS === 'true')
        .map((t) => ({ m, t })),
    );
    expect(tlsTriggers.length).toBeGreaterThan(0);
    for (const { m, t } of tlsTriggers) {
      // A ClusterTriggerAuthentication is for every namespace; a TriggerAuthentication for its own.
      const kind = t.authenticationRef?.kind ?? 'TriggerAuthentication';
      const auth = auths.find(
        (a) =>
          a.kind === kind &&
          a.metadata.name === t.authenticationRef?.name &&
          (kind === 'ClusterTriggerAuthentication' || a.metadata.namespace === m.metadata.namespace),
      );
      expect(auth, `${name(m)} -> ${t.authenticationRef?.name}`).toBeDefined();
      const params = ((auth!.spec?.secretTargetRef ?? []) as { parameter: string }[]).map((r) => r.parameter);
      expect(params).toContain('caCert');
    }
  });
});

describe('the example worker', () => {
  it('is the scaleTargetRef of the RabbitMQ example and drains in-flight work on SIGTERM', () => {
    const deployment = parseManifests(read('examples/worker/deployment.yaml'))[0]!;
    const targets = scaledObjects.map(({ m }) => (m.spec?.scaleTargetRef as { name: string }).name);
    expect(targets).toContain(deployment.metadata.name);
    const worker = read('examples/worker/worker.mjs');
    expect(worker).toMatch(/process\.on\('SIGTERM'/);
    expect(worker).toMatch(/channel\.cancel\(/);
    expect(JSON.parse(read('examples/worker/package.json')).dependencies).toHaveProperty('amqplib');
  });
});
