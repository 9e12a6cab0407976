// Command-line flags of the server load benchmark (`npm run bench:server -- --help`).
import { parseArgs } from 'node:util';
import { shippedNodeArgs } from '../../test/support/process.ts';

export interface BenchFlags {
  /** T: triggers (distinct ScaledObjects) driven by the fixed-rate run. */
  readonly triggers: number;
  /** Q: distinct queues the triggers read (T/Q triggers per queue). */
  readonly queues: number;
  /** S: open StreamIsActive streams during the runs. */
  readonly streams: number;
  /** Fixed rate, requests per second (GetMetrics + IsActive pairs count as two). */
  readonly rate: number;
  /** Seconds of each fixed-rate measurement. */
  readonly durationSeconds: number;
  /** Seconds of each step of the highest-rate search; 0 skips the search. */
  readonly stepSeconds: number;
  /** Highest rate the search tries. */
  readonly maxRate: number;
  /** A step passes when its p99 stays below this and nothing fails. */
  readonly maxP99Ms: number;
  /** Wake-latency tries; 0 skips. */
  readonly wakeTries: number;
  /** Triggers of the memory phase; 0 skips. */
  readonly memoryTriggers: number;
  /** Times the fixed-rate pair (scaler, floor) is measured; the JSON holds the median run. */
  readonly repeats: number;
  /** Seconds of an unmeasured fixed-rate run on each process before the measured ones; 0 skips. */
  readonly warmupSeconds: number;
  readonly cacheTtlMs: number;
  readonly streamIntervalMs: number;
  /** gRPC channels the load generator spreads calls over (KEDA uses one per scaler address). */
  readonly connections: number;
  readonly json: string | undefined;
  /** Directory for a --cpu-prof profile of the scaler process during the fixed-rate runs. */
  readonly profileDir: string | undefined;
  /** Node flags of the scaler process: the shipped ones (shippedNodeArgs) unless --node-args is given. */
  readonly nodeArgs: readonly string[];
  /** Run the compiled scaler (tsc to a temporary dist/, as the image ships; the default) rather than src/main.ts (--source). */
  readonly compiled: boolean;
  /** Run only the memory phase (idle RSS, then RSS with --memory-triggers triggers). */
  readonly memoryOnly: boolean;
  /** Another checkout whose src/main.ts to run (compare a change against this one's bench). */
  readonly scalerDir: string | undefined;
  /** STATE_STORE_URL of the scaler: a shared store (Redis/Valkey) instead of the in-memory default. */
  readonly stateStore: string | undefined;
  /** Seconds of the soak (fixed rate, streams open, scrapes); 0: no soak, the usual runs. */
  readonly soakSeconds: number;
  /** Seconds per row of the soak's table. */
  readonly soakWindowSeconds: number;
  readonly help: boolean;
}

