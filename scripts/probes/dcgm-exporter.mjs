// Readiness of the fake DCGM exporter (scripts/fake-dcgm-exporter.mjs) that the test bed's
// Prometheus scrapes: GET /metrics answers. Usage: node scripts/probes/dcgm-exporter.mjs URL
// [TIMEOUT_MS]; exits 0 when ready.
import { fetchOk, probe } from './probe.mjs';

const [url, limitArg] = process.argv.slice(2);

probe('dcgm-exporter', Number(limitArg ?? 5000), async (limit) => {
  await fetchOk(new URL('/metrics', url), limit);
  return undefined;
});
