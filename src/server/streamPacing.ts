// Stream opens paced per connection. A client that opens thousands of streams at once (KEDA
// re-opening its external-push streams after a restart, or abuse) sends them in a few socket
// reads, and Node hands a read's few hundred stream opens to grpc-js in one go: the event loop
// stalled for 50-400 ms, and every other call waited (docs/reliability.md, "Abuse"). A connection
// starts with room for STREAM_OPEN_STEP streams (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS, the
// server's option) and is given a step more, one loop turn later, each time its open streams fill
// half of its room: a client opens about a step per read, other connections are served in
// between, and no connection is held below what it uses. Up to the configured cap.
import { type Http2SecureServer, type Http2Server, type ServerHttp2Session, constants } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

/** Streams a connection may open before its next raise. */
export const STREAM_OPEN_STEP = 100;

export interface Pacing {
  /** The room a connection starts with and is raised by. */
  readonly step: number;
  /** The most a connection is raised to. */
  readonly max: number;
}

const paced = new WeakSet<ServerHttp2Session>();

/** Raises `session`'s stream limit, a step at a time, as its streams fill it. */
export function paceSession(session: ServerHttp2Session, { step, max }: Pacing): void {
  if (paced.has(session)) return;
  paced.add(session);
  let limit = Math.min(step, max);
  let open = 0;
  let raising = false;
  session.on('stream', (stream) => {
    // At the cap the count is no longer needed: the limit is never lowered.
    if (limit >= max) return;
    open++;
    stream.once('close', () => open--);
    if (raising || open < limit - step / 2) return;
    raising = true;
    setImmediate(() => {
      raising = false;
      if (session.closed || session.destroyed) return;
      const next = Math.min(max, Math.max(limit, open + step));
      try {
        session.settings({ maxConcurrentStreams: next });
        limit = next;
      } catch {
        // Node refuses new settings while a client leaves earlier ones unacknowledged (a client
        // that follows the protocol acknowledges each at once): that client stays where it is.
      }
    });
  });
}

interface GrpcServerInternals {
  readonly http2Servers?: Map<Http2Server | Http2SecureServer, { readonly sessions: Set<ServerHttp2Session> }>;
}

/**
 * The HTTP/2 servers of a bound grpc-js server and their sessions. grpc-js exposes no hook for
 * them; its private map is read here (the one place), and a grpc-js without it fails the start.
 */
export function http2ServersOf(
  server: grpc.Server,
): ReadonlyMap<Http2Server | Http2SecureServer, { readonly sessions: Set<ServerHttp2Session> }> {
  const servers = (server as unknown as GrpcServerInternals).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) {
    throw new Error('grpc-js keeps no map of its HTTP/2 servers: stream opens cannot be paced (see src/server/streamPacing.ts)');
  }
  return servers;
}

/**
 * Ends every connection of a bound grpc-js server at once, its calls in flight cancelled.
 * grpc-js' forceShutdown destroys only the sessions it tracks for channelz (1.14), none with
 * channelz off as here (`grpc.enable_channelz` 0): a call in flight then waited for its client's
 * deadline however the stop was forced.
 */
export function sessionCloser(server: grpc.Server): () => void {
  const holders = [...http2ServersOf(server).values()];
  return () => {
    for (const { sessions } of holders)
      for (const session of sessions) if (!session.destroyed) session.destroy(undefined, constants.NGHTTP2_CANCEL);
  };
}

/**
 * Paces every connection of a bound grpc-js server: those it has, and those to come. grpc-js
 * exposes no hook for its HTTP/2 sessions; its map of them is read here, and a grpc-js that no
 * longer has it fails the start (connections left at the first step would hold KEDA below its
 * streams).
 */
export function paceStreamOpens(server: grpc.Server, pacing: Pacing): void {
  for (const [http2Server, { sessions }] of http2ServersOf(server)) {
    for (const session of sessions) paceSession(session, pacing);
    http2Server.on('session', (session: ServerHttp2Session) => paceSession(session, pacing));
  }
}
