// What every readiness probe of the test bed shares: a hard deadline, one line on stderr that says
// why the service is not ready (credentials stripped: the URLs carry guest:guest and the like),
// exit 0 when ready and 1 when not. scripts/services/lib.sh runs the probes and waits on them.

/** Runs `check` once; its resolved string (if any) goes to stdout. */
export function probe(name, limitMs, check) {
  const fail = (why) => {
    console.error(`${name} probe: ${String(why).replace(/\/\/[^/@\s]*@/g, '//***@')}`);
    process.exit(1);
  };
  setTimeout(() => fail('timeout'), limitMs).unref();
  check(limitMs).then(
    (line) => {
      if (line) console.log(line);
      process.exit(0);
    },
    (err) => fail(err instanceof Error ? err.message : err),
  );
}

/** fetch with the deadline, and with credentials in the URL sent as basic auth (fetch refuses them in the URL). */
export async function fetchOk(url, limitMs) {
  const target = new URL(url);
  const headers = {};
  if (target.username !== '') {
    const user = decodeURIComponent(target.username);
    const password = decodeURIComponent(target.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    target.username = '';
    target.password = '';
  }
  const res = await fetch(target, { headers, signal: AbortSignal.timeout(limitMs) }).catch((err) => {
    // undici says only 'fetch failed'; the reason (ECONNREFUSED...) is its cause
    throw new Error(`GET ${target.pathname}: ${err.cause?.message ?? err.message}`);
  });
  if (!res.ok) throw new Error(`GET ${target.pathname}: HTTP ${res.status}`);
  return res;
}
