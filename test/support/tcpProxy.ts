// A real TCP proxy in front of a real service, for tests that need the service "down" and
// "back" without stopping the shared instance: stop() closes the listener and cuts every
// connection (clients see ECONNRESET / ECONNREFUSED), start() listens again on the same port.
// blackhole() is the other kind of outage, a network path that drops everything: connections
// stay open and new ones are accepted, but no byte goes through either way until heal().
// delay(ms) is a slow path: every byte arrives, ms late, in order, both ways.
import { type Server, type Socket, connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/** One direction of a proxied connection; bytes held back by delay() wait here, in order. */
interface Lane {
  readonly queue: { chunk: Buffer | 'end'; dueMs: number }[];
  timer: NodeJS.Timeout | undefined;
}

export class TcpProxy implements AsyncDisposable {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly lanes = new Set<Lane>();
  private portNumber = 0;
  private blackholed = false;
  private delayMs = 0;
  private readonly targetHost: string;
  private readonly targetPort: number;

  constructor(target: { host: string; port: number }) {
    this.targetHost = target.host;
    this.targetPort = target.port;
  }

  /** Proxy for the host:port of a URL such as amqp://u:p@127.0.0.1:5673. */
  static forUrl(url: string): TcpProxy {
    const u = new URL(url);
    return new TcpProxy({ host: u.hostname, port: Number(u.port) });
  }

  get port(): number {
    return this.portNumber;
  }

  /** The URL with host:port replaced by the proxy's. */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.portNumber);
    return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const lanes = [this.lane(), this.lane()];
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
        for (const lane of lanes) {
          clearTimeout(lane.timer);
          this.lanes.delete(lane);
        }
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      this.forward(client, upstream, lanes[0]!);
      this.forward(upstream, client, lanes[1]!);
      if (this.blackholed) {
        client.pause();
        upstream.pause();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.portNumber, '127.0.0.1', () => resolve());
    });
    this.portNumber = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /**
   * Nothing goes through any more, either way, on open connections and new ones (which are still
   * accepted): a peer's requests wait for answers that never come, as behind a dead network path.
   * Bytes sent meanwhile wait in the sockets' buffers, as TCP would hold them, until heal().
   */
  blackhole(): void {
    this.blackholed = true;
    for (const s of this.sockets) s.pause();
  }

  /** Undoes blackhole(): what waited goes through, and so does everything after. */
  heal(): void {
    this.blackholed = false;
    for (const s of this.sockets) s.resume();
  }

  /**
   * Every chunk, either way, on open connections and new ones, is passed on `ms` after it arrived
   * (0: at once again; what is held back still goes first). A service slower than a client's
   * deadline: its answers come, too late.
   */
  delay(ms: number): void {
    this.delayMs = Math.max(0, ms);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.blackholed = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    for (const lane of this.lanes) clearTimeout(lane.timer);
    this.lanes.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private lane(): Lane {
    const lane: Lane = { queue: [], timer: undefined };
    this.lanes.add(lane);
    return lane;
  }

  /** from -> to, as pipe() would, but one that blackhole() can hold (pipe() resumes on 'drain') and delay() can slow. */
  private forward(from: Socket, to: Socket, lane: Lane): void {
    const flush = () => {
      lane.timer = undefined;
      const now = Date.now();
      while (lane.queue.length > 0 && lane.queue[0]!.dueMs <= now) {
        const { chunk } = lane.queue.shift()!;
        if (to.destroyed) return;
        if (chunk === 'end') to.end();
        else to.write(chunk);
      }
      if (lane.queue.length > 0) lane.timer = setTimeout(flush, lane.queue[0]!.dueMs - now);
    };
    const pass = (chunk: Buffer | 'end') => {
      if (this.delayMs === 0 && lane.queue.length === 0) return false;
      lane.queue.push({ chunk, dueMs: Date.now() + this.delayMs });
      lane.timer ??= setTimeout(flush, lane.queue[0]!.dueMs - Date.now());
      return true;
    };
    from.on('data', (chunk: Buffer) => {
      if (pass(chunk) || to.write(chunk)) return;
      from.pause();
      to.once('drain', () => {
        if (!this.blackholed) from.resume();
      });
    });
    from.on('end', () => {
      if (!pass('end')) to.end();
    });
  }
}
