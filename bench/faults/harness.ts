// The fault harness: real services behind TCP proxies (one bed per kind of source), the scaler as
// its own process, a KEDA-like client over every trigger, and one fault at a time with its
// figures: answers right, errors by status, false zeros, time to recover, streams kept, and what
// the process holds before and after. bench/faults/main.ts prints them; test/integration/
// faults.test.ts asserts the must-holds on a subset.
import { randomBytes } from 'node:crypto';
import { type BedKind, type FaultKind, type SourceBed, sleep } from './bed.ts';
import { gpuBed } from './gpuBed.ts';
import { type CallRecord, KEDA_DEADLINE_MS, KedaLoad, type LoadTrigger, type Outcome } from './keda.ts';
import { kafkaBed } from './kafkaBed.ts';
import { rabbitmqBed } from './rabbitmqBed.ts';
import { type Resources, ScalerChild } from './scaler.ts';
import { sqsBed } from './sqsBed.ts';

interface HarnessServices {
  readonly rabbitmqUrl: string;
  readonly rabbitmqManagementUrl: string;
  readonly kafkaBrokers: string;
  readonly kafkaSaslBrokers?: string;
  readonly sqsEndpoint: string;
  readonly prometheusUrl: string;
  readonly dcgmExporterUrl: string;
}

export interface HarnessOptions {
  readonly services: HarnessServices;
  readonly kinds: readonly BedKind[];
  /** Triggers in all (spread evenly over the kinds) and open streams in all. */
  readonly triggers: number;
  readonly streams: number;
  /** Distinct queues (topics, queries) per kind. */
  readonly sourcesPerKind: number;
  /** Each trigger is asked GetMetrics + IsActive once per pollMs. */
  readonly pollMs: number;
  /** How long a fault lasts (a restart's gap is restartGapMs). */
  readonly faultMs: number;
  readonly restartGapMs: number;
  /** The scaler's GRPC_MAX_CONNECTION_AGE_MS, when not its default (5 min). */
  readonly maxConnectionAgeMs?: number;
  /** The scaler's SOURCE_TIMEOUT_MS; "slow" delays every byte by this plus 1 s. */
  readonly sourceTimeoutMs: number;
  /** Recovery counts as failed past this. */
  readonly maxRecoveryMs: number;
  /** Recovered: every call of the faulted kind answered right for this long. */
  readonly stableMs: number;
  /** Ask the broker for the scaler's connections and channels (RabbitMQ: 5 s for its statistics to catch up). */
  readonly brokerSide?: boolean;
  /** moto_server to run privately (SQS credentials fault), Kafka's jars (Kafka credentials fault). */
  readonly motoServer?: string;
  readonly kafkaJars?: string;
  readonly log: (line: string) => void;
}

export interface Tally {
  calls: number;
  correct: number;
  falseZeros: number;
  wrong: number;
  errors: Record<string, number>;
}

export interface FaultFigures {
  readonly kind: BedKind;
  readonly fault: FaultKind;
  readonly faultSeconds: number;
  /** Calls on the faulted kind's triggers, from the fault's start to the end of the observation. */
  readonly faulted: Tally;
  /** Calls on every other kind's triggers meanwhile: a fault must stay with its own source. */
  readonly bystanders: Tally;
  /** Streamed answers that were false (the queue had work throughout), and streams that ended. */
  readonly streamFalse: number;
  /** Streams that ended during the observation, by status (KEDA re-opens them: OK after 2 s). */
  readonly streamEnds: Record<string, number>;
  readonly streamsOpenAfter: number;
  readonly streamsOpenedTotal: number;
  /** Calls of the faulted kind sent after the fault ended: what recovery waited on. */
  readonly afterEnd: Tally;
  /** Seconds from the fault's end until every call of the faulted kind answered right; undefined: not within maxRecoveryMs. */
  readonly recoverySeconds: number | undefined;
  readonly before: Resources;
  readonly after: Resources;
  /** The broker's count of the scaler's connections and channels, before and after (RabbitMQ amqp). */
  readonly brokerBefore?: { connections: number; channels: number };
  readonly brokerAfter?: { connections: number; channels: number };
  /** Examples of answers that were not the truth (value, method, when). */
  readonly untrue: readonly string[];
}

