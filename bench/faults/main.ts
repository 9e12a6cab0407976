// Fault injection during load (`npm run bench:faults -- --help`): every source (RabbitMQ amqp and
// http, SQS, Kafka, Prometheus) stopped, restarted, slow, blackholed, with its credentials
// changed, and its queue or topic deleted and recreated, while a KEDA-like client asks 200
// triggers and holds 100 streams open. Prints one row per fault. See docs/reliability.md.
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { discoverServices } from '../../test/support/services.ts';
import { BED_KINDS, type BedKind, FAULT_KINDS, type FaultKind, liveChildren } from './bed.ts';
import { FaultHarness, type FaultFigures } from './harness.ts';
import { findKafkaJars } from './kafkaBed.ts';
import { findMotoServer } from './moto.ts';
import { faultTable, resourcesText } from './report.ts';

const USAGE = `npm run bench:faults -- [flags]
  --sources LIST      kinds of source, comma-separated        (default ${BED_KINDS.join(',')})
  --faults LIST       faults to play, comma-separated          (default ${FAULT_KINDS.join(',')})
  --triggers N        triggers in all, spread over the kinds   (default 200)
  --streams N         open StreamIsActive streams in all       (default 100)
  --poll MS           each trigger asked GetMetrics+IsActive every MS (default 1000)
  --fault-seconds S   how long each fault lasts                (default 15; a restart's gap is 2 s)
  --connection-age MS the scaler's GRPC_MAX_CONNECTION_AGE_MS   (default: its own, 5 min)
  --json FILE         also write every figure as JSON
Services come from the environment or .services/env (scripts/services.sh up). The SQS credentials
fault runs a private moto (MOTO_SERVER, else the one scripts/services.sh installs); the Kafka one
needs Kafka's jars (KAFKA_JARS, likewise) and KAFKA_SASL_BROKERS.
`;

const log = (line: string) => process.stderr.write(`[faults] ${line}\n`);

function list<T extends string>(name: string, raw: string | undefined, allowed: readonly T[]): T[] {
  if (raw === undefined) return [...allowed];
  const items = raw.split(',').filter((s) => s !== '');
  for (const item of items)
    if (!allowed.includes(item as T)) throw new Error(`--${name}: got ${JSON.stringify(item)}; allowed: ${allowed.join(', ')}`);
  return items as T[];
}

