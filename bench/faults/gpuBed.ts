// GPU bed: Prometheus queries over the fake DCGM exporter's GPUs, one namespace per source, whose
// busy GPU-equivalents are known. Prometheus has no credentials of its own; in clusters it sits
// behind an authenticating gateway (kube-rbac-proxy, a managed service's front end), which the
// harness plays: a bearer-token check in front of the real Prometheus, whose token it can rotate.
// There is nothing to delete and recreate.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TcpProxy } from '../../test/support/tcpProxy.ts';
import { type SourceBed, until } from './bed.ts';

/** Two GPUs per namespace at 80 %: 1.6 busy GPU-equivalents, D = ceil(1.6 / 0.8) = 2. */
const GPUS = [
  { pod: 'worker-0', gpu: '0', util: 80 },
  { pod: 'worker-0', gpu: '1', util: 80 },
];
const GPU_REPLICAS = 2;

interface ExporterGpu {
  readonly namespace: string;
  readonly pod: string;
  readonly gpu: string;
  readonly util: number;
}

/** The bearer-token gateway: 401 for any other token, the request passed on to Prometheus otherwise. */
class TokenGateway {
  token: string;
  private readonly server: http.Server;
  private readonly agent = new http.Agent({ keepAlive: true });

  constructor(upstream: URL, token: string) {
    this.token = token;
    this.server = http.createServer((req, res) => {
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'error', errorType: 'unauthorized', error: 'invalid bearer token' }));
        return;
      }
      const out = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          path: req.url,
          method: req.method,
          headers: { accept: 'application/json' },
          agent: this.agent,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      out.on('error', () => res.destroy());
      req.pipe(out);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
    this.agent.destroy();
  }
}

export interface GpuBedOptions {
  readonly prometheusUrl: string;
  readonly exporterUrl: string;
  readonly sources: number;
  readonly runId: string;
}

export async function gpuBed(options: GpuBedOptions): Promise<SourceBed> {
  const namespaces = Array.from({ length: options.sources }, (_, i) => `kis-faults-${options.runId}-${i}`);
  // The exporter's set is shared with other tests: change only our namespaces.
  const others = ((await (await fetch(`${options.exporterUrl}/gpus`)).json()) as ExporterGpu[]).filter(
    (g) => !namespaces.includes(g.namespace),
  );
  const put = async (gpus: readonly ExporterGpu[]) => {
    const res = await fetch(`${options.exporterUrl}/gpus`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(gpus),
    });
    if (!res.ok) throw new Error(`exporter PUT /gpus: HTTP ${res.status}`);
  };
  await put([...others, ...namespaces.flatMap((namespace) => GPUS.map((g) => ({ ...g, namespace })))]);
  const token = randomBytes(12).toString('hex');
  const gateway = new TokenGateway(new URL(options.prometheusUrl), token);
  const gatewayPort = await gateway.listen();
  const proxy = new TcpProxy({ host: '127.0.0.1', port: gatewayPort });
  await proxy.start();
  const query = (ns: string) => `sum(DCGM_FI_DEV_GPU_UTIL{namespace="${ns}"}) / 100`;
  return {
    kind: 'gpu',
    sources: namespaces.length,
    expectedReplicas: GPU_REPLICAS,
    proxies: [proxy],
    metadata: (i) => ({
      'gpu.serverAddress': `http://127.0.0.1:${proxy.port}`,
      'gpu.query': query(namespaces[i % namespaces.length]!),
      'gpu.bearerToken': token,
    }),
    ready: () =>
      until('prometheus has scraped the GPUs', async () => {
        for (const ns of namespaces) {
          const res = await fetch(`${options.prometheusUrl}/api/v1/query?query=${encodeURIComponent(query(ns))}`);
          const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
          if (body.data.result[0]?.value[1] !== '1.6') return false;
        }
        return true;
      }),
    breakCredentials: async () => {
      gateway.token = randomBytes(12).toString('hex');
    },
    restoreCredentials: async () => {
      gateway.token = token;
    },
    close: async () => {
      await proxy.stop();
      await gateway.close();
      const now = ((await (await fetch(`${options.exporterUrl}/gpus`)).json()) as ExporterGpu[]).filter(
        (g) => !namespaces.includes(g.namespace),
      );
      await put(now).catch(() => undefined);
    },
  };
}
