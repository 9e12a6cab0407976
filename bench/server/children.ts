// The benchmark's child processes: the scaler (node src/main.ts), the floor server and the load
// generator, each its own process so the load generator never shares an event loop with what it
// measures. Stopped by pid with SIGTERM (the scaler then writes its --cpu-prof profile).
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Command } from './loadgen.ts';
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

/** Waits for the first stdout line (JSON) that has `key`, failing if the process exits first. */
function firstJsonLine(child: ChildProcess, key: string, what: string): Promise<Record<string, unknown>> {
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

function stopChild(child: ChildProcess): Promise<void> {
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
}

/**
 * Compiles src/ with tsconfig.build.json into DIR/dist, with links to proto/ and node_modules/
 * so it runs as the image does (node dist/main.js). Type errors elsewhere do not stop the emit.
 */
export function buildScaler(dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  symlinkSync(`${ROOT}proto`, `${dir}/proto`);
  symlinkSync(`${ROOT}node_modules`, `${dir}/node_modules`);
  copyFileSync(`${ROOT}package.json`, `${dir}/package.json`);
  const tsc = spawnSync(
    process.execPath,
    [`${ROOT}node_modules/typescript/bin/tsc`, '-p', 'tsconfig.build.json', '--outDir', `${dir}/dist`],
    { cwd: ROOT, encoding: 'utf8' },
  );
  if (!existsSync(`${dir}/dist/main.js`)) throw new Error(`tsc produced no dist/main.js: ${tsc.stdout}${tsc.stderr}`);
  return dir;
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
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      GRPC_PORT: '0',
      METRICS_PORT: '0',
      BIND_ADDRESS: '127.0.0.1',
      LOG_LEVEL: 'info',
      CACHE_TTL_MS: String(options.cacheTtlMs),
      STREAM_INTERVAL_MS: String(options.streamIntervalMs),
    },
  });
  const ready = await firstJsonLine(child, 'grpcPort', 'scaler');
  // Keep draining stdout (warnings) so the pipe never fills and blocks the scaler.
  child.stdout!.resume();
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

export async function startFloorProcess(): Promise<{
  child: ChildProcess;
  pid: number;
  grpcPort: number;
  stop(): Promise<void>;
}> {
  const child = spawn(process.execPath, ['bench/server/floorServer.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await firstJsonLine(child, 'grpcPort', 'floor server');
  child.stdout!.resume();
  return { child, pid: child.pid!, grpcPort: Number(ready.grpcPort), stop: () => stopChild(child) };
}

export interface LoadGenerator {
  readonly pid: number;
  send<T>(command: Command): Promise<T>;
  stop(): Promise<void>;
}

/** Forks the load generator; commands run one at a time and each resolves with its reply. */
export function startLoadGenerator(): LoadGenerator {
  const child = fork(`${ROOT}bench/server/loadgen.ts`, [], {
    cwd: ROOT,
    execArgv: (process.env.BENCH_LOADGEN_NODE_ARGS ?? '').split(' ').filter(Boolean),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let pending: { resolve: (v: unknown) => void; reject: (e: Error) => void } | undefined;
  child.on('message', (message: { ok: boolean; reply?: unknown; error?: string }) => {
    const p = pending;
    pending = undefined;
    if (message.ok) p?.resolve(message.reply);
    else p?.reject(new Error(`load generator: ${message.error}`));
  });
  child.on('exit', (code) => pending?.reject(new Error(`load generator exited (code ${code})`)));
  return {
    pid: child.pid!,
    send<T>(command: Command): Promise<T> {
      if (pending !== undefined) return Promise.reject(new Error('load generator is busy'));
      return new Promise<T>((resolve, reject) => {
        pending = { resolve: resolve as (v: unknown) => void, reject };
        child.send(command);
      });
    },
    stop: () => stopChild(child),
  };
}
