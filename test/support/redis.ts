// A Redis server of the test's own (password, TLS), beside the shared one from
// `scripts/services.sh up redis`: Debian's redis-server on a free loopback port, no persistence.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './process.ts';

const execFileAsync = promisify(execFile);

export interface OwnRedisOptions {
  readonly password?: string;
  /** A node of a cluster (cluster mode), its state in this file. */
  readonly clusterConfigFile?: string;
  /** PEM files: the server speaks TLS only (rediss://). */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
  /** A replica of the server on this port (its password: `password`), its first sync written into `dir`. */
  readonly replicaOf?: number;
  /** Where it writes what it writes (a replica's first sync); default: the working directory. */
  readonly dir?: string;
  /** A Sentinel (its config file in `dir`) watching the master on this port as `name`, down after a second. */
  readonly sentinelOf?: { readonly name: string; readonly port: number; readonly authPass?: string };
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
    if (options.sentinelOf !== undefined) args.unshift(sentinelConfig(options.sentinelOf, options.dir ?? '.'), '--sentinel');
    if (options.password !== undefined) args.push('--requirepass', options.password);
    if (options.dir !== undefined) args.push('--dir', options.dir);
    if (options.replicaOf !== undefined) {
      args.push('--replicaof', '127.0.0.1', String(options.replicaOf));
      if (options.password !== undefined) args.push('--masterauth', options.password);
    }
    if (options.clusterConfigFile !== undefined) {
      // The bus port a port of its own: port + 10,000 (the default) may be taken, or past 65,535.
      // Replicas' first sync writes a snapshot: into the cluster's directory, not the working one.
      args.push(
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        options.clusterConfigFile,
        '--dir',
        dirname(options.clusterConfigFile),
      );
      args.push('--cluster-port', String(await freePort()), '--cluster-node-timeout', '2000');
    }
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
    while (!/Ready to accept connections|Sentinel ID is/.test(this.output)) {
      if (this.child.exitCode !== null || Date.now() > until) throw new Error(`redis-server did not start:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Servers started one after another, each from the ones before: each binds its ports before the
 * next picks free ones (side by side, two picked the same port, and the servers started before
 * the one that failed were left running). One that fails stops the others and removes `dir`.
 */
async function startInTurn(dir: string, servers: ((started: readonly OwnRedis[]) => OwnRedisOptions)[]): Promise<OwnRedis[]> {
  const started: OwnRedis[] = [];
  try {
    for (const options of servers) started.push(await OwnRedis.start(options(started)));
    return started;
  } catch (err) {
    await Promise.all(started.map((n) => n[Symbol.asyncDispose]()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A Sentinel's config file in `dir` (a Sentinel rewrites its own). */
function sentinelConfig(of: NonNullable<OwnRedisOptions['sentinelOf']>, dir: string): string {
  const file = join(dir, `sentinel-${of.port}.conf`);
  const lines = [
    `sentinel monitor ${of.name} 127.0.0.1 ${of.port} 1`,
    `sentinel down-after-milliseconds ${of.name} 1000`,
    `sentinel failover-timeout ${of.name} 3000`,
    ...(of.authPass !== undefined ? [`sentinel auth-pass ${of.name} ${of.authPass}`] : []),
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * A Sentinel-managed Redis of the test's own: a master, its replica, and one Sentinel (quorum 1)
 * that promotes the replica a second or so after the master goes. `password` for the data
 * servers, `sentinelPassword` for the Sentinel.
 */
export class OwnRedisSentinel implements AsyncDisposable {
  readonly name = 'kis-master';
  readonly master: OwnRedis;
  readonly replica: OwnRedis;
  readonly sentinel: OwnRedis;
  private readonly dir: string;

  private constructor(master: OwnRedis, replica: OwnRedis, sentinel: OwnRedis, dir: string) {
    this.master = master;
    this.replica = replica;
    this.sentinel = sentinel;
    this.dir = dir;
  }

  static async start(options: { password?: string; sentinelPassword?: string } = {}): Promise<OwnRedisSentinel> {
    const dir = mkdtempSync(join(tmpdir(), 'kis-redis-sentinel-'));
    const auth = options.password !== undefined ? { password: options.password } : {};
    const [master, replica, sentinel] = await startInTurn(dir, [
      () => ({ ...auth, dir }),
      ([m]) => ({ ...auth, dir, replicaOf: m!.port }),
      ([m]) => ({
        dir,
        ...(options.sentinelPassword !== undefined && { password: options.sentinelPassword }),
        sentinelOf: { name: 'kis-master', port: m!.port, ...(options.password !== undefined && { authPass: options.password }) },
      }),
    ]);
    const set = new OwnRedisSentinel(master!, replica!, sentinel!, dir);
    try {
      await set.waitForReplica(options.sentinelPassword);
    } catch (err) {
      await set[Symbol.asyncDispose]();
      throw err;
    }
    return set;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([this.sentinel, this.replica, this.master].map((n) => n[Symbol.asyncDispose]()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Until the Sentinel knows the replica, in sync: a failover has somewhere to go. */
  private async waitForReplica(sentinelPassword: string | undefined): Promise<void> {
    const client = new Redis({
      port: this.sentinel.port,
      host: '127.0.0.1',
      ...(sentinelPassword !== undefined && { password: sentinelPassword }),
    });
    try {
      const until = Date.now() + 20_000;
      for (;;) {
        const replicas = (await client.call('SENTINEL', 'REPLICAS', this.name)) as string[][];
        const flags = replicas.map((r) => r[r.indexOf('flags') + 1]);
        const link = replicas.map((r) => r[r.indexOf('master-link-status') + 1]);
        if (flags.length > 0 && flags.every((f) => f === 'slave') && link.every((l) => l === 'ok')) return;
        if (Date.now() > until)
          throw new Error(`the Sentinel did not see an in-sync replica in 20 s: ${JSON.stringify(replicas)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      client.disconnect();
    }
  }
}

/**
 * A Redis cluster of the test's own: three masters on free loopback ports, every slot assigned
 * (`redis-cli --cluster create`, from Debian's redis-tools beside redis-server).
 */
export class OwnRedisCluster implements AsyncDisposable {
  readonly nodes: readonly OwnRedis[];
  private readonly dir: string;

