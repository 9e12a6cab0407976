// Load benchmark of the scaler server (`npm run bench:server -- --help`). Starts the scaler
// (node src/main.ts) and a bare constant-answering grpc-js server (the floor) as processes,
// declares real RabbitMQ queues, and drives KEDA's call pattern from a separate load-generator
// process: a fixed-rate run, a search for the highest rate taken, wake latency on open streams,
// and resident memory with many triggers. See docs/performance.md.
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type LoadGenerator,
  type ScalerOptions,
  type ScalerProcess,
  buildScaler,
  selectLoadGenerator,
  startFloorProcess,
  startScalerProcess,
} from './children.ts';
import { USAGE, type BenchFlags, parseFlags } from './flags.ts';
import type { RunResult } from './loadgenProtocol.ts';
import { bucketsDiff, cpuCores, histogramBuckets, histogramQuantile, sampleProcess, sumMetric } from './procStats.ts';
import { BenchBroker, rabbitmqUrl } from './rabbit.ts';
import { type Measured, type SearchStep, fixedRateTable, median, searchTable, wakeLine } from './report.ts';
import { rateSteps } from './stats.ts';
import type { TriggerSpec } from './triggers.ts';
import { soak, soakTable } from './soak.ts';
import { measureWake } from './wake.ts';
import { parse as parseYaml } from 'yaml';

const QUERIES = 'keda_inference_scaler_source_queries_total';
const CACHED_SOURCES = 'keda_inference_scaler_cached_sources';
const REQUEST_SECONDS = 'keda_inference_scaler_grpc_request_duration_seconds';
/** The Helm chart's V8 heap cap (values.yaml nodeHeapMb), for the memory phase "as the chart runs it". */
const CHART_OLD_SPACE_MB = Number(
  (
    parseYaml(readFileSync(new URL('../../deploy/helm/keda-inference-scaler/values.yaml', import.meta.url), 'utf8')) as {
      nodeHeapMb: number;
    }
  ).nodeHeapMb,
);
/** How often the memory phase scrapes /metrics, throughout, as Prometheus would (it usually waits 15-30 s). */
const SCRAPE_EVERY_S = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

interface Target {
  readonly pid: number;
  readonly address: string;
  readonly scaler?: ScalerProcess;
}

async function measure(
  loadgen: LoadGenerator,
  target: Target,
  spec: TriggerSpec,
  rate: number,
  durationMs: number,
  ttlMs: number,
): Promise<Measured> {
  const scrapeBefore = target.scaler ? await target.scaler.scrape() : '';
  const before = sampleProcess(target.pid);
  const run = await loadgen.send<RunResult>({ cmd: 'run', spec, rate, durationMs });
  const after = sampleProcess(target.pid);
  if (target.scaler === undefined) return { run, cpuCores: cpuCores(before, after), rssMb: after.rssMb };
  const scrapeAfter = await target.scaler.scrape();
  const queries = sumMetric(scrapeAfter, QUERIES) - sumMetric(scrapeBefore, QUERIES);
  // The scaler's own view (handler start to answer), without the machine's queueing around it.
  const handled = bucketsDiff(histogramBuckets(scrapeBefore, REQUEST_SECONDS), histogramBuckets(scrapeAfter, REQUEST_SECONDS));
  const seconds = (after.atMs - before.atMs) / 1000;
  return {
    run,
    cpuCores: cpuCores(before, after),
    rssMb: after.rssMb,
    brokerQueriesPerSecond: queries / seconds,
    brokerQueriesPerInterval: queries / (seconds * (ttlMs / 1000)),
    distinctSources: sumMetric(scrapeAfter, CACHED_SOURCES),
    handlerP50Ms: histogramQuantile(handled, 0.5) * 1000,
    handlerP99Ms: histogramQuantile(handled, 0.99) * 1000,
  };
}

/** Connects the load generator to `target` and opens the streams; returns a closer. */
async function withStreams<T>(
  loadgen: LoadGenerator,
  target: Target,
  flags: BenchFlags,
  spec: TriggerSpec,
  body: () => Promise<T>,
): Promise<T> {
  await loadgen.send({ cmd: 'connect', target: target.address, connections: flags.connections });
  if (flags.streams > 0) {
    const s = await loadgen.send<{ opened: number; answered: number; ms: number }>({
      cmd: 'streams',
      spec,
      count: flags.streams,
    });
    if (s.answered < s.opened) log(`only ${s.answered} of ${s.opened} streams answered`);
    await sleep(Math.max(1000, flags.streamIntervalMs)); // let the streams' first ticks spread out
  }
  try {
    return await body();
  } finally {
    await loadgen.send({ cmd: 'closeStreams' });
  }
}

