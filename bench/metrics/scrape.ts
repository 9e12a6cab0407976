// What one /metrics scrape costs at T triggers: milliseconds per scrape, the longest the event
// loop waits meanwhile, and the RSS it takes. Runs ScalerMetrics.exposition() on synthetic
// evaluations (every family filled, as a busy GPU trigger fills them), and for comparison
// prom-client's own renderer over the same series (a Gauge per family, one labelled set() per
// series), which is how the per-trigger families were rendered before.
//
//   npm run bench:metrics -- [--triggers 10000] [--scrapes 10]
// (node --expose-gc and the shipped young-generation flags, so the GC behaves as in the server)
import { parseArgs } from 'node:util';
import { Gauge, Registry } from 'prom-client';
import type { Decision } from '../../src/model/types.ts';
import { ScalerMetrics, type TriggerEvaluation } from '../../src/telemetry/metrics.ts';
import type { Trigger } from '../../src/trigger/types.ts';
import { LoopStall } from '../server/loopStall.ts';

const { values: flags } = parseArgs({
  options: { triggers: { type: 'string', default: '10000' }, scrapes: { type: 'string', default: '10' } },
});
const triggers = Number(flags.triggers);
const scrapes = Number(flags.scrapes);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

function evaluations(n: number): TriggerEvaluation[] {
  const out: TriggerEvaluation[] = [];
  for (let i = 0; i < n; i++) {
    const hash = ((i * 2654435761) >>> 0).toString(16).padStart(16, '0');
    const trigger = { id: `ns-${i % 50}/so-${i}/${hash}`, namespace: `ns-${i % 50}`, name: `so-${i}` } as Trigger;
    const decision = {
      desiredReplicas: 1 + (i % 7),
      active: i % 3 !== 0,
      explanation: {
        signals: { backlog: i % 100, busyGpus: (i % 9) / 4, arrivalRatePerSecond: (i % 13) / 7 },
        demands: { backlog: i % 5, gpu: i % 3, hold: 1, minReplicas: 0 },
        winner: 'backlog',
        details: { coldStartSeconds: 30 + (i % 60) },
      },
    } as unknown as Decision;
    out.push({ trigger, decision });
  }
  return out;
}

/** The same series through prom-client's renderer: one Gauge per family, labels as objects. */
function promClientRegistry(evals: readonly TriggerEvaluation[]): Registry {
  const registry = new Registry();
  const gauge = (name: string, extra: string[] = []) =>
    new Gauge({
      name: `keda_inference_scaler_${name}`,
      help: name,
      labelNames: ['namespace', 'scaled_object', 'trigger', ...extra],
      registers: [registry],
    });
  const backlog = gauge('trigger_backlog');
  const desired = gauge('trigger_desired_replicas');
  const active = gauge('trigger_active');
  const demand = gauge('trigger_demand_replicas', ['term']);
  const winner = gauge('trigger_winning_term', ['term']);
  const busy = gauge('trigger_busy_gpus');
  const arrival = gauge('trigger_arrival_rate_per_second');
  const coldStart = gauge('trigger_cold_start_seconds');
  for (const { trigger, decision } of evals) {
    const labels = {
      namespace: trigger.namespace,
      scaled_object: trigger.name,
      trigger: trigger.id.slice(trigger.id.lastIndexOf('/') + 1),
    };
    const { signals, demands } = decision.explanation;
    backlog.set(labels, signals.backlog);
    desired.set(labels, decision.desiredReplicas);
    active.set(labels, decision.active ? 1 : 0);
    for (const [term, value] of Object.entries(demands)) demand.set({ ...labels, term }, value);
    winner.set({ ...labels, term: decision.explanation.winner }, 1);
    busy.set(labels, signals.busyGpus ?? 0);
    arrival.set(labels, signals.arrivalRatePerSecond ?? 0);
    coldStart.set(labels, Number(decision.explanation.details.coldStartSeconds));
  }
  return registry;
}

interface Figures {
  bytes: number;
  series: number;
  msMean: number;
  /** The longest the event loop waited for a turn while scrapes ran (a 1 ms ticker's worst gap). */
  blockedMsMax: number;
  /** RSS above the level before the scrapes, at its highest after a scrape. */
  rssPeakMb: number;
}

/** `scrape` renders the text once and returns its length; `text` gives it whole, to count series. */
async function measure(scrape: () => Promise<number>, text: () => Promise<string>): Promise<Figures> {
  const series = (await text()).split('\n').filter((line) => line !== '' && !line.startsWith('#')).length;
  gc!();
  const rssBefore = process.memoryUsage.rss();
  let rssPeak = rssBefore;
  const stall = new LoopStall();
  await new Promise((resolve) => setTimeout(resolve, 20));
  stall.reset();
  let total = 0;
  let bytes = 0;
  for (let k = 0; k < scrapes; k++) {
    const start = performance.now();
    bytes = await scrape();
    total += performance.now() - start;
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const blocked = stall.stop();
  return { bytes, series, msMean: total / scrapes, blockedMsMax: blocked, rssPeakMb: (rssPeak - rssBefore) / 1e6 };
}

const evals = evaluations(triggers);
const rows: [string, Figures][] = [];
// The old way first in its own heap state would favour the second; each runs after a full GC.
const scaler = new ScalerMetrics(undefined, { defaultMetrics: false });
scaler.observeTriggers(() => evals);
// As the HTTP server streams it: each chunk is handed on and dropped (the socket's part is not measured).
const streamed = async () => {
  let length = 0;
  for await (const chunk of scaler.exposition()) length += chunk.length;
  return length;
};
rows.push(['ScalerMetrics.exposition', await measure(streamed, () => scaler.render())]);
const old = promClientRegistry(evals);
rows.push([
  "prom-client's renderer",
  await measure(
    async () => (await old.metrics()).length,
    () => old.metrics(),
  ),
]);

console.log(`scrape of ${triggers} triggers, ${scrapes} scrapes, node ${process.version}`);
console.log('renderer                   series   MB text   ms per scrape   event loop held, ms max   RSS peak +MB');
for (const [name, f] of rows) {
  console.log(
    `${name.padEnd(26)} ${String(f.series).padStart(7)} ${(f.bytes / 1e6).toFixed(1).padStart(9)} ${f.msMean.toFixed(1).padStart(15)} ${f.blockedMsMax
      .toFixed(1)
      .padStart(25)} ${f.rssPeakMb.toFixed(0).padStart(14)}`,
  );
}