function tally(records: readonly CallRecord[]): Tally {
  const t: Tally = { calls: 0, correct: 0, falseZeros: 0, wrong: 0, errors: {} };
  for (const r of records) {
    t.calls++;
    if (r.outcome === 'correct') t.correct++;
    else if (r.outcome === 'falseZero') t.falseZeros++;
    else if (r.outcome === 'wrong') t.wrong++;
    else t.errors[r.outcome] = (t.errors[r.outcome] ?? 0) + 1;
  }
  return t;
}

function countBy(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of keys) counts[k] = (counts[k] ?? 0) + 1;
  return counts;
}

const isUntrue = (o: Outcome) => o === 'falseZero' || o === 'wrong';

export class FaultHarness {
  readonly options: HarnessOptions;
  readonly beds: ReadonlyMap<BedKind, SourceBed>;
  readonly scaler: ScalerChild;
  readonly load: KedaLoad;
  readonly initial: Resources;

  private constructor(
    options: HarnessOptions,
    beds: Map<BedKind, SourceBed>,
    scaler: ScalerChild,
    load: KedaLoad,
    initial: Resources,
  ) {
    this.options = options;
    this.beds = beds;
    this.scaler = scaler;
    this.load = load;
    this.initial = initial;
  }

  static async start(options: HarnessOptions): Promise<FaultHarness> {
    const { services: s, log } = options;
    const runId = randomBytes(3).toString('hex');
    const beds = new Map<BedKind, SourceBed>();
    const sources = options.sourcesPerKind;
    let scaler: ScalerChild | undefined;
    try {
      for (const kind of options.kinds) {
        log(`bed ${kind}: ${sources} sources`);
        const bed =
          kind === 'rabbitmq-amqp' || kind === 'rabbitmq-http'
            ? await rabbitmqBed({
                amqpUrl: s.rabbitmqUrl,
                managementUrl: s.rabbitmqManagementUrl,
                sources,
                protocol: kind === 'rabbitmq-amqp' ? 'amqp' : 'http',
                runId,
              })
            : kind === 'sqs'
              ? await sqsBed({
                  sources,
                  runId,
                  endpoint: s.sqsEndpoint,
                  ...(options.motoServer ? { motoServer: options.motoServer } : {}),
                })
              : kind === 'kafka'
                ? await kafkaBed({
                    brokers: s.kafkaBrokers,
                    sources,
                    runId,
                    ...(options.kafkaJars && s.kafkaSaslBrokers
                      ? { jars: options.kafkaJars, saslBrokers: s.kafkaSaslBrokers }
                      : {}),
                  })
                : await gpuBed({ prometheusUrl: s.prometheusUrl, exporterUrl: s.dcgmExporterUrl, sources, runId });
        beds.set(kind, bed);
      }
      for (const bed of beds.values()) await bed.ready();
      const env: Record<string, string> = { SOURCE_TIMEOUT_MS: String(options.sourceTimeoutMs) };
      if (options.maxConnectionAgeMs !== undefined) env.GRPC_MAX_CONNECTION_AGE_MS = String(options.maxConnectionAgeMs);
      for (const bed of beds.values()) Object.assign(env, bed.scalerEnv ?? {});
      const routes = Object.assign({}, ...[...beds.values()].map((b) => b.kafkaRoutes ?? {})) as Record<string, number>;
      env.FAULTS_KAFKA_ROUTES = JSON.stringify(routes);
      scaler = await ScalerChild.start(env);
      log(`scaler pid ${scaler.pid} on ${scaler.address}`);
      const perKind = Math.floor(options.triggers / beds.size);
      const streamsPerKind = Math.floor(options.streams / beds.size);
      const triggers: LoadTrigger[] = [];
      const streamed: LoadTrigger[] = [];
      for (const bed of beds.values()) {
        for (let j = 0; j < perKind; j++) {
          const trigger: LoadTrigger = {
            kind: bed.kind,
            ref: { name: `faults-${bed.kind}-${j}`, namespace: 'faults', scalerMetadata: bed.metadata(j) },
            expectedReplicas: bed.expectedReplicas,
          };
          triggers.push(trigger);
          if (j < streamsPerKind) streamed.push(trigger);
        }
      }
      const load = new KedaLoad(scaler.address, triggers);
      load.openStreams(streamed);
      load.start(options.pollMs);
      const harness = new FaultHarness(options, beds, scaler, load, await settle(load, scaler, [...beds.keys()], options));
      return harness;
    } catch (err) {
      await scaler?.stop();
      for (const bed of beds.values()) await bed.close().catch(() => undefined);
      throw err;
    }
  }

