// Renders the trigger metadata reference (docs/metadata.md) from the field tables, so the docs
// say exactly what the schema accepts. `npm run docs:metadata` writes it; a unit test checks it.
import { type Field, LONG_VALUE_CHARS, MAX_VALUE_CHARS, kedaKeys, scalingFields, sourceFields } from './fields.ts';
import { rulesBetweenKeys } from './schema.ts';

function defaultText(field: Field): string {
  if (field.default !== undefined) return `\`${String(field.default)}\``;
  return field.required ? 'required' : '';
}

function table(prefix: string, fields: Readonly<Record<string, Field>>): string {
  const rows = Object.entries(fields).map(([name, f]) => {
    const key = `\`${prefix}${name}\`${f.fromEnv ? ` (or \`${prefix}${name}FromEnv\`)` : ''}`;
    return `| ${key} | ${f.description} | ${f.allowed} | ${defaultText(f)} |`;
  });
  return ['| key | meaning | allowed | default |', '|---|---|---|---|', ...rows].join('\n');
}

/** A group's table, then the rules between its keys (refused with INVALID_ARGUMENT like a bad value). */
function group(prefix: string, fields: Readonly<Record<string, Field>>, rules: readonly string[]): string {
  if (rules.length === 0) return table(prefix, fields);
  return [table(prefix, fields), '', 'Between these keys:', '', ...rules.map((r) => `- ${r}`)].join('\n');
}

/** Keys marked out of the lineage among the sources' (false), or into it among the scaling ones (true). */
function lineageKeys(marked: boolean): string[] {
  const of = (prefix: string, fields: Readonly<Record<string, Field>>) =>
    Object.entries(fields)
      .filter(([, f]) => f.lineage === marked)
      .map(([name]) => `\`${prefix}${name}\``);
  return marked ? of('', scalingFields) : Object.entries(sourceFields).flatMap(([kind, fields]) => of(`${kind}.`, fields));
}

/** The source keys that route a connection profile's secret (Field.routesCredentials), as a list in words. */
function credentialRoutes(): string {
  const keys = Object.entries(sourceFields).flatMap(([kind, fields]) =>
    Object.entries(fields as Readonly<Record<string, Field>>)
      .filter(([, f]) => f.routesCredentials === true)
      .map(([name]) => `\`${kind}.${name}\``),
  );
  return `${keys.slice(0, -1).join(', ')} or ${keys.at(-1)!}`;
}

const titles: Record<keyof typeof sourceFields, string> = {
  rabbitmq: 'RabbitMQ (`rabbitmq.*`)',
  sqs: 'AWS SQS (`sqs.*`)',
  kafka: 'Kafka consumer-group lag (`kafka.*`)',
  gpu: 'GPU saturation from Prometheus / DCGM (`gpu.*`)',
};

export function metadataReference(): string {
  const sections = Object.entries(sourceFields).map(
    ([kind, fields]) =>
      `### ${titles[kind as keyof typeof sourceFields]}\n\n${group(`${kind}.`, fields, rulesBetweenKeys[kind as keyof typeof sourceFields])}`,
  );
  return [
    '# Trigger metadata reference',
    '',
    '<!-- Generated from src/trigger/fields.ts by `npm run docs:metadata`; do not edit by hand. -->',
    '',
    "Every key of a `type: external` or `type: external-push` trigger's `metadata`. Unknown keys, bad values, a broken rule",
    'between keys (listed under each table) and a trigger without a source are answered with gRPC `INVALID_ARGUMENT`: the',
    'first problems, each naming the key, the value (secrets redacted, long values cut to a few dozen characters) and what',
    'is allowed, then a count of the rest. A trigger names at least one source; several sources add up their backlogs.',
    '',
    `A value is at most ${MAX_VALUE_CHARS} characters long, or ${LONG_VALUE_CHARS} for a PEM certificate or key, a bearer token,`,
    "a PromQL query or `gpu.customHeaders` (a connection profile's values have no such limit).",
    '',
    'Keys marked "or `...FromEnv`" may instead name an environment variable of the scaled workload: KEDA resolves it and',
    'sends the value (KEDA does not forward TriggerAuthentication values to external scalers). `<source>.connection` names',
    "a connection profile from the scaler's own configuration file (`CONFIG_FILE`); the profile's keys act as defaults,",
    'so credentials can live in Kubernetes Secrets mounted into the scaler instead of the ScaledObject. A trigger that names',
    `a profile holding a password, key or token may not set ${credentialRoutes()}: they decide where and`,
    "how safely the profile's secret is sent.",
    '',
    `KEDA's own keys are accepted and ignored: ${[...kedaKeys].map((k) => `\`${k}\``).join(', ')}.`,
    '',
    'An edited trigger is a new one to the scaler, which carries on from what it learned about the old one (rates, throughput,',
    'cold start, idle gaps, bursts, the hold; docs/deploy.md, "Editing a ScaledObject"), unless the edit changes what the',
    'sources read or how their readings are read, and learning starts over: a source key other than',
    `${lineageKeys(false).join(', ')} (a password in a URL neither), or ${lineageKeys(true).join(', ')}.`,
    '',
    '## Scaling (no prefix)',
    '',
    group('', scalingFields, rulesBetweenKeys.scaling),
    '',
    '## Sources',
    '',
    sections.join('\n\n'),
    '',
  ].join('\n');
}
