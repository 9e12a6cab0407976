// Readiness of the test bed's Prometheus (fetch): /-/ready answers, and with a job name, that
// job's target has been scraped and is up, so the first query a test makes finds its series.
// Usage: node scripts/probes/prometheus.mjs URL [TIMEOUT_MS] [SCRAPED_JOB]; exits 0 when ready.
import { fetchOk, probe } from './probe.mjs';

const [url, limitArg, job] = process.argv.slice(2);

probe('prometheus', Number(limitArg ?? 5000), async (limit) => {
  await fetchOk(new URL('/-/ready', url), limit);
  if (job === undefined) return undefined;
  const query = new URL('/api/v1/query', url);
  query.searchParams.set('query', `up{job="${job}"}`);
  const { data } = await (await fetchOk(query, limit)).json();
  if (!data.result.some((r) => r.value[1] === '1')) throw new Error(`job ${job} not scraped yet`);
  return `job ${job} up`;
});