async function search(loadgen: LoadGenerator, target: Target, flags: BenchFlags, spec: TriggerSpec): Promise<SearchStep[]> {
  const steps: SearchStep[] = [];
  for (const rate of rateSteps(flags.rate, 1.5, flags.maxRate)) {
    const m = await measure(loadgen, target, spec, rate, flags.stepSeconds * 1000, flags.cacheTtlMs);
    const passed =
      m.run.errors === 0 && m.run.streamErrors === 0 && m.run.latency.p99Ms < flags.maxP99Ms && m.run.achievedRps >= 0.95 * rate;
    steps.push({
      offeredRps: rate,
      achievedRps: m.run.achievedRps,
      p50Ms: m.run.latency.p50Ms,
      p99Ms: m.run.latency.p99Ms,
      errors: m.run.errors,
      cpuCores: m.cpuCores,
      passed,
    });
    log(
      `  ${rate} req/s: achieved ${m.run.achievedRps.toFixed(0)}, p99 ${m.run.latency.p99Ms.toFixed(2)} ms, errors ${m.run.errors}`,
    );
    if (!passed) break;
    await sleep(1000);
  }
  return steps;
}

function machine(): Record<string, string | number> {
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    loadavg: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
  };
}

/** Children started so far, killed on abort or on a signal so none outlives the benchmark. */
const live: { readonly pid: number; stop(): Promise<void> }[] = [];

function abort(reason: string): never {
  process.stderr.write(`bench:server aborted: ${reason}\n`);
  for (const child of live) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  process.exit(1);
}

