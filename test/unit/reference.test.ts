import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { metadataReference } from '../../src/trigger/reference.ts';
import { scalingFields, sourceFields } from '../../src/trigger/fields.ts';
import { InvalidTrigger } from '../../src/errors.ts';
import { PEM_CERTIFICATE_STUB, PEM_PRIVATE_KEY_STUB } from '../fixtures/pem.ts';
import { parseTrigger, rulesBetweenKeys } from '../../src/trigger/schema.ts';

describe('docs/metadata.md', () => {
  it('is the reference generated from the schema (run `npm run docs:metadata` after changing fields)', () => {
    const onDisk = readFileSync(new URL('../../docs/metadata.md', import.meta.url), 'utf8');
    expect(onDisk).toBe(metadataReference());
  });

  it('lists every key of every source', () => {
    const text = metadataReference();
    for (const [kind, fields] of Object.entries(sourceFields)) {
      for (const name of Object.keys(fields)) expect(text).toContain(`\`${kind}.${name}\``);
    }
    for (const name of Object.keys(scalingFields)) expect(text).toContain(`\`${name}\``);
  });
});

describe('the rules between keys that docs/metadata.md lists', () => {
  const rabbit = { 'rabbitmq.host': 'amqp://broker', 'rabbitmq.queueName': 'q' };
  const sqs = { 'sqs.queueURL': 'http://sqs.local:9324/000000000000/q' };
  const kafka = { 'kafka.bootstrapServers': 'k:9092', 'kafka.consumerGroup': 'g' };
  const gpu = { 'gpu.serverAddress': 'http://prom:9090' };
  const pem = PEM_CERTIFICATE_STUB;
  const key = PEM_PRIVATE_KEY_STUB;
  // Per rule: the group, one map that breaks it and the key the answer names, one that keeps it.
  const cases: ReadonlyArray<{
    readonly group: keyof typeof rulesBetweenKeys;
    readonly rule: number;
    readonly broken: Record<string, string>;
    readonly names: string;
    readonly kept: Record<string, string>;
  }> = [
    {
      group: 'scaling',
      rule: 0,
      broken: { ...rabbit, minReplicas: '5', maxReplicas: '4' },
      names: 'minReplicas',
      kept: { ...rabbit, minReplicas: '4', maxReplicas: '4' },
    },
    {
      group: 'rabbitmq',
      rule: 0,
      broken: { ...rabbit, 'rabbitmq.protocol': 'http' },
      names: 'rabbitmq.protocol',
      kept: { ...rabbit, 'rabbitmq.protocol': 'amqp' },
    },
    {
      group: 'rabbitmq',
      rule: 1,
      broken: { ...rabbit, 'rabbitmq.excludeUnacknowledged': 'true' },
      names: 'rabbitmq.excludeUnacknowledged',
      kept: { 'rabbitmq.host': 'http://broker:15672', 'rabbitmq.queueName': 'q', 'rabbitmq.excludeUnacknowledged': 'true' },
    },
    { group: 'sqs', rule: 0, broken: sqs, names: 'sqs.awsRegion', kept: { ...sqs, 'sqs.awsRegion': 'eu-west-1' } },
    {
      group: 'kafka',
      rule: 0,
      broken: { ...kafka, 'kafka.sasl': 'plain', 'kafka.username': 'u' },
      names: 'kafka.password',
      kept: { ...kafka, 'kafka.sasl': 'plain', 'kafka.username': 'u', 'kafka.password': 'p' },
    },
    {
      group: 'kafka',
      rule: 1,
      broken: { ...kafka, 'kafka.tls': 'enable', 'kafka.cert': pem },
      names: 'kafka.key',
      kept: { ...kafka, 'kafka.tls': 'enable', 'kafka.cert': pem, 'kafka.key': key },
    },
    {
      group: 'kafka',
      rule: 2,
      broken: { ...kafka, 'kafka.ca': pem },
      names: 'kafka.ca',
      kept: { ...kafka, 'kafka.tls': 'enable', 'kafka.ca': pem },
    },
    {
      group: 'gpu',
      rule: 0,
      broken: { ...gpu, 'gpu.query': 'sum(up)', 'gpu.namespace': 'ml' },
      names: 'gpu.query',
      kept: { ...gpu, 'gpu.podSelector': 'llm-.*' },
    },
    {
      group: 'gpu',
      rule: 1,
      broken: { ...gpu, 'gpu.namespace': 'ml', 'gpu.bearerToken': 't', 'gpu.username': 'u', 'gpu.password': 'p' },
      names: 'gpu.bearerToken',
      kept: { ...gpu, 'gpu.namespace': 'ml', 'gpu.username': 'u', 'gpu.password': 'p' },
    },
  ];
  const parse = (metadata: Record<string, string>) => parseTrigger({ name: 'so', namespace: 'ns', metadata }, { env: {} });

  it('has a case for every rule it lists', () => {
    for (const [group, rules] of Object.entries(rulesBetweenKeys)) {
      expect(cases.filter((c) => c.group === group).map((c) => c.rule)).toEqual(rules.map((_, i) => i));
    }
  });

  it.each(cases)('$group rule $rule: refused naming $names, and kept it passes', ({ broken, names, kept }) => {
    expect(() => parse(kept)).not.toThrow();
    let refused: unknown;
    try {
      parse(broken);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(InvalidTrigger);
    expect((refused as InvalidTrigger).issues.some((i) => i.startsWith(`${names}:`))).toBe(true);
  });
});
