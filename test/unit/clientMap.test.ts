// The get-or-create map every driver keeps its shared clients in.
import { describe, expect, it } from 'vitest';
import { ClientMap } from '../../src/sources/common.ts';

class Client {
  closed = 0;
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
}

describe('ClientMap', () => {
  it('makes a client once per key and hands the same one back', () => {
    const map = new ClientMap<Client>();
    let made = 0;
    const make = (name: string) => () => {
      made++;
      return new Client(name);
    };
    const a = map.get('a', make('a'));
    expect(map.get('a', make('other'))).toBe(a);
    expect(map.get('b', make('b')).name).toBe('b');
    expect(made).toBe(2);
    expect(map.size).toBe(2);
  });

  it('forgets a key without closing its client, and only the client given when one is', () => {
    const map = new ClientMap<Client>();
    const first = map.get('k', () => new Client('first'));
    expect(map.delete('k', new Client('stranger'))).toBe(false);
    expect(map.get('k', () => new Client('unused'))).toBe(first);
    expect(map.delete('k', first)).toBe(true);
    expect(first.closed).toBe(0);
    const second = map.get('k', () => new Client('second'));
    expect(second).not.toBe(first);
    expect(map.delete('k')).toBe(true);
    expect(map.delete('k')).toBe(false);
    expect(map.size).toBe(0);
  });

  it('closes every client once, empties itself first, and survives a client that fails to close', async () => {
    const map = new ClientMap<Client>();
    const clients = ['a', 'b', 'c'].map((k) => map.get(k, () => new Client(k)));
    const sizesSeen: number[] = [];
    await map.close((client) => {
      sizesSeen.push(map.size);
      client.closed++;
      if (client.name === 'a') throw new Error('already gone');
      return client.name === 'b' ? Promise.reject(new Error('refused')) : undefined;
    });
    expect(clients.map((c) => c.closed)).toEqual([1, 1, 1]);
    expect(sizesSeen).toEqual([0, 0, 0]);
    expect(map.size).toBe(0);
    await map.close((client) => client.closed++);
    expect(clients.map((c) => c.closed)).toEqual([1, 1, 1]);
  });

  it('closes the clients no get used for the idle window (a rotated password: no read asks for the old URL now), and keeps the rest', async () => {
    const map = new ClientMap<Client>();
    const old = map.get('amqp://u:old@broker', () => new Client('old'), 0);
    const current = map.get('amqp://u:new@broker', () => new Client('new'), 0);
    // Reads go on with the new password only.
    expect(map.get('amqp://u:new@broker', () => new Client('unused'), 1_500_000)).toBe(current);
    expect(await map.closeIdle(1_800_000, (c) => c.closed++, 1_800_000)).toBe(0);
    expect(await map.closeIdle(1_800_000, (c) => c.closed++, 1_800_001)).toBe(1);
    expect([old.closed, current.closed]).toEqual([1, 0]);
    expect(map.size).toBe(1);
    // A key closed as idle gets a new client when asked again.
    expect(map.get('amqp://u:old@broker', () => new Client('again'), 1_900_000).name).toBe('again');
  });

  it('waits for every close to finish', async () => {
    const map = new ClientMap<Client>();
    map.get('slow', () => new Client('slow'));
    let finished = false;
    await map.close(() => new Promise<void>((resolve) => setTimeout(() => ((finished = true), resolve()), 20)));
    expect(finished).toBe(true);
  });
});