process.on('SIGINT', () => abort('interrupted'));
process.on('SIGTERM', () => abort('terminated'));

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) {
    process.stdout.write(USAGE);
    return;
  }
  const info = machine();
  log(`machine: ${JSON.stringify(info)}`);
  const loadGenerator = selectLoadGenerator();
  const url = rabbitmqUrl();
  const broker = await BenchBroker.connect(url, (reason) =>
    abort(`RabbitMQ connection lost (${reason}); did the broker restart?`),
  );
  const runId = randomBytes(3).toString('hex');
  const spec: TriggerSpec = {
    rabbitmqUrl: url,
    queuePrefix: `bench-${runId}-q`,
    namePrefix: `bench-${runId}-so-`,
    triggers: flags.triggers,
    queues: flags.queues,
  };
  const children = live;
  const compiledDir = join(tmpdir(), `bench-server-${runId}`);
  try {
    log(`declaring ${flags.queues} queues (bench-${runId}-q*)`);
    for (let i = 0; i < flags.queues; i++) await broker.declare(`${spec.queuePrefix}${i}`, i % 4);

    const scalerOptions: ScalerOptions = {
      cacheTtlMs: flags.cacheTtlMs,
      streamIntervalMs: flags.streamIntervalMs,
      nodeArgs: flags.nodeArgs,
      ...(flags.scalerDir !== undefined ? { scalerDir: flags.scalerDir } : {}),
      ...(flags.stateStore !== undefined ? { stateStore: flags.stateStore } : {}),
      ...(flags.compiled ? { compiledDir: buildScaler(compiledDir, flags.scalerDir) } : {}),
    };
    /**
     * A fresh scaler: idle RSS, then RSS with flags.memoryTriggers triggers registered and
     * evaluated, then under KEDA's pattern over all of them. `limited`: as in the Helm chart's
     * container (Node sizes the heap from its memory limit).
     */
    const memoryPhase = async (loadgen: LoadGenerator, limited: boolean) => {
      const nodeArgs = limited ? [...flags.nodeArgs, `--max-old-space-size=${CHART_OLD_SPACE_MB}`] : flags.nodeArgs;
      const nodeArgsText = nodeArgs.length ? nodeArgs.join(' ') : 'none';
      log(
        `memory: a fresh scaler with ${flags.memoryTriggers} triggers over ${flags.queues} queues (node args: ${nodeArgsText})`,
      );
      const fresh = await startScalerProcess({ ...scalerOptions, nodeArgs });
      children.push(fresh);
      // Idle: started, nothing asked yet (sampled after 3 s, when start-up garbage is collected).
      await sleep(3000);
      const idleRssMb = sampleProcess(fresh.pid).rssMb;
      log(`  idle RSS ${idleRssMb.toFixed(1)} MB`);
      await loadgen.send({ cmd: 'connect', target: `127.0.0.1:${fresh.grpcPort}`, connections: flags.connections });
      // Names of the phase's own: with a state store, the second phase's triggers under the first's
      // names found the first's 10,000 records there, a restart rather than a fresh scaler (207 /
      // 215 MB against 184 / 187 on a key space of its own, 2026-12-07; docs/performance.md).
      const memSpec: TriggerSpec = {
        ...spec,
        namePrefix: `bench-${runId}-mem${limited ? '-chart' : ''}-`,
        triggers: flags.memoryTriggers,
      };
      const r = await loadgen.send<{ triggers: number; errors: number; ms: number }>({
        cmd: 'register',
        spec: memSpec,
        concurrency: 32,
      });
      // Prometheus scrapes throughout, every SCRAPE_EVERY_S (faster than the usual 15-30 s):
      // rendering every trigger's series takes memory of its own, and counts in every figure.
      const scrapes: number[] = [];
      const scrapeOnSchedule = async (second: number) => {
        if (second % SCRAPE_EVERY_S !== 0) return;
        const start = performance.now();
        await fresh.scrape();
        scrapes.push(performance.now() - start);
      };
      // V8 shrinks its heap only some seconds after allocation stops (its memory reducer): sample
      // RSS each second for 15 s and report the last sample (settled) and the peak.
      let peakRssMb = 0;
      let rssMb = 0;
      for (let second = 1; second <= 15; second++) {
        await sleep(1000);
        await scrapeOnSchedule(second);
        rssMb = sampleProcess(fresh.pid).rssMb;
        peakRssMb = Math.max(peakRssMb, rssMb);
        log(`  RSS ${rssMb.toFixed(1)} MB`);
      }
      // Then KEDA's pattern over all of them (GetMetrics + IsActive per trigger, at --rate), the
      // steady state of a cluster with that many ScaledObjects: RSS sampled each second.
      log(`  under ${flags.rate} req/s over the ${flags.memoryTriggers} triggers for ${flags.durationSeconds} s`);
      const running = loadgen.send<RunResult>({
        cmd: 'run',
        spec: memSpec,
        rate: flags.rate,
        durationMs: flags.durationSeconds * 1000,
      });
      let loadedPeakRssMb = 0;
      let done = false;
      void running.finally(() => (done = true));
      for (let second = 1; !done; second++) {
        await sleep(1000);
        await scrapeOnSchedule(second);
        loadedPeakRssMb = Math.max(loadedPeakRssMb, sampleProcess(fresh.pid).rssMb);
      }
      const loaded = await running;
      const codes = Object.keys(loaded.errorCodes).length ? ` ${JSON.stringify(loaded.errorCodes)}` : '';
      log(`  under load: peak RSS ${loadedPeakRssMb.toFixed(1)} MB, ${loaded.errors} errors${codes}`);
      log(`  /metrics scrapes took ${scrapes.map((ms) => ms.toFixed(0)).join(', ')} ms`);
      // One more scrape once the load has stopped: what a scrape alone costs on top.
      const text = await fresh.scrape();
      const scrapedRssMb = sampleProcess(fresh.pid).rssMb;
      const heapUsedMb = sumMetric(text, 'keda_inference_scaler_nodejs_heap_size_used_bytes') / 2 ** 20;
      const heapTotalMb = sumMetric(text, 'keda_inference_scaler_nodejs_heap_size_total_bytes') / 2 ** 20;
      const series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
      if (r.errors > 0) log(`memory phase: ${r.errors} errors while registering`);
      await fresh.stop();
      const errors = r.errors + loaded.errors;
      return {
        limited,
        nodeArgsText,
        triggers: flags.memoryTriggers,
        idleRssMb,
        rssMb,
        peakRssMb,
        loadedPeakRssMb,
        scrapedRssMb,
        scrapeMsMax: Math.max(...scrapes),
        heapUsedMb,
        heapTotalMb,
        series,
        registerMs: r.ms,
        errors,
      };
    };
    type Memory = Awaited<ReturnType<typeof memoryPhase>>;
    const memoryPhases = async (loadgen: LoadGenerator) => [await memoryPhase(loadgen, false), await memoryPhase(loadgen, true)];
    const memoryLine = (m: Memory) =>
      `memory, ${m.limited ? `as the chart runs it (256Mi limit, --max-old-space-size=${CHART_OLD_SPACE_MB})` : 'no heap cap'} (${flags.compiled ? 'compiled dist/main.js' : 'src/main.ts'}, node args: ${m.nodeArgsText}): idle ${m.idleRssMb.toFixed(1)} MB resident; ${m.rssMb.toFixed(1)} MB resident (peak ${m.peakRssMb.toFixed(1)} MB) with ${m.triggers} triggers over ${flags.queues} queues registered and evaluated, peak ${m.loadedPeakRssMb.toFixed(1)} MB under ${flags.rate} req/s over them, ${m.scrapedRssMb.toFixed(1)} MB right after one more /metrics scrape (a scrape every ${SCRAPE_EVERY_S} s throughout, the longest ${m.scrapeMsMax.toFixed(0)} ms; heap ${m.heapUsedMb.toFixed(0)} MB used of ${m.heapTotalMb.toFixed(0)} MB; ${m.series} metric series; registered in ${(m.registerMs / 1000).toFixed(1)} s${m.errors > 0 ? `; ${m.errors} errors` : ''})\n`;
    const memoryCheck = (m: Memory) =>
      [
        `RSS < 200 MB at T = ${m.triggers}, ${m.limited ? 'as the chart runs it' : 'no heap cap'}: ${m.rssMb.toFixed(0)} MB settled, ${m.loadedPeakRssMb.toFixed(0)} MB peak under load and scrapes, ${m.scrapedRssMb.toFixed(0)} MB after a scrape`,
        Math.max(m.rssMb, m.loadedPeakRssMb, m.scrapedRssMb) < 200 && m.errors === 0,
      ] as const;
    const targetLines = (checks: readonly (readonly [string, boolean])[]) =>
      `\ntargets:\n${checks.map(([text, ok]) => `  ${ok ? 'PASS' : 'MISS'}  ${text}`).join('\n')}\n`;
    if (flags.memoryOnly) {
      const loadgen = loadGenerator.start();
      children.push(loadgen);
      const memory = await memoryPhases(loadgen);
      process.stdout.write(
        `\nkeda-inference-scaler server benchmark, memory phase  (${JSON.stringify(info)})\n${memory.map(memoryLine).join('')}`,
      );
      process.stdout.write(targetLines(memory.map(memoryCheck)));
      return;
    }
    const scaler = await startScalerProcess({ ...scalerOptions, profileDir: flags.profileDir });
    children.push(scaler);
    if (flags.soakSeconds > 0) {
      const loadgen = loadGenerator.start();
      children.push(loadgen);
      const target: Target = { pid: scaler.pid, address: `127.0.0.1:${scaler.grpcPort}`, scaler };
      await loadgen.send({ cmd: 'connect', target: target.address, connections: flags.connections });
      const reg = await loadgen.send<{ triggers: number; errors: number; ms: number }>({
        cmd: 'register',
        spec,
        concurrency: 32,
      });
      if (reg.errors > 0) throw new Error('registering triggers failed: is RabbitMQ up? (scripts/services.sh status)');
      log(
        `soak: ${flags.soakSeconds} s at ${flags.rate} req/s over ${flags.triggers} triggers, ${flags.streams} streams, rows of ${flags.soakWindowSeconds} s`,
      );
      const windows = await withStreams(loadgen, target, flags, spec, () =>
        soak({
          loadgen,
          scaler,
          spec,
          rate: flags.rate,
          seconds: flags.soakSeconds,
          windowSeconds: flags.soakWindowSeconds,
          log,
        }),
      );
      process.stdout.write(
        `\nkeda-inference-scaler soak  (${JSON.stringify(info)})\n${flags.soakSeconds} s at ${flags.rate} req/s, T=${flags.triggers} triggers over Q=${flags.queues} queues, S=${flags.streams} streams, a /metrics scrape every 15 s, load generator grpc-go\n\n${soakTable(windows)}`,
      );
      if (flags.json !== undefined) writeFileSync(flags.json, `${JSON.stringify({ windows, flags, machine: info }, null, 2)}\n`);
      return;
    }
    const floorProcess = await startFloorProcess(flags.nodeArgs, flags.profileDir);
    children.push(floorProcess);
    const loadgen = loadGenerator.start();
    children.push(loadgen);
    const scalerTarget: Target = { pid: scaler.pid, address: `127.0.0.1:${scaler.grpcPort}`, scaler };
    const floorTarget: Target = { pid: floorProcess.pid, address: `127.0.0.1:${floorProcess.grpcPort}` };

    await loadgen.send({ cmd: 'connect', target: scalerTarget.address, connections: flags.connections });
    const reg = await loadgen.send<{ triggers: number; errors: number; ms: number }>({ cmd: 'register', spec, concurrency: 32 });
    log(`registered ${reg.triggers} triggers in ${reg.ms.toFixed(0)} ms (${reg.errors} errors)`);
    if (reg.errors > 0) throw new Error('registering triggers failed: is RabbitMQ up? (scripts/services.sh status)');

    // Warm-up, unmeasured and alike for both: a run of each as the measured runs go (streams
    // opened, /metrics scraped, load, scraped, streams closed), so that run 1 measures a process
    // that has run a while. The first /metrics requests under load make V8 deoptimize Node's
    // stream code, optimized until then for grpc-js's streams, and 2.5-5 s of long scavenges
    // follow (docs/performance.md, round 5): a start-up cost, paid once.
    if (flags.warmupSeconds > 0) {
      for (const [name, target] of [
        ['scaler', scalerTarget],
        ['floor', floorTarget],
      ] as const) {
        log(`warm-up: ${name}, ${flags.warmupSeconds} s at ${flags.rate} req/s, unmeasured`);
        await withStreams(loadgen, target, flags, spec, () =>
          measure(loadgen, target, spec, flags.rate, flags.warmupSeconds * 1000, flags.cacheTtlMs),
        );
      }
    }

    const durationMs = flags.durationSeconds * 1000;
    const pairs: { scaler: Measured; floor: Measured }[] = [];
    for (let r = 0; r < flags.repeats; r++) {
      log(
        `fixed rate ${flags.rate} req/s for ${flags.durationSeconds} s, ${flags.streams} streams: scaler (run ${r + 1}/${flags.repeats})`,
      );
      const s = await withStreams(loadgen, scalerTarget, flags, spec, () =>
        measure(loadgen, scalerTarget, spec, flags.rate, durationMs, flags.cacheTtlMs),
      );
      log(`fixed rate: floor`);
      const f = await withStreams(loadgen, floorTarget, flags, spec, () =>
        measure(loadgen, floorTarget, spec, flags.rate, durationMs, flags.cacheTtlMs),
      );
      pairs.push({ scaler: s, floor: f });
    }

    let scalerSteps: SearchStep[] = [];
    let floorSteps: SearchStep[] = [];
    if (flags.stepSeconds > 0) {
      log('highest rate: scaler');
      scalerSteps = await withStreams(loadgen, scalerTarget, flags, spec, () => search(loadgen, scalerTarget, flags, spec));
      log('highest rate: floor');
      floorSteps = await withStreams(loadgen, floorTarget, flags, spec, () => search(loadgen, floorTarget, flags, spec));
    }

    let wake;
    if (flags.wakeTries > 0) {
      const parallel = 5;
      const loadMs = Math.ceil(flags.wakeTries / parallel) * (flags.streamIntervalMs * 1.5 + 500) + 3000;
      log(
        `wake latency: ${flags.wakeTries} tries, ${parallel} at a time, under ${flags.rate} req/s and ${flags.streams} streams`,
      );
      wake = await withStreams(loadgen, scalerTarget, flags, spec, async () => {
        const background = loadgen.send<RunResult>({ cmd: 'run', spec, rate: flags.rate, durationMs: loadMs });
        const result = await measureWake({
          target: scalerTarget.address,
          broker,
          rabbitmqUrl: url,
          runId,
          tries: flags.wakeTries,
          parallel,
          streamIntervalMs: flags.streamIntervalMs,
          log,
        });
        await background;
        return result;
      });
    }
    await loadgen.send({ cmd: 'connect', target: scalerTarget.address, connections: flags.connections });
    await scaler.stop();
    if (flags.profileDir !== undefined) log(`scaler CPU profile written to ${flags.profileDir}`);

    const memory = flags.memoryTriggers > 0 ? await memoryPhases(loadgen) : [];

    process.stdout.write(`\nkeda-inference-scaler server benchmark  (${JSON.stringify(info)})\n`);
    process.stdout.write(
      `scaler: ${flags.compiled ? `${flags.scalerDir ?? '.'} compiled (dist/main.js)` : `${flags.scalerDir ?? '.'}/src/main.ts`}${flags.nodeArgs.length ? ` with ${flags.nodeArgs.join(' ')}` : ''}; T=${flags.triggers} triggers over Q=${flags.queues} queues, S=${flags.streams} streams, CACHE_TTL_MS=${flags.cacheTtlMs}, STREAM_INTERVAL_MS=${flags.streamIntervalMs}, state store ${flags.stateStore === undefined ? 'in memory' : 'shared (STATE_STORE_URL)'}, ${flags.connections} connection(s), load generator grpc-go\n\n`,
    );
    process.stdout.write(
      `fixed rate ${flags.rate} req/s for ${flags.durationSeconds} s (latency from the intended send time):\n${fixedRateTable(pairs)}\n\n`,
    );
    if (scalerSteps.length)
      process.stdout.write(
        `${searchTable('highest rate, scaler', scalerSteps)}\n${searchTable('highest rate, floor', floorSteps)}\n\n`,
      );
    if (wake) process.stdout.write(`${wakeLine(wake)}\n`);
    process.stdout.write(memory.map(memoryLine).join(''));

    const med = (pick: (p: { scaler: Measured; floor: Measured }) => number) => median(pairs.map(pick));
    const summary = {
      rps: med((p) => p.scaler.run.achievedRps),
      p50Ms: med((p) => p.scaler.run.latency.p50Ms),
      p99Ms: med((p) => p.scaler.run.latency.p99Ms),
      p999Ms: med((p) => p.scaler.run.latency.p999Ms),
      errors: pairs.reduce((n, p) => n + p.scaler.run.errors + p.scaler.run.streamErrors, 0),
      brokerQueriesPerInterval: med((p) => p.scaler.brokerQueriesPerInterval ?? Number.NaN),
      distinctSources: med((p) => p.scaler.distinctSources ?? Number.NaN),
      rssMb: med((p) => p.scaler.rssMb),
      cpuCores: med((p) => p.scaler.cpuCores),
      handlerP50Ms: med((p) => p.scaler.handlerP50Ms ?? Number.NaN),
      handlerP99Ms: med((p) => p.scaler.handlerP99Ms ?? Number.NaN),
      sendLagP99Ms: med((p) => p.scaler.run.sendLag.p99Ms),
      floorSendLagP99Ms: med((p) => p.floor.run.sendLag.p99Ms),
      floorP50Ms: med((p) => p.floor.run.latency.p50Ms),
      floorP99Ms: med((p) => p.floor.run.latency.p99Ms),
      wakeP50Ms: wake?.latency.p50Ms ?? null,
      wakeP99Ms: wake?.latency.p99Ms ?? null,
      memoryTriggers: memory[0]?.triggers ?? null,
      memoryRssMb: memory[0]?.rssMb ?? null,
      memoryLoadedPeakRssMb: memory[0]?.loadedPeakRssMb ?? null,
      memoryChartLimitRssMb: memory[1]?.rssMb ?? null,
      memoryChartLimitLoadedPeakRssMb: memory[1]?.loadedPeakRssMb ?? null,
      memoryScrapedRssMb: memory[0]?.scrapedRssMb ?? null,
      memoryChartLimitScrapedRssMb: memory[1]?.scrapedRssMb ?? null,
      maxRps: scalerSteps.filter((s) => s.passed).pop()?.achievedRps ?? null,
      floorMaxRps: floorSteps.filter((s) => s.passed).pop()?.achievedRps ?? null,
      flags: { ...flags, json: undefined, help: undefined },
      machine: info,
    };
    const checks = [
      [`p99 ${summary.p99Ms.toFixed(2)} ms < 5 ms at ${flags.rate} req/s`, summary.p99Ms < 5],
      [`no errors (${summary.errors})`, summary.errors === 0],
      [
        `p50 ${summary.p50Ms.toFixed(3)} ms within 1.5x of floor ${summary.floorP50Ms.toFixed(3)} ms`,
        summary.p50Ms <= 1.5 * summary.floorP50Ms,
      ],
      [
        `broker queries per interval ${summary.brokerQueriesPerInterval.toFixed(1)} ~ Q = ${flags.queues}`,
        Math.abs(summary.brokerQueriesPerInterval - flags.queues) <= 0.05 * flags.queues,
      ],
      ...memory.map(memoryCheck),
      ...(wake
        ? [[`wake p99 ${wake.latency.p99Ms.toFixed(0)} ms < 2000 ms`, wake.latency.p99Ms < 2000 && wake.failures === 0] as const]
        : []),
    ] as const;
    process.stdout.write(targetLines(checks));
    if (flags.json !== undefined) {
      writeFileSync(flags.json, `${JSON.stringify(summary, null, 2)}\n`);
      log(`wrote ${flags.json}`);
    }
  } finally {
    for (const child of children.reverse()) await child.stop();
    await broker.close();
    if (flags.compiled) rmSync(compiledDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:server failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