  /** Why a fault cannot be played on a kind, or undefined. */
  notApplicable(kind: BedKind, fault: FaultKind): string | undefined {
    const bed = this.beds.get(kind)!;
    if (fault === 'credentials' && bed.breakCredentials === undefined) {
      return kind === 'sqs'
        ? 'needs a moto_server to run with credential checks (MOTO_SERVER)'
        : kind === 'kafka'
          ? "needs Kafka's jars (KAFKA_JARS) and its SASL listener"
          : 'no credentials to change';
    }
    if (fault === 'recreated' && bed.deleteSources === undefined) {
      return kind === 'gpu' ? 'not applicable: a Prometheus query has no queue or topic to delete' : 'nothing to delete';
    }
    return undefined;
  }

  /** Plays one fault on one kind while the load runs, and measures. */
  async run(kind: BedKind, fault: FaultKind): Promise<FaultFigures | { kind: BedKind; fault: FaultKind; notApplicable: string }> {
    const reason = this.notApplicable(kind, fault);
    if (reason !== undefined) return { kind, fault, notApplicable: reason };
    const { options, load } = this;
    const bed = this.beds.get(kind)!;
    const before = await this.quietResources();
    const askBroker = options.brokerSide !== false ? bed.brokerSide : undefined;
    const brokerBefore = await askBroker?.();
    load.reset();
    const startMs = Date.now();
    await play(bed, fault, options);
    const endMs = Date.now();
    options.log(
      `  ${kind} ${fault}: fault over after ${((endMs - startMs) / 1000).toFixed(1)} s; waiting for answers to be right again`,
    );
    const recoverySeconds = await recovered(load.calls, kind, endMs, options);
    const after = await this.quietResources();
    // The management API's figures lag by its statistics interval.
    const brokerAfter = askBroker !== undefined ? (await sleep(5000), await askBroker()) : undefined;
    const mine = load.calls.filter((c) => c.kind === kind);
    const untrue = load.calls
      .filter((c) => isUntrue(c.outcome))
      .slice(0, 5)
      .map((c) => `${c.kind} ${c.method} answered ${String(c.value)} at +${((c.sentMs - startMs) / 1000).toFixed(1)} s`);
    const streams = load.streamEvents;
    return {
      kind,
      fault,
      faultSeconds: (endMs - startMs) / 1000,
      faulted: tally(mine),
      bystanders: tally(load.calls.filter((c) => c.kind !== kind)),
      streamFalse: streams.filter((e) => e.outcome === 'falseZero').length,
      streamEnds: countBy(streams.filter((e) => e.outcome.startsWith('ended ')).map((e) => e.outcome.slice('ended '.length))),
      afterEnd: tally(mine.filter((c) => c.sentMs >= endMs)),
      streamsOpenAfter: load.openStreamCount,
      streamsOpenedTotal: Math.floor(options.streams / this.beds.size) * this.beds.size,
      recoverySeconds,
      before,
      after,
      ...(brokerBefore !== undefined ? { brokerBefore } : {}),
      ...(brokerAfter !== undefined ? { brokerAfter } : {}),
      untrue,
    };
  }

  /**
   * What the scaler holds with no call in flight: the polls paused (the streams stay open) until
   * the last calls' deadline has passed, sampled, then resumed. Under load a read or a scrape in
   * flight holds a socket and a timer for a moment, which made sockets swing by 5 between samples.
   */
  async quietResources(): Promise<Resources> {
    this.load.stop();
    await sleep(callsDoneMs(this.options));
    try {
      return await this.scaler.settledResources(3, 200);
    } finally {
      this.load.start(this.options.pollMs);
    }
  }

