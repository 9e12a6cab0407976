// The benchmark's child processes: the scaler (node src/main.ts), the floor server and the load
// generator (Go, bench/server/loadgen-go), each its own process
// so the load generator never shares an event loop with what it measures. Stopped by pid with
// SIGTERM (the scaler then writes its --cpu-prof profile).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Command } from './loadgenProtocol.ts';
import { sumMetric } from './procStats.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ScalerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly grpcPort: number;
  readonly metricsPort: number;
  /** Text of /metrics. */
  scrape(): Promise<string>;
  /** Sum of a metric's series, from a fresh scrape. */
  metric(name: string): Promise<number>;
  stop(): Promise<void>;
}

/** What a benchmark's scaler child starts with: ports the OS picks (reported on its first log line), loopback only. */
export function scalerChildEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GRPC_PORT: '0',
    METRICS_PORT: '0',
    BIND_ADDRESS: '127.0.0.1',
    LOG_LEVEL: 'info',
  };
}

/** Waits for the first stdout line (JSON) that has `key`, failing if the process exits first. */
export function firstJsonLine(child: ChildProcess, key: string, what: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 30 s`)), 30_000);
    child.once('exit', (code) => reject(new Error(`${what} exited (code ${code}) before it was ready`)));
    lines.on('line', (line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        return;
      }
      if (typeof parsed === 'object' && parsed !== null && key in parsed) {
        clearTimeout(timer);
        resolve(parsed as Record<string, unknown>);
      }
    });
  });
}

/** SIGTERM, then SIGKILL after 15 s; resolves once the child has exited. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export interface ScalerOptions {
  readonly cacheTtlMs: number;
  readonly streamIntervalMs: number;
  readonly profileDir?: string;
  readonly nodeArgs?: readonly string[];
  /** Directory holding a compiled dist/main.js (see buildScaler); src/main.ts when absent. */
  readonly compiledDir?: string;
  /** Checkout whose src/main.ts runs (default: this one). */
  readonly scalerDir?: string;
  /** The scaler's STATE_STORE_URL (default: none, in memory). */
  readonly stateStore?: string;
}

/**
 * Compiles `from`'s src/ (this checkout by default) with its tsconfig.build.json into DIR/dist,
 * with links to proto/ and node_modules/ so it runs as the image does (node dist/main.js). Type
 * errors elsewhere do not stop the emit.
 */
export function buildScaler(dir: string, from = ROOT): string {
  const source = from.endsWith('/') ? from : `${from}/`;
  if (!existsSync(`${source}tsconfig.build.json`)) {
    throw new Error(
      `${source}tsconfig.build.json is missing: copy it (and tsconfig.json) into the checkout, or run its src/main.ts with --source`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  symlinkSync(`${source}proto`, `${dir}/proto`);
  symlinkSync(`${ROOT}node_modules`, `${dir}/node_modules`);
  copyFileSync(`${source}package.json`, `${dir}/package.json`);
  const tsc = spawnSync(
    process.execPath,
    [`${ROOT}node_modules/typescript/bin/tsc`, '-p', 'tsconfig.build.json', '--outDir', `${dir}/dist`],
    { cwd: source, encoding: 'utf8' },
  );
  if (!existsSync(`${dir}/dist/main.js`)) throw new Error(`tsc produced no dist/main.js: ${tsc.stdout}${tsc.stderr}`);
  return dir;
}

/**
 * Keeps draining a child's stdout (warnings) so the pipe never fills and blocks it; with a file
 * (BENCH_SCALER_OUT, BENCH_FLOOR_OUT) appends it there, e.g. with --node-args=--trace-gc.
 */
function drainStdout(child: ChildProcess, file: string | undefined): void {
  if (file) child.stdout!.pipe(createWriteStream(file, { flags: 'a' }));
  else child.stdout!.resume();
}

export async function startScalerProcess(options: ScalerOptions): Promise<ScalerProcess> {
  const args = [
    ...(options.nodeArgs ?? []),
    ...(options.profileDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', options.profileDir] : []),
  ];
  const entry = options.compiledDir !== undefined ? 'dist/main.js' : 'src/main.ts';
  const child = spawn(process.execPath, [...args, entry], {
    cwd: options.compiledDir ?? options.scalerDir ?? ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...scalerChildEnv(),
      CACHE_TTL_MS: String(options.cacheTtlMs),
      STREAM_INTERVAL_MS: String(options.streamIntervalMs),
      ...(options.stateStore !== undefined ? { STATE_STORE_URL: options.stateStore } : {}),
    },
  });
  const ready = await firstJsonLine(child, 'grpcPort', 'scaler');
  drainStdout(child, process.env.BENCH_SCALER_OUT);
  const metricsPort = Number(ready.metricsPort);
  const scrape = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return {
    child,
    pid: child.pid!,
    grpcPort: Number(ready.grpcPort),
    metricsPort,
    scrape,
    metric: async (name) => sumMetric(await scrape(), name),
    stop: () => stopChild(child),
  };
}

/** The floor, run with the same node flags as the scaler (a like-for-like runtime). */
export async function startFloorProcess(
  nodeArgs: readonly string[] = [],
  profileDir?: string,
): Promise<{
  child: ChildProcess;
  pid: number;
  grpcPort: number;
  stop(): Promise<void>;
}> {
  const profile =
    profileDir !== undefined
      ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `floor-${Date.now()}.cpuprofile`]
      : [];
  const child = spawn(process.execPath, [...nodeArgs, ...profile, 'bench/server/floorServer.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = await firstJsonLine(child, 'grpcPort', 'floor server');
  drainStdout(child, process.env.BENCH_FLOOR_OUT);
  return { child, pid: child.pid!, grpcPort: Number(ready.grpcPort), stop: () => stopChild(child) };
}

export interface LoadGenerator {
  readonly pid: number;
  send<T>(command: Command): Promise<T>;
  stop(): Promise<void>;
}

const GO_LOADGEN_DIR = `${ROOT}bench/server/loadgen-go`;

/**
 * Builds bench/server/loadgen-go into the user's cache (never the checkout) when the binary is
 * missing or older than its sources; returns its path.
 */
function buildGoLoadGenerator(): string {
  const binDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'keda-inference-scaler', 'bin');
  const binary = join(binDir, 'bench-loadgen');
  const newestSourceMs = Math.max(
    ...readdirSync(GO_LOADGEN_DIR)
      .filter((f) => f.endsWith('.go') || f === 'go.mod' || f === 'go.sum')
      .map((f) => statSync(join(GO_LOADGEN_DIR, f)).mtimeMs),
  );
  if (existsSync(binary) && statSync(binary).mtimeMs > newestSourceMs) return binary;
  mkdirSync(binDir, { recursive: true });
  // Built under a private name and renamed, so two benchmarks starting at once never run half a file.
  const partial = `${binary}.${process.pid}`;
  const go = spawnSync('go', ['build', '-buildvcs=false', '-o', partial, '.'], { cwd: GO_LOADGEN_DIR, encoding: 'utf8' });
  if (go.status !== 0) {
    rmSync(partial, { force: true });
    throw new Error(`go build in bench/server/loadgen-go failed: ${go.error?.message ?? ''}${go.stderr}`);
  }
  renameSync(partial, binary);
  return binary;
}

function goOnPath(): boolean {
  return spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0;
}

/**
 * The load generator, built now (so a build failure shows before anything starts): grpc-go, the
 * client KEDA is, whose own stalls are far shorter than a Node sender's.
 */
export function selectLoadGenerator(): { start: () => LoadGenerator } {
  if (!goOnPath()) throw new Error('bench:server needs a go toolchain on PATH for its load generator (bench/server/loadgen-go)');
  const binary = buildGoLoadGenerator();
  return { start: () => startGoLoadGenerator(binary) };
}

/** Replies of a load generator, one per command in order: {ok, reply} or {ok: false, error}. */
function replyQueue(child: ChildProcess) {
  let pending: { resolve: (v: unknown) => void; reject: (e: Error) => void } | undefined;
  const onReply = (message: { ok: boolean; reply?: unknown; error?: string }) => {
    const p = pending;
    pending = undefined;
    if (message.ok) p?.resolve(message.reply);
    else p?.reject(new Error(`load generator: ${message.error}`));
  };
  child.on('exit', (code) => pending?.reject(new Error(`load generator exited (code ${code})`)));
  const send = <T>(command: Command, write: (command: Command) => void): Promise<T> => {
    if (pending !== undefined) return Promise.reject(new Error('load generator is busy'));
    return new Promise<T>((resolve, reject) => {
      pending = { resolve: resolve as (v: unknown) => void, reject };
      write(command);
    });
  };
  return {
    onReply,
    loadGenerator: (write: (command: Command) => void): LoadGenerator => ({
      pid: child.pid!,
      send: <T>(command: Command) => send<T>(command, write),
      stop: () => stopChild(child),
    }),
  };
}

/** Starts the Go load generator: commands as JSON lines on its stdin, replies on its stdout. */
function startGoLoadGenerator(binary: string): LoadGenerator {
  const child = spawn(binary, [], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const replies = replyQueue(child);
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      replies.onReply(JSON.parse(line) as { ok: boolean; reply?: unknown; error?: string });
    } catch {
      replies.onReply({ ok: false, error: `unreadable reply: ${line}` });
    }
  });
  return replies.loadGenerator((command) => child.stdin!.write(`${JSON.stringify(command)}\n`));
}
