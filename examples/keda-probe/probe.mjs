#!/usr/bin/env node
// keda-probe: calls the scaler the way KEDA does, for every external / external-push trigger of
// the ScaledObjects in a YAML file, and prints what KEDA would do with the answers:
// GetMetricSpec, then GetMetrics and IsActive, every INTERVAL_SECONDS. For trying the scaler
// without a cluster (deploy/compose); runs in the scaler's image, which has the gRPC libraries
// and the protocol file, or from a checkout:
//
//   node probe.mjs scaledobjects.yaml
//   SCALER_ADDRESS=127.0.0.1:9090 node examples/keda-probe/probe.mjs examples/scaledobject-rabbitmq.yaml
// (that ScaledObject names a profile of examples/scaler-config.yaml: examples/README.md says how
// to start the scaler with it)
// Environment: SCALER_ADDRESS (overrides each trigger's scalerAddress), INTERVAL_SECONDS (5),
// PROTO (the image's /app/proto/externalscaler.proto, else the checkout's), ONCE=1 (one round,
// exit 1 on any error).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { parseAllDocuments } from 'yaml';

const file = process.argv[2] ?? '/app/probe/scaledobjects.yaml';
const intervalMs = Number(process.env.INTERVAL_SECONDS ?? 5) * 1000;
const inImage = '/app/proto/externalscaler.proto';
const protoPath =
  process.env.PROTO ??
  (existsSync(inImage) ? inImage : fileURLToPath(new URL('../../proto/externalscaler.proto', import.meta.url)));
const once = process.env.ONCE === '1';

const definition = protoLoader.loadSync(protoPath, { keepCase: true, longs: Number, defaults: true });
const { ExternalScaler } = grpc.loadPackageDefinition(definition).externalscaler;

/** KEDA resolves `<key>FromEnv` from the workload's environment; here, from the probe's. */
function resolveFromEnv(metadata) {
  const out = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (!key.endsWith('FromEnv')) out[key] = String(value);
    else if (process.env[value] !== undefined) out[key] = process.env[value];
  }
  return out;
}

const triggers = parseAllDocuments(readFileSync(file, 'utf8'))
  .map((doc) => doc.toJS())
  .filter((o) => o?.kind === 'ScaledObject')
  .flatMap((so) =>
    (so.spec?.triggers ?? [])
      .filter((t) => t.type === 'external' || t.type === 'external-push')
      .map((t) => ({
        label: `${so.metadata.namespace ?? 'default'}/${so.metadata.name}`,
        address: process.env.SCALER_ADDRESS ?? t.metadata.scalerAddress,
        ref: {
          name: so.metadata.name,
          namespace: so.metadata.namespace ?? 'default',
          scalerMetadata: resolveFromEnv(t.metadata),
        },
      })),
  );

const clients = new Map();
function client(address) {
  if (!clients.has(address)) clients.set(address, new ExternalScaler(address, grpc.credentials.createInsecure()));
  return clients.get(address);
}

// The HPA path gives KEDA's calls a 3 s deadline: so does the probe.
const call = (c, method, request) =>
  new Promise((resolve, reject) =>
    c[method](request, { deadline: Date.now() + 3000 }, (err, res) => (err ? reject(err) : resolve(res))),
  );

async function round() {
  let failures = 0;
  for (const t of triggers) {
    const c = client(t.address);
    try {
      const spec = await call(c, 'GetMetricSpec', t.ref);
      const metricSpec = spec.metricSpecs[0];
      const metrics = await call(c, 'GetMetrics', { scaledObjectRef: t.ref, metricName: metricSpec.metricName });
      const active = await call(c, 'IsActive', t.ref);
      const value = metrics.metricValues[0]?.metricValueFloat || metrics.metricValues[0]?.metricValue || 0;
      const target = metricSpec.targetSizeFloat || metricSpec.targetSize || 1;
      console.log(
        `${new Date().toISOString()}  ${t.label.padEnd(28)} active=${String(active.result).padEnd(5)} ` +
          `desired replicas=${Math.ceil(value / target)}  (metric ${value} / target ${target})`,
      );
    } catch (err) {
      failures++;
      console.log(
        `${new Date().toISOString()}  ${t.label.padEnd(28)} error ${grpc.status[err.code] ?? err.code}: ${err.details ?? err.message}`,
      );
    }
  }
  return failures;
}

if (triggers.length === 0) {
  console.error(`keda-probe: no external or external-push triggers in ${file}`);
  process.exit(2);
}
if (once) process.exit((await round()) > 0 ? 1 : 0);
for (;;) {
  await round();
  await new Promise((r) => setTimeout(r, intervalMs));
}
