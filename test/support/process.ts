// The scaler as a child process, the way it runs in a pod: ports from the environment, JSON logs
// kept for the test to read, a KEDA client, and the metrics port for /metrics and /explain.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type ExplainView, KedaClient, eventually, explainViews } from './scaler.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class ScalerProcess implements AsyncDisposable {
  readonly child: ChildProcess;
  readonly client: KedaClient;
  readonly grpcPort: number;
  readonly metricsPort: number;
  logs = '';

  private constructor(child: ChildProcess, grpcPort: number, metricsPort: number) {
    this.child = child;
    this.grpcPort = grpcPort;
    this.metricsPort = metricsPort;
    this.client = new KedaClient(`127.0.0.1:${grpcPort}`);
    child.stdout!.on('data', (d: Buffer) => (this.logs += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.logs += d.toString()));
  }

  /** Starts `src/main.ts` with `env` over the test's environment, and waits until it listens. */
  static async start(env: Record<string, string | undefined> = {}, timeoutMs = 20_000): Promise<ScalerProcess> {
    const [grpcPort, metricsPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ['src/main.ts'], {
      cwd: root,
      env: {
        ...process.env,
        GRPC_PORT: String(grpcPort),
        METRICS_PORT: String(metricsPort),
        BIND_ADDRESS: '127.0.0.1',
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const scaler = new ScalerProcess(child, grpcPort, metricsPort);
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`scaler exited ${child.exitCode}: ${scaler.logs}`);
        return scaler.logs.includes('keda-inference-scaler listening') ? true : undefined;
      },
      timeoutMs,
      100,
    );
    return scaler;
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
