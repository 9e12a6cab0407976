// RabbitMQ's management API as its admin user, for tests that need a broker user of their own:
// one whose password and permissions they change, whose connections they close (as the broker does
// when it shuts down) and whose connections and channels they count as the broker sees them.

/** The management API as the admin (guest) user. */
export class RabbitAdmin {
  private readonly base: string;
  private readonly authorization: string;

  constructor(managementUrl: string) {
    const url = new URL(managementUrl);
    this.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    this.base = `${url.protocol}//${url.host}`;
  }

  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<unknown> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { authorization: this.authorization, 'content-type': 'application/json', ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok && res.status !== 404)
      throw new Error(`rabbitmq management ${method} ${path}: HTTP ${res.status} ${await res.text()}`);
    const text = await res.text();
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  }

  /** Creates the user or changes its password; `monitoring` lets it read the management API. */
  setUser(user: string, password: string): Promise<unknown> {
    return this.call('PUT', `/api/users/${encodeURIComponent(user)}`, { password, tags: 'monitoring' });
  }

  grant(user: string): Promise<unknown> {
    return this.call('PUT', `/api/permissions/%2F/${encodeURIComponent(user)}`, { configure: '.*', write: '.*', read: '.*' });
  }

  revoke(user: string): Promise<unknown> {
    return this.call('DELETE', `/api/permissions/%2F/${encodeURIComponent(user)}`);
  }

  /** Closes the user's AMQP connections as the broker does when it shuts down (connection.close). */
  async closeConnections(user: string, reason: string): Promise<number> {
    const all = ((await this.call('GET', '/api/connections?columns=name,user')) ?? []) as { name: string; user: string }[];
    const mine = all.filter((c) => c.user === user);
    for (const c of mine)
      await this.call('DELETE', `/api/connections/${encodeURIComponent(c.name)}`, undefined, { 'x-reason': reason });
    return mine.length;
  }

  /** The user's connections and the channels open on them, as the broker counts them. */
  async holdings(user: string): Promise<{ connections: number; channels: number }> {
    const all = ((await this.call('GET', '/api/connections?columns=user,channels')) ?? []) as {
      user: string;
      channels?: number;
    }[];
    const mine = all.filter((c) => c.user === user);
    return { connections: mine.length, channels: mine.reduce((n, c) => n + (c.channels ?? 0), 0) };
  }

  async queueMessages(queue: string): Promise<number | undefined> {
    const q = (await this.call('GET', `/api/queues/%2F/${encodeURIComponent(queue)}`)) as { messages_ready?: number } | undefined;
    return q?.messages_ready;
  }

  deleteUser(user: string): Promise<unknown> {
    return this.call('DELETE', `/api/users/${encodeURIComponent(user)}`);
  }
}
