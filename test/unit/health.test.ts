// grpc.health.v1 on an open port (health.ts): a name the scaler does not serve costs nothing to
// hold and comes back cut short, and open Watch streams are capped.
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Health } from '../../src/server/health.ts';

interface HealthClient extends grpc.Client {
  Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
}

const Client = grpc.makeGenericClientConstructor(healthService, 'Health');
const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

async function serve(
  maxWatches: number,
  health = new Health({ '': 'SERVING', 'externalscaler.ExternalScaler': 'SERVING' }, maxWatches),
): Promise<HealthClient> {
  const server = new grpc.Server();
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as HealthClient;
  stops.push(() => {
    client.close();
    server.forceShutdown();
  });
  return client;
}

const check = (client: HealthClient, service: string) =>
  new Promise<{ code: grpc.status; details: string; status?: string }>((resolve) =>
    client.Check({ service }, (err, res) =>
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '', status: res!.status }),
    ),
  );

/** A Watch's messages and how it ended (undefined while it is open). */
function watch(client: HealthClient, service: string) {
  const call = client.Watch({ service });
  const seen: string[] = [];
  const ended: { code?: grpc.status; details?: string } = {};
  call.on('data', (m: { status: string }) => seen.push(m.status));
  call.on('error', () => undefined); // 'status' says how it ended
  call.on('status', (s: grpc.StatusObject) => Object.assign(ended, { code: s.code, details: s.details }));
  return { call, seen, ended };
}

describe('health', () => {
  it('answers Check for the services it serves, and NOT_FOUND with the name cut short for others', async () => {
    const client = await serve(10);
    expect(await check(client, '')).toMatchObject({ code: grpc.status.OK, status: 'SERVING' });
    expect(await check(client, 'externalscaler.ExternalScaler')).toMatchObject({ status: 'SERVING' });
    const unknown = await check(client, 'x'.repeat(200_000));
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
    expect(unknown.details.length).toBeLessThan(200);
    expect(unknown.details).toMatch(/^Health status unknown for service "x+/);
  });

  it('ends a Watch of a service it does not serve after SERVICE_UNKNOWN', async () => {
    const client = await serve(10);
    const w = watch(client, 'no.such.Service');
    await expect.poll(() => w.ended.code).toBe(grpc.status.OK);
    expect(w.seen).toEqual(['SERVICE_UNKNOWN']);
  });

  it('refuses a Watch past the cap with RESOURCE_EXHAUSTED, and takes one again once another ends', async () => {
    const client = await serve(3);
    const open = [watch(client, ''), watch(client, ''), watch(client, 'externalscaler.ExternalScaler')];
    await expect.poll(() => open.map((w) => w.seen.length)).toEqual([1, 1, 1]);
    const refused = watch(client, '');
    await expect.poll(() => refused.ended.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(refused.ended.details).toMatch(/3 health Watch streams are open/);
    open[0]!.call.cancel();
    const again = watch(client, '');
    await expect.poll(() => again.seen).toEqual(['SERVING']);
    expect(again.ended.code).toBeUndefined();
  });

  // Found by review: a Watch that came after the stop ended the others was held open until the
  // stop's budget ran out, and the server was closed by force.
  it('answers a Watch that comes after endWatches NOT_SERVING and ends it with OK at once', async () => {
    const health = new Health({ '': 'SERVING' }, 10);
    const client = await serve(10, health);
    health.setStatus('', 'NOT_SERVING');
    health.endWatches();
    const late = watch(client, '');
    await expect.poll(() => late.ended.code).toBe(grpc.status.OK);
    expect(late.seen).toEqual(['NOT_SERVING']);
  });
});
