// What the fault harness needs from each kind of source: triggers whose true answer is known, the
// network path to fault (TCP proxies), and the service-side faults (credentials, deletion).
import type { ChildProcess } from 'node:child_process';
import type { TcpProxy } from '../../test/support/tcpProxy.ts';

export const BED_KINDS = ['rabbitmq-amqp', 'rabbitmq-http', 'sqs', 'kafka', 'gpu'] as const;
export type BedKind = (typeof BED_KINDS)[number];

export const FAULT_KINDS = ['stopped', 'restarted', 'slow', 'blackholed', 'credentials', 'recreated'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Every queue holds this many ready messages and nobody consumes them. */
export const BACKLOG = 12;
/** With messagesPerReplica 5 and no throughput known, D = ceil(12 / 5). */
export const MESSAGES_PER_REPLICA = 5;
export const QUEUE_REPLICAS = Math.ceil(BACKLOG / MESSAGES_PER_REPLICA);

export interface SourceBed {
  readonly kind: BedKind;
  /** Distinct sources (queues, topics, queries); triggers are spread over them. */
  readonly sources: number;
  /** D that every trigger of this bed must answer (with active true) while its source is healthy. */
  readonly expectedReplicas: number;
  /** The network path between the scaler and the service, faulted by stop/blackhole/delay. */
  readonly proxies: readonly TcpProxy[];
  /** Environment the scaler needs for this bed (credentials from the AWS chain, Kafka routes). */
  readonly scalerEnv?: Readonly<Record<string, string>>;
  /** Kafka only: broker address -> proxy port (see scalerChild.ts). */
  readonly kafkaRoutes?: Readonly<Record<string, number>>;
  /** Trigger metadata reading source i. */
  metadata(source: number): Record<string, string>;
  /** What the service itself holds for the scaler (e.g. RabbitMQ's connections and channels), when it says. */
  brokerSide?(): Promise<{ connections: number; channels: number }>;
  /** Waits until the service, read directly, holds the expected backlog in every source. */
  ready(): Promise<void>;
  /** A restart's own step before the network cut (e.g. the broker closing its connections). */
  restart?(): Promise<void>;
  /** The scaler's credentials stop working (password changed, permission revoked)... */
  breakCredentials?(): Promise<void>;
  /** ...and work again. */
  restoreCredentials?(): Promise<void>;
  /** Deletes every source of the bed (queue, topic)... */
  deleteSources?(): Promise<void>;
  /** ...and creates them again with the same names and backlog. */
  recreateSources?(): Promise<void>;
  close(): Promise<void>;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it is true, or throws after timeoutMs naming `what`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await sleep(everyMs);
  }
}

/** Processes the harness started (the scaler, a private moto): killed if the harness is interrupted. */
export const liveChildren = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}
