// What the engine keeps per decision: at T triggers over Q queues, every trigger is evaluated once
// per reading (the clock moves past the cache interval between rounds, as at 2,000 req/s over
// 10,000 triggers, where each call finds a new reading). Prints the bytes one decision allocates
// and the bytes it leaves alive until the trigger's next reading: what V8 promotes into the old
// generation, to die there. Queues are fake (no I/O) so only the engine and the model count.
//
//   npm run bench:engine -- [--triggers 10000] [--queues 100] [--rounds 30]
// (node --expose-gc with semi-spaces large enough that a round allocates without a scavenge)
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { Engine, PARSE_MEMO_LIMITS } from '../../src/engine.ts';
import { RefMemo } from '../../src/trigger/memo.ts';
import { parseTrigger } from '../../src/trigger/schema.ts';
import type { Trigger, TriggerRef } from '../../src/trigger/types.ts';
import { SourceRegistry } from '../../src/sources/index.ts';
import type { Source, SourceDriver } from '../../src/sources/source.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';

const { values: flags } = parseArgs({
  options: {
    triggers: { type: 'string', default: '10000' },
    queues: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '30' },
  },
});
const triggers = Number(flags.triggers);
const queues = Number(flags.queues);
const rounds = Number(flags.rounds);
const gc = (globalThis as { gc?: (options?: { type: 'minor' | 'major'; execution: 'sync' }) => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

const CACHE_TTL_MS = 1000;

/** How a queue's backlog moves from one reading to the next. */
const SCENARIOS = {
  'idle (backlog 0)': () => 0,
  'steady (0-3 waiting, as bench:server)': (queue: number) => queue % 4,
  'changing (a new backlog every reading)': (queue: number, round: number) => (queue * 7 + round * 3) % 50,
} satisfies Record<string, (queue: number, round: number) => number>;

async function measure(backlogOf: (queue: number, round: number) => number) {
  let round = 0;
  const clock = { ms: 1_800_000_000_000 };
  const driver: SourceDriver = {
    kind: 'rabbitmq',
    identity: (c) => `fake:${(c as { queueName: string }).queueName}`,
    create: (c): Source => {
      const queue = Number((c as { queueName: string }).queueName.slice(1));
      return {
        identity: `fake:q${queue}`,
        label: `fake q${queue}`,
        kind: 'rabbitmq',
        read: async () => ({ backlog: backlogOf(queue, round) }),
      };
    },
    closeIdle: async () => {},
    close: async () => {},
  };
  const engine = new Engine({
    registry: new SourceRegistry([driver]),
    cacheTtlMs: CACHE_TTL_MS,
    sourceTimeoutMs: 2000,
    logger: silentLogger(),
    metrics: new ScalerMetrics(new Registry(), { defaultMetrics: false }),
    now: () => clock.ms,
  });
  const refs: TriggerRef[] = Array.from({ length: triggers }, (_, i) => ({
    name: `so-${i}`,
    namespace: `ns-${i % 50}`,
    metadata: {
      'rabbitmq.host': 'amqp://broker',
      'rabbitmq.queueName': `q${i % queues}`,
      messagesPerReplica: '5',
      coldStartSeconds: '60',
    },
  }));
  const evaluateAll = async () => {
    round++;
    clock.ms += CACHE_TTL_MS + 100;
    for (const ref of refs) await engine.evaluate(engine.trigger(ref));
  };
  for (let r = 0; r < rounds; r++) await evaluateAll();
  gc!({ type: 'major', execution: 'sync' });
  const before = process.memoryUsage().heapUsed;
  await evaluateAll();
  const allocated = process.memoryUsage().heapUsed - before;
  // Two scavenges: what the round allocated and still reaches has been copied twice (promoted);
  // the decisions it replaced are old and stay counted, as they would until a full GC.
  gc!({ type: 'minor', execution: 'sync' });
  gc!({ type: 'minor', execution: 'sync' });
  const survived = process.memoryUsage().heapUsed - before;
  return { allocated: allocated / triggers, survived: survived / triggers };
}

console.log(
  `engine: ${triggers} triggers over ${queues} queues, each evaluated once per reading, after ${rounds} warm-up rounds`,
);
console.log('scenario                                   allocated B/decision   left alive until the next B/decision');
for (const [name, backlogOf] of Object.entries(SCENARIOS)) {
  const { allocated, survived } = await measure(backlogOf);
  console.log(`${name.padEnd(42)} ${allocated.toFixed(0).padStart(20)}   ${survived.toFixed(0).padStart(36)}`);
}

// The parse memo (trigger/memo.ts): what a call costs to turn KEDA's metadata into a Trigger, with
// and without it. A warm call is answered in tens of microseconds, so a parse on every call would
// be most of it.
{
  const refs: TriggerRef[] = Array.from({ length: 1000 }, (_, i) => ({
    name: `so-${i}`,
    namespace: 'bench',
    metadata: {
      'rabbitmq.host': 'amqp://guest:guest@broker:5672/',
      'rabbitmq.queueName': `q${i % 100}`,
      messagesPerReplica: '5',
      scalerAddress: 'scaler:9090',
    },
  }));
  const memo = new RefMemo<Trigger>(PARSE_MEMO_LIMITS);
  for (const ref of refs) memo.set(ref, parseTrigger(ref));
  const calls = 200_000;
  const perCallUs = (fn: (ref: TriggerRef) => unknown) => {
    for (let i = 0; i < 20_000; i++) fn(refs[i % refs.length]!);
    const started = performance.now();
    for (let i = 0; i < calls; i++) fn(refs[i % refs.length]!);
    return ((performance.now() - started) * 1000) / calls;
  };
  const parsed = perCallUs((ref) => parseTrigger(ref));
  const memoized = perCallUs((ref) => memo.get(ref));
  console.log(`\nparse per call: ${parsed.toFixed(2)} us without the memo, ${memoized.toFixed(2)} us with it (a hit)`);
}
