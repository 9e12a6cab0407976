// Readiness of the test bed's Redis (the scaler's state store), asked with the project's own
// client (ioredis): PING answers PONG. Usage: node scripts/probes/redis.mjs URL [TIMEOUT_MS];
// prints the server's version, exits 0 when ready.
import { Redis } from 'ioredis';
import { probe } from './probe.mjs';

const [url, limitArg] = process.argv.slice(2);

probe('redis', Number(limitArg ?? 5000), async (limit) => {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: limit,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // connect() rejects with 'Connection is closed.'; the reason is the last 'error' event
  let lastError;
  client.on('error', (err) => (lastError = err));
  await client.connect().catch((err) => {
    throw lastError ?? err;
  });
  const pong = await client.ping();
  if (pong !== 'PONG') throw new Error(`PING answered ${pong}`);
  const version = /redis_version:(\S+)/.exec(await client.info('server'))?.[1];
  client.disconnect();
  return `Redis ${version}`;
});