  async close(): Promise<void> {
    this.load.close();
    await this.scaler.stop();
    for (const bed of this.beds.values())
      await bed.close().catch((err: unknown) => this.options.log(`closing ${bed.kind}: ${String(err)}`));
  }
}

async function play(bed: SourceBed, fault: FaultKind, o: HarnessOptions): Promise<void> {
  const each = (f: (p: SourceBed['proxies'][number]) => unknown) => Promise.all(bed.proxies.map(f));
  switch (fault) {
    case 'stopped':
      await each((p) => p.stop());
      await sleep(o.faultMs);
      await each((p) => p.start());
      return;
    case 'restarted':
      await bed.restart?.();
      await each((p) => p.stop());
      await sleep(o.restartGapMs);
      await each((p) => p.start());
      return;
    case 'slow':
      await each((p) => p.delay(o.sourceTimeoutMs + 1000));
      await sleep(o.faultMs);
      await each((p) => p.delay(0));
      return;
    case 'blackholed':
      await each((p) => p.blackhole());
      await sleep(o.faultMs);
      await each((p) => p.heal());
      return;
    case 'credentials':
      await bed.breakCredentials!();
      await sleep(o.faultMs);
      await bed.restoreCredentials!();
      return;
    case 'recreated':
      await bed.deleteSources!();
      await sleep(o.faultMs);
      await bed.recreateSources!();
      await bed.ready();
      return;
  }
}

/**
 * Waits until every call of `kind` sent during the last stableMs answered right, and returns the
 * seconds from `endMs` to the send time of the last call that did not (0 if none after the end);
 * undefined when that does not happen within maxRecoveryMs.
 */
async function recovered(
  calls: readonly CallRecord[],
  kind: BedKind,
  endMs: number,
  o: HarnessOptions,
): Promise<number | undefined> {
  const lastBad = () => {
    let last = -Infinity;
    for (const c of calls) if (c.kind === kind && c.outcome !== 'correct' && c.sentMs > last) last = c.sentMs;
    return last;
  };
  for (;;) {
    await sleep(500);
    const now = Date.now();
    const bad = lastBad();
    // Calls are judged when they complete: wait out the deadline of the calls sent last.
    if (now - Math.max(bad, endMs) >= o.stableMs + callsDoneMs(o)) return Math.max(0, bad - endMs) / 1000;
    if (now - endMs > o.maxRecoveryMs + o.stableMs + callsDoneMs(o)) return undefined;
  }
}

/** Waits until every kind's calls answer right for 3 s running, and samples the process then. */
/**
 * How long after it was sent a call has surely been answered: the scaler gives up on a source after
 * SOURCE_TIMEOUT_MS, the client after KEDA's 3 s, with a second for the pair's second call's start.
 */
function callsDoneMs(o: Pick<HarnessOptions, 'sourceTimeoutMs'>): number {
  return Math.min(KEDA_DEADLINE_MS, o.sourceTimeoutMs + 1000);
}

async function settle(
  load: KedaLoad,
  scaler: ScalerChild,
  kinds: readonly BedKind[],
  options: HarnessOptions,
): Promise<Resources> {
  const { pollMs, log } = options;
  const deadline = Date.now() + 90_000;
  for (;;) {
    load.reset();
    await sleep(3000);
    const outcomes = tally(load.calls);
    const seen = new Set(load.calls.map((c) => c.kind));
    if (outcomes.correct === outcomes.calls && kinds.every((k) => seen.has(k))) break;
    if (Date.now() > deadline) {
      throw new Error(
        `the scaler did not answer every trigger right within 90 s: ${JSON.stringify(outcomes)}\n${scaler.tail.slice(-20).join('\n')}`,
      );
    }
    log(`  warming up: ${outcomes.correct}/${outcomes.calls} right ${JSON.stringify(outcomes.errors)}`);
    for (const [key, details] of load.errorSamples) log(`    ${key}: ${details}`);
  }
  load.stop();
  await sleep(callsDoneMs(options));
  const resources = await scaler.settledResources(3, 200);
  load.start(pollMs);
  load.reset();
  return resources;
}
