// Stream opens paced per connection (src/server/streamPacing.ts) on a real HTTP/2 server and
// client: a connection starts with room for one step of streams and is raised a step at a time as
// they open, up to the cap; a client that asks for more than the cap at once gets every stream the
// cap allows, and no more.
import { type ClientHttp2Session, type ClientHttp2Stream, type ServerHttp2Stream, connect, createServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { paceSession } from '../../src/server/streamPacing.ts';
import { eventually } from '../support/scaler.ts';

const STEP = 10;
const MAX = 35;

interface Bed {
  readonly client: ClientHttp2Session;
  /** The streams the server has seen open, held open. */
  readonly held: ServerHttp2Stream[];
  /** How many of them have closed on the server. */
  closed(): number;
  /** Every limit the client was told, in order. */
  readonly limits: number[];
  close(): Promise<void>;
}

let bed: Bed | undefined;
afterEach(async () => {
  await bed?.close();
  bed = undefined;
});

async function start(): Promise<Bed> {
  const server = createServer({ settings: { maxConcurrentStreams: STEP } });
  const held: ServerHttp2Stream[] = [];
  let closed = 0;
  server.on('session', (session) => paceSession(session, { step: STEP, max: MAX }));
  server.on('stream', (stream) => {
    held.push(stream);
    stream.once('close', () => closed++);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const limits: number[] = [];
  client.on('remoteSettings', (settings) => {
    if (settings.maxConcurrentStreams !== undefined) limits.push(settings.maxConcurrentStreams);
  });
  await new Promise<void>((resolve) => client.once('remoteSettings', () => resolve()));
  return {
    client,
    held,
    limits,
    closed: () => closed,
    close: async () => {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Two PING round trips: the first acknowledged once the server has taken in every frame sent
 * before it; the second once the client has taken in every frame the server sent after that,
 * including the SETTINGS of a raise one loop turn later. A barrier instead of a quiet window.
 */
async function settled(client: ClientHttp2Session): Promise<void> {
  for (let i = 0; i < 2; i++) {
    await new Promise<void>((resolve, reject) => client.ping((err) => (err ? reject(err) : resolve())));
  }
}

/** Opens `n` streams that stay open (no end of request). */
function open(client: ClientHttp2Session, n: number): ClientHttp2Stream[] {
  return Array.from({ length: n }, () => {
    const stream = client.request({ ':path': '/held', ':method': 'POST' }, { endStream: false });
    stream.on('error', () => undefined);
    return stream;
  });
}

describe('stream pacing', () => {
  it('starts a connection at one step and raises it a step at a time as its streams open', async () => {
    bed = await start();
    expect(bed.limits).toEqual([STEP]);
    // Half of the room filled: a step more than is open.
    open(bed.client, STEP / 2);
    const b = bed;
    await eventually(async () => (b.held.length === STEP / 2 && b.limits.length >= 2 ? true : undefined), 5000, 10);
    expect(bed.limits).toEqual([STEP, STEP / 2 + STEP]);
  });

  it('gives a client that opens more than the cap at once every stream up to the cap, never more', async () => {
    bed = await start();
    open(bed.client, 50);
    const b = bed;
    await eventually(async () => (b.held.length === MAX ? true : undefined), 5000, 10);
    // Nothing past the cap arrives: no raise past it, and no stream after the last one.
    await settled(bed.client);
    expect(bed.held).toHaveLength(MAX);
    expect(bed.limits.at(-1)).toBe(MAX);
    for (let i = 1; i < bed.limits.length; i++) {
      expect(bed.limits[i]!).toBeGreaterThan(bed.limits[i - 1]!);
      expect(bed.limits[i]! - bed.limits[i - 1]!).toBeLessThanOrEqual(2 * STEP);
    }
  });

  it('lets a stream that closes make room without a raise', async () => {
    bed = await start();
    const streams = open(bed.client, 4);
    const b = bed;
    await eventually(async () => (b.held.length === 4 ? true : undefined), 5000, 10);
    for (const s of streams) s.close();
    for (const s of bed.held) s.close();
    await eventually(async () => (b.closed() === 4 ? true : undefined), 5000, 10);
    open(bed.client, 4);
    await eventually(async () => (b.held.length === 8 ? true : undefined), 5000, 10);
    await settled(bed.client);
    expect(bed.limits).toEqual([STEP]);
  });
});