export const USAGE = `npm run bench:server -- [flags]
  --triggers N        triggers (ScaledObjects) in the fixed-rate run      (default 1000)
  --queues N          distinct RabbitMQ queues they read                   (default 100)
  --streams N         open StreamIsActive streams                          (default 1000)
  --rate N            fixed rate, requests/s (GetMetrics+IsActive = 2)     (default 2000)
  --duration S        seconds per fixed-rate measurement                   (default 20)
  --repeats N         fixed-rate measurements of scaler and floor          (default 1)
  --warmup S          unmeasured load on each before them, 0 = off         (default 10)
  --step S            seconds per step of the highest-rate search, 0 = off (default 5)
  --max-rate N        highest rate the search tries                        (default 12000)
  --max-p99 MS        p99 a search step may reach and still pass           (default 50)
  --wake-tries N      wake-latency tries, 0 = off                          (default 50)
  --memory-triggers N triggers of the memory phase, 0 = off                (default 10000)
  --cache-ttl MS      scaler CACHE_TTL_MS                                  (default 1000)
  --stream-interval MS scaler STREAM_INTERVAL_MS                           (default 1000)
  --connections N     gRPC channels of the load generator                  (default 1)
  --json FILE         also write the fixed-rate figures as JSON
  --profile DIR       run the scaler under node --cpu-prof, profile into DIR
  --node-args=ARGS    node flags for the scaler instead of the shipped ones (npm start's, the image's
                      NODE_OPTIONS), e.g. --node-args="--max-old-space-size=160"; --node-args= for none
  --memory-only       run only the memory phase (idle RSS, RSS at --memory-triggers)
  --source            run src/main.ts (as npm start does) instead of the scaler compiled by tsc into a
                      temporary dist/ (as the image runs it; the default)
  --scaler-dir DIR    run another checkout (e.g. git archive of an older commit, with its tsconfig files)
  --state-store URL   the scaler's STATE_STORE_URL (redis://...): measure with a shared state store
  --soak S            instead of the runs above: S seconds at --rate over --triggers with --streams open
                      and a scrape every 15 s, RSS, heap, handles, fds and p99 per window, and their
                      slopes (e.g. --soak 3600; not part of the test command)
  --soak-window S     seconds per soak row                                  (default 300)
`;

function int(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || raw.trim() === '')
    throw new Error(`--${name}: got ${JSON.stringify(raw)}; allowed: a number >= ${min}`);
  return value;
}

export function parseFlags(argv: readonly string[]): BenchFlags {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      triggers: { type: 'string' },
      queues: { type: 'string' },
      streams: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      repeats: { type: 'string' },
      warmup: { type: 'string' },
      step: { type: 'string' },
      'max-rate': { type: 'string' },
      'max-p99': { type: 'string' },
      'wake-tries': { type: 'string' },
      'memory-triggers': { type: 'string' },
      'cache-ttl': { type: 'string' },
      'stream-interval': { type: 'string' },
      connections: { type: 'string' },
      json: { type: 'string' },
      profile: { type: 'string' },
      'node-args': { type: 'string' },
      source: { type: 'boolean' },
      'memory-only': { type: 'boolean' },
      'scaler-dir': { type: 'string' },
      'state-store': { type: 'string' },
      soak: { type: 'string' },
      'soak-window': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const triggers = int('triggers', values.triggers, 1000, 1);
  const queues = int('queues', values.queues, 100, 1);
  if (queues > triggers) throw new Error(`--queues: got ${queues}; allowed: at most --triggers (${triggers})`);
  return {
    triggers,
    queues,
    streams: int('streams', values.streams, 1000, 0),
    rate: int('rate', values.rate, 2000, 1),
    durationSeconds: int('duration', values.duration, 20, 1),
    repeats: int('repeats', values.repeats, 1, 1),
    warmupSeconds: int('warmup', values.warmup, 10, 0),
    stepSeconds: int('step', values.step, 5, 0),
    maxRate: int('max-rate', values['max-rate'], 12_000, 1),
    maxP99Ms: int('max-p99', values['max-p99'], 50, 0),
    wakeTries: int('wake-tries', values['wake-tries'], 50, 0),
    memoryTriggers: int('memory-triggers', values['memory-triggers'], 10_000, 0),
    cacheTtlMs: int('cache-ttl', values['cache-ttl'], 1000, 1),
    streamIntervalMs: int('stream-interval', values['stream-interval'], 1000, 1),
    connections: int('connections', values.connections, 1, 1),
    json: values.json,
    profileDir: values.profile,
    nodeArgs: values['node-args'] === undefined ? shippedNodeArgs() : values['node-args'].split(' ').filter((a) => a !== ''),
    compiled: !(values.source ?? false),
    memoryOnly: values['memory-only'] ?? false,
    scalerDir: values['scaler-dir'],
    stateStore: values['state-store'],
    soakSeconds: int('soak', values.soak, 0, 0),
    soakWindowSeconds: int('soak-window', values['soak-window'], 300, 1),
    help: values.help ?? false,
  };
}