  private constructor(nodes: readonly OwnRedis[], dir: string) {
    this.nodes = nodes;
    this.dir = dir;
  }

  /** `masters` masters, each with `replicas` replicas (which take over when it fails). */
  static async start(masters = 3, replicas = 0): Promise<OwnRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'kis-redis-cluster-'));
    const nodes = await startInTurn(
      dir,
      Array.from({ length: masters * (1 + replicas) }, (_, i) => () => ({ clusterConfigFile: join(dir, `nodes-${i}.conf`) })),
    );
    const cluster = new OwnRedisCluster(nodes, dir);
    try {
      const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
      await execFileAsync('redis-cli', [
        '--cluster',
        'create',
        ...addresses,
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ]);
      await cluster.waitUntilOk(masters * replicas);
    } catch (err) {
      await cluster[Symbol.asyncDispose]();
      throw err;
    }
    return cluster;
  }

  /** redis:// to its first node. */
  get url(): string {
    return this.nodes[0]!.url;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(this.nodes.map((n) => n[Symbol.asyncDispose]()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Every node agrees that the cluster serves every slot, and every replica is one with its link to
   * its master up: redis-cli returns before the replicas are (a master lost before then has no
   * replica to fail over to, and its slots stay down).
   */
  private async waitUntilOk(replicas: number): Promise<void> {
    const until = Date.now() + 15_000;
    for (;;) {
      const states = await Promise.all(
        this.nodes.map(async (n) => {
          using client = rawClient(n.url);
          const role = (await client.call('ROLE')) as unknown[];
          const linked = role[0] === 'master' || role[3] === 'connected';
          const known = String(await client.cluster('NODES')).match(/\bslave\b/g)?.length ?? 0;
          return linked && known === replicas && /cluster_state:ok/.test(await client.cluster('INFO'));
        }),
      );
      if (states.every(Boolean)) return;
      if (Date.now() > until)
        throw new Error('the Redis cluster did not reach cluster_state:ok with its replicas linked in 15 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A plain client of the shared server, for what the tests write behind the store's back. */
export function rawClient(url: string): Redis & Disposable {
  const client = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  // Disconnected at the end of its scope (`using`), however the test leaves it.
  return Object.assign(client, { [Symbol.dispose]: () => client.disconnect() });
}
