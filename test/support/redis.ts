// A Redis server of the test's own (password, TLS), beside the shared one from
// `scripts/services.sh up redis`: Debian's redis-server on a free loopback port, no persistence.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { freePort } from './process.ts';

export interface OwnRedisOptions {
  readonly password?: string;
  /** PEM files: the server speaks TLS only (rediss://). */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
}

export class OwnRedis implements AsyncDisposable {
  readonly port: number;
  readonly tls: boolean;
  private readonly child: ChildProcess;
  private output = '';

  private constructor(port: number, tls: boolean, child: ChildProcess) {
    this.port = port;
    this.tls = tls;
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  static async start(options: OwnRedisOptions = {}): Promise<OwnRedis> {
    const binary = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
    if (binary === undefined)
      throw new Error('redis-server not found: `scripts/services.sh up redis` installs it (Debian redis-server)');
    const port = await freePort();
    const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
    if (options.password !== undefined) args.push('--requirepass', options.password);
    if (options.tls === undefined) args.push('--port', String(port));
    else {
      const { certFile, keyFile, caFile } = options.tls;
      args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', certFile, '--tls-key-file', keyFile);
      args.push('--tls-ca-cert-file', caFile, '--tls-auth-clients', 'no');
    }
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new OwnRedis(port, options.tls !== undefined, child);
    await server.waitUntilListening();
    return server;
  }

  /** redis:// or rediss:// to 127.0.0.1 on its port, without credentials. */
  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }

  private async waitUntilListening(): Promise<void> {
    const until = Date.now() + 10_000;
    while (!/Ready to accept connections/.test(this.output)) {
      if (this.child.exitCode !== null || Date.now() > until) throw new Error(`redis-server did not start:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A plain client of the shared server, for what the tests write behind the store's back. */
export function rawClient(url: string): Redis {
  return new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
}
