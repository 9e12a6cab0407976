// An HTTP reverse proxy that asks for a bearer token, for servers of the test bed that check no
// credentials (Prometheus): 401 without the token, else the request forwarded as it came.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export class BearerProxy implements AsyncDisposable {
  private readonly server: http.Server;
  private readonly target: URL;
  private readonly token: string;
  private readonly agent = new http.Agent({ keepAlive: true });

  private constructor(target: string, token: string) {
    this.target = new URL(target);
    this.token = token;
    this.server = http.createServer((req, res) => this.forward(req, res));
  }

  static async start(target: string, token: string): Promise<BearerProxy> {
    const proxy = new BearerProxy(target, token);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' }).end('Unauthorized\n');
      return;
    }
    const { authorization: _token, host: _host, ...headers } = req.headers;
    const upstream = http.request(
      { host: this.target.hostname, port: this.target.port, path: req.url, method: req.method, headers, agent: this.agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }
}