function int(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: got ${JSON.stringify(raw)}; allowed: a whole number >= 1`);
  return n;
}

function abort(reason: string): never {
  process.stderr.write(`bench:faults aborted: ${reason}\n`);
  for (const child of liveChildren) child.kill('SIGKILL');
  process.exit(1);
}
process.on('SIGINT', () => abort('interrupted'));
process.on('SIGTERM', () => abort('terminated'));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sources: { type: 'string' },
      faults: { type: 'string' },
      triggers: { type: 'string' },
      streams: { type: 'string' },
      poll: { type: 'string' },
      'fault-seconds': { type: 'string' },
      json: { type: 'string' },
      'connection-age': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const kinds: BedKind[] = list('sources', values.sources, BED_KINDS);
  const faults: FaultKind[] = list('faults', values.faults, FAULT_KINDS);
  const s = discoverServices();
  const need = (key: keyof typeof s) => {
    const v = s[key];
    if (v === undefined) throw new Error(`${key} is not set: run scripts/services.sh up, or set it`);
    return v;
  };
  const motoServer = kinds.includes('sqs') && faults.includes('credentials') ? findMotoServer() : undefined;
  const kafkaJars = kinds.includes('kafka') && faults.includes('credentials') ? findKafkaJars() : undefined;
  const harness = await FaultHarness.start({
    services: {
      rabbitmqUrl: need('RABBITMQ_URL'),
      rabbitmqManagementUrl: need('RABBITMQ_MANAGEMENT_URL'),
      kafkaBrokers: need('KAFKA_BROKERS'),
      ...(s.KAFKA_SASL_BROKERS ? { kafkaSaslBrokers: s.KAFKA_SASL_BROKERS } : {}),
      sqsEndpoint: need('SQS_ENDPOINT'),
      prometheusUrl: need('PROMETHEUS_URL'),
      dcgmExporterUrl: need('DCGM_EXPORTER_URL'),
    },
    kinds,
    triggers: int('triggers', values.triggers, 200),
    streams: int('streams', values.streams, 100),
    sourcesPerKind: 8,
    pollMs: int('poll', values.poll, 1000),
    faultMs: int('fault-seconds', values['fault-seconds'], 15) * 1000,
    restartGapMs: 2000,
    sourceTimeoutMs: 2000,
    ...(values['connection-age'] !== undefined ? { maxConnectionAgeMs: int('connection-age', values['connection-age'], 1) } : {}),
    maxRecoveryMs: 30_000,
    stableMs: 5000,
    ...(motoServer ? { motoServer } : {}),
    ...(kafkaJars ? { kafkaJars } : {}),
    log,
  });
  const rows: Awaited<ReturnType<FaultHarness['run']>>[] = [];
  try {
    for (const kind of kinds) {
      for (const fault of faults) {
        log(`${kind}: ${fault}`);
        const row = await harness.run(kind, fault);
        rows.push(row);
        if ('faulted' in row) {
          log(
            `  right ${row.faulted.correct}/${row.faulted.calls}, untrue ${row.faulted.falseZeros + row.faulted.wrong + row.streamFalse}, recovery ${row.recoverySeconds ?? 'none'} s, ${resourcesText(row.before, row.after)}`,
          );
          log(
            `  after the fault: ${row.afterEnd.correct}/${row.afterEnd.calls} right ${JSON.stringify(row.afterEnd.errors)}; streams ended ${JSON.stringify(row.streamEnds)}`,
          );
          for (const [key, details] of harness.load.errorSamples) if (key.startsWith('stream ')) log(`  ${key}: ${details}`);
          for (const u of row.untrue) log(`  untrue: ${u}`);
        } else log(`  ${row.notApplicable}`);
      }
    }
  } finally {
    const final = await harness.quietResources().catch(() => undefined);
    await harness.close();
    const played = rows.filter((r): r is FaultFigures => 'faulted' in r);
    process.stdout.write(
      `\nkeda-inference-scaler faults during load (nproc ${availableParallelism()}, loadavg ${loadavg()
        .map((l) => l.toFixed(2))
        .join(
          ' ',
        )}): ${harness.options.triggers} triggers asked every ${harness.options.pollMs} ms, ${harness.options.streams} streams, faults of ${harness.options.faultMs / 1000} s, SOURCE_TIMEOUT_MS ${harness.options.sourceTimeoutMs}, slow = ${harness.options.sourceTimeoutMs + 1000} ms per byte\n\n`,
    );
    process.stdout.write(`${faultTable(rows)}\n\n`);
    if (final)
      process.stdout.write(
        `process over the whole run: ${resourcesText(harness.initial, final)}; RSS ${harness.initial.rssMb.toFixed(0)} -> ${final.rssMb.toFixed(0)} MB\n`,
      );
    const falseZeros = played.reduce(
      (n, r) => n + r.faulted.falseZeros + r.faulted.wrong + r.streamFalse + r.bystanders.falseZeros + r.bystanders.wrong,
      0,
    );
    const slowest = Math.max(...played.map((r) => r.recoverySeconds ?? Infinity));
    process.stdout.write(
      `untrue answers (false zeros included): ${falseZeros}; slowest recovery: ${Number.isFinite(slowest) ? `${slowest.toFixed(1)} s` : 'NOT RECOVERED'}\n`,
    );
    if (values.json !== undefined) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(values.json, `${JSON.stringify({ rows, initial: harness.initial, final }, null, 2)}\n`);
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    abort(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  },
);
