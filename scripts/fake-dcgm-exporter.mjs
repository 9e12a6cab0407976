#!/usr/bin/env node
// Fake NVIDIA DCGM exporter for tests: serves DCGM_FI_DEV_GPU_UTIL in the
// Prometheus text format, with a small control API to set the series.
//
//   node scripts/fake-dcgm-exporter.mjs [port] [host]
//   (or FAKE_DCGM_PORT / FAKE_DCGM_HOST; defaults 19400 / 127.0.0.1)
//
//   GET    /metrics  the exposition (one DCGM_FI_DEV_GPU_UTIL line per GPU set)
//   PUT    /gpus     JSON body [{"namespace":"ns","pod":"p","gpu":"0","util":55}, ...]
//                    replaces the whole set (optional per entry: "uuid", "modelName",
//                    "hostname", "container")
//   GET    /gpus     the current set as JSON
//   DELETE /gpus     clears the set
//   GET    /healthz  "ok"
//
// Plain Node (no dependencies); runs on Node 20 and later.
import http from 'node:http';
import crypto from 'node:crypto';

const port = Number(process.argv[2] ?? process.env.FAKE_DCGM_PORT ?? 19400);
const host = process.argv[3] ?? process.env.FAKE_DCGM_HOST ?? '127.0.0.1';
const MAX_BODY = 1 << 20;

/** @type {Array<{namespace:string,pod:string,gpu:string,util:number,uuid:string,modelName:string,hostname:string,container:string}>} */
let gpus = [];

function fakeUuid(namespace, pod, gpu) {
  const h = crypto.createHash('sha1').update(`${namespace}/${pod}/${gpu}`).digest('hex');
  return `GPU-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function escapeLabel(v) {
  return String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function validate(body) {
  if (!Array.isArray(body)) throw new Error('body must be a JSON array');
  return body.map((e, i) => {
    if (e === null || typeof e !== 'object') throw new Error(`entry ${i}: must be an object`);
    const namespace = e.namespace;
    const pod = e.pod;
    const gpu = e.gpu === undefined ? '0' : String(e.gpu);
    const util = Number(e.util);
    if (typeof namespace !== 'string' || namespace === '') throw new Error(`entry ${i}: namespace must be a non-empty string`);
    if (typeof pod !== 'string' || pod === '') throw new Error(`entry ${i}: pod must be a non-empty string`);
    if (!Number.isFinite(util) || util < 0 || util > 100) throw new Error(`entry ${i}: util must be a number in 0..100`);
    return {
      namespace,
      pod,
      gpu,
      util,
      uuid: typeof e.uuid === 'string' ? e.uuid : fakeUuid(namespace, pod, gpu),
      modelName: typeof e.modelName === 'string' ? e.modelName : 'NVIDIA H100 80GB HBM3',
      hostname: typeof e.hostname === 'string' ? e.hostname : 'node-a',
      container: typeof e.container === 'string' ? e.container : 'worker',
    };
  });
}

function exposition() {
  const lines = ['# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).', '# TYPE DCGM_FI_DEV_GPU_UTIL gauge'];
  for (const g of gpus) {
    const labels = [
      ['gpu', g.gpu],
      ['UUID', g.uuid],
      ['device', `nvidia${g.gpu}`],
      ['modelName', g.modelName],
      ['Hostname', g.hostname],
      ['container', g.container],
      ['namespace', g.namespace],
      ['pod', g.pod],
    ]
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
    lines.push(`DCGM_FI_DEV_GPU_UTIL{${labels}} ${g.util}`);
  }
  return lines.join('\n') + '\n';
}

function send(res, status, body, type = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
    return send(res, 200, exposition(), 'text/plain; version=0.0.4; charset=utf-8');
  }
  if (path === '/healthz') return send(res, 200, 'ok\n', 'text/plain');
  if (path === '/gpus') {
    if (req.method === 'GET')
      return send(
        res,
        200,
        gpus.map(({ namespace, pod, gpu, util, uuid }) => ({ namespace, pod, gpu, util, uuid })),
      );
    if (req.method === 'DELETE') {
      gpus = [];
      return send(res, 200, []);
    }
    if (req.method === 'PUT' || req.method === 'POST') {
      const chunks = [];
      let size = 0;
      req.on('data', (c) => {
        size += c.length;
        if (size > MAX_BODY) {
          send(res, 413, { error: 'body too large' });
          req.destroy();
        } else chunks.push(c);
      });
      req.on('end', () => {
        if (res.headersSent) return;
        try {
          gpus = validate(JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'));
          send(
            res,
            200,
            gpus.map(({ namespace, pod, gpu, util, uuid }) => ({ namespace, pod, gpu, util, uuid })),
          );
        } catch (err) {
          send(res, 400, { error: err instanceof Error ? err.message : String(err) });
        }
      });
      return;
    }
    return send(res, 405, { error: 'method not allowed' });
  }
  send(res, 404, { error: 'not found' });
});

server.on('error', (err) => {
  console.error(`fake-dcgm-exporter: ${err.message}`);
  process.exit(1);
});
server.listen(port, host, () => {
  console.error(`fake-dcgm-exporter listening on http://${host}:${server.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
