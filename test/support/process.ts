// The scaler as a child process, the way it runs in a pod: ports from the environment, JSON logs
// kept for the test to read, a KEDA client, and the metrics port for /metrics and /explain.
import { type ChildProcess, type ChildProcessByStdio, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type ExplainView, KedaClient, explainViews } from './scaler.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The node flags the scaler ships with: node.flags, which `npm start` and the image's ENTRYPOINT read. */
export function shippedNodeArgs(file = new URL('../../node.flags', import.meta.url)): string[] {
  return readFileSync(file, 'utf8')
    .split(/\s+/)
    .filter((flag) => flag !== '');
}

/** A loopback port free a moment ago: for servers that cannot bind port 0 and report the port they got. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * `src/main.ts` with the shipped node flags, as `npm start` runs it: ports the kernel gives,
 * loopback, info logs, then `env` over the test's environment (a variable set undefined is left
 * out); stdout piped, stderr piped or ignored.
 */
export function spawnScaler(
  env: Record<string, string | undefined> = {},
  stderr: 'pipe' | 'ignore' = 'pipe',
): ChildProcessByStdio<null, Readable, Readable | null> {
  return spawn(process.execPath, [...shippedNodeArgs(), 'src/main.ts'], {
    cwd: root,
    env: { ...process.env, GRPC_PORT: '0', METRICS_PORT: '0', BIND_ADDRESS: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', stderr],
  }) as ChildProcessByStdio<null, Readable, Readable | null>;
}

/**
 * Sends SIGTERM and waits for the exit (SIGKILL after 8 s, so a test never hangs): the exit code,
 * null when a signal ended it, and how long it took.
 */
export async function stopWithSigterm(
  child: ChildProcess,
  exited: Promise<number | null>,
): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
  const code = await exited;
  clearTimeout(timer);
  return { code, ms: Date.now() - started };
}

/** The ports of a scaler's "listening" log line, once it is written whole. */
function listeningLine(logs: string): { grpcPort: number; metricsPort: number } | undefined {
  // The text after the last newline may be a line still arriving.
  for (const line of logs.split('\n').slice(0, -1)) {
    if (!line.startsWith('{') || !line.includes('keda-inference-scaler listening')) continue;
    const { grpcPort, metricsPort } = JSON.parse(line) as { grpcPort: number; metricsPort: number };
    return { grpcPort, metricsPort };
  }
  return undefined;
}

export class ScalerProcess implements AsyncDisposable {
  readonly child: ChildProcess;
  readonly client: KedaClient;
  readonly grpcPort: number;
  readonly metricsPort: number;
  logs = '';

  private constructor(child: ChildProcess, logs: { text: string }, grpcPort: number, metricsPort: number) {
    this.child = child;
    this.grpcPort = grpcPort;
    this.metricsPort = metricsPort;
    this.client = new KedaClient(`127.0.0.1:${grpcPort}`);
    this.logs = logs.text;
    child.stdout!.on('data', (d: Buffer) => (this.logs += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.logs += d.toString()));
  }

  /**
   * Starts `src/main.ts` with the shipped node flags and `env` over the test's environment (as
   * `npm start` runs it; NODE_OPTIONS in `env` adds to them), and waits until it listens. Its
   * ports are the ones the kernel gives (0) unless `env` names them, read from its "listening"
   * line: a port picked free beforehand can be taken by another test's process before the scaler
   * binds it.
   */
  static async start(env: Record<string, string | undefined> = {}, timeoutMs = 20_000): Promise<ScalerProcess> {
    const child = spawnScaler(env);
    const logs = { text: '' };
    let collect: (d: Buffer) => void = () => undefined;
    let onExit: (code: number | null) => void = () => undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const listening = await new Promise<{ grpcPort: number; metricsPort: number }>((resolve, reject) => {
        collect = (d) => {
          logs.text += d.toString();
          const ports = listeningLine(logs.text);
          if (ports !== undefined) resolve(ports);
        };
        onExit = (code) => reject(new Error(`scaler exited ${code}: ${logs.text}`));
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`scaler not listening within ${timeoutMs} ms: ${logs.text}`));
        }, timeoutMs);
        child.stdout!.on('data', collect);
        child.stderr!.on('data', collect);
        child.once('exit', onExit);
      });
      return new ScalerProcess(child, logs, listening.grpcPort, listening.metricsPort);
    } finally {
      clearTimeout(timer);
      child.stdout!.off('data', collect);
      child.stderr!.off('data', collect);
      child.off('exit', onExit);
    }
  }

  /** The log lines as objects. */
  lines(): Record<string, unknown>[] {
    return this.logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
  }

  /** /explain for one ScaledObject: its triggers' last decisions. */
  explain(namespace: string, name: string): Promise<ExplainView[]> {
    return explainViews(this.metricsPort, namespace, name);
  }

  /** SIGKILL: the pod is gone at once, leases and all. */
  async kill(): Promise<void> {
    this.client.close();
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}
