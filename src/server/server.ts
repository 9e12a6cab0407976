// Assembles the process: gRPC server (ExternalScaler, health, reflection, TLS), the HTTP side
// port, the engine and the sources, and stops them in order on shutdown.
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import * as protoLoader from '@grpc/proto-loader';
import type { Config } from '../config.ts';
import { Engine } from '../engine.ts';
import { createStateStore } from '../state/index.ts';
import {
  PUBLISH_INTERVAL_MS,
  STATE_FORMAT,
  type SharedTriggerState,
  sharedStateSchema,
  shiftSharedState,
} from '../state/payload.ts';
import { SharedState } from '../state/shared.ts';
import { type LazySourceDriver, SourceRegistry } from '../sources/index.ts';
import type { SourceDriver } from '../sources/source.ts';
import { type Logger, silentLogger } from '../telemetry/logger.ts';
import { ScalerMetrics } from '../telemetry/metrics.ts';
import { ExternalScalerService } from './externalScaler.ts';
import { createHttpServer } from './http.ts';
import { Health } from './health.ts';
import { errorMessage } from '../errors.ts';
import { PROTO_PATH, SERVICE_NAME, externalScalerService } from './protocol.ts';
import { type DriverOptions, defaultDrivers } from '../sources/drivers.ts';
import { LoopAdmission } from './loopAdmission.ts';
import { OpenCalls } from './openCalls.ts';
import { STREAM_OPEN_STEP, http2ServersOf, paceStreamOpens, sessionCloser } from './streamPacing.ts';
import { ReloadingServerCredentials, logRefusedHandshakes } from './tls.ts';
import { MAX_TIMER_MS } from '../timers.ts';

/** Streams a connection may hold beyond GRPC_MAX_OPEN_STREAMS: unary calls in flight beside its streams. */
const UNARY_STREAMS_PER_CONNECTION = 1000;
/** A connection age under this is a setting in seconds read as milliseconds, most likely: warned about. */
const SHORT_CONNECTION_AGE_MS = 10_000;
/** The plaintext health port's bounds: a Check or Watch names a service (at most a few hundred bytes). */
const HEALTH_MAX_RECEIVE_BYTES = 16 * 1024;
const HEALTH_MAX_STREAMS = 100;

/** The most streams one connection may hold (its HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS, once raised). */
function streamsPerConnection(config: Pick<Config, 'GRPC_MAX_OPEN_STREAMS'>): number {
  return config.GRPC_MAX_OPEN_STREAMS + UNARY_STREAMS_PER_CONNECTION;
}

export type ServerConfig = Omit<Config, 'LOG_LEVEL' | 'CONFIG_FILE'>;

export interface RunningScaler {
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly healthPort: number | undefined;
  readonly engine: Engine;
  readonly metrics: ScalerMetrics;
  /** Graceful stop: NOT_SERVING, end streams, drain, then force. */
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** The source drivers (default: every kind, each loaded on first use). */
  readonly drivers?: (options: DriverOptions) => (SourceDriver | LazySourceDriver)[];
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** How often TLS files are re-read for a rotated certificate (default 30 s). */
  readonly tlsReloadIntervalMs?: number;
}

function serverCredentials(config: ServerConfig, logger: Logger): grpc.ServerCredentials {
  if (config.TLS_CERT_FILE === undefined || config.TLS_KEY_FILE === undefined) return grpc.ServerCredentials.createInsecure();
  return new ReloadingServerCredentials(
    { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE, clientCaFile: config.TLS_CLIENT_CA_FILE },
    logger,
  );
}

/** A port that could not be taken, naming the variables that chose it. */
function cannotListen(address: string, variable: string, err: Error): Error {
  return new Error(`cannot listen on ${address} (BIND_ADDRESS, ${variable}): ${err.message}`);
}

/** Binds `address`; a failure names the address and the variable that set its port. */
function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials, variable: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => (err ? reject(cannotListen(address, variable, err)) : resolve(port)));
  });
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export async function startScaler(config: ServerConfig, options: StartOptions = {}): Promise<RunningScaler> {
  const logger = options.logger ?? silentLogger();
  const metrics = new ScalerMetrics(undefined, { triggerMetrics: config.TRIGGER_METRICS });
  const registry = new SourceRegistry((options.drivers ?? defaultDrivers)({ logger, timeoutMs: config.SOURCE_TIMEOUT_MS }));
  // In memory (one replica) unless STATE_STORE_URL names a shared store; a store that does not
  // answer yet comes back degraded and keeps trying.
  const store = await createStateStore<SharedTriggerState>(config, {
    format: STATE_FORMAT,
    schema: sharedStateSchema,
    shift: shiftSharedState,
    logger,
    metrics: metrics.stateStore,
  });
  const shared = store.kind === 'redis' ? new SharedState(store, { logger, publishIntervalMs: PUBLISH_INTERVAL_MS }) : undefined;
  shared?.start();
  if (shared !== undefined) metrics.stateStore.observeRoles(() => shared.roles());
  const admission = new LoopAdmission({ targetUtilization: config.LOOP_TARGET_UTILIZATION });
  metrics.observeReadsWaiting(() => admission.queued);
  const engine = new Engine({
    registry,
    cacheTtlMs: config.CACHE_TTL_MS,
    sourceTimeoutMs: config.SOURCE_TIMEOUT_MS,
    logger,
    metrics,
    profiles: config.profiles,
    env: options.env ?? process.env,
    shared,
    readAdmission: admission,
    retentionMs: config.STATE_RETENTION_MS,
  });
  const scaler = new ExternalScalerService({
    engine,
    logger,
    metrics,
    streamIntervalMs: config.STREAM_INTERVAL_MS,
    maxOpenStreams: config.GRPC_MAX_OPEN_STREAMS,
    maxStreamAgeMs: config.GRPC_MAX_CONNECTION_AGE_MS,
  });
  const health = new Health({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
  // The idle sweep runs with the calls; once none come it still releases what they left.
  const sweeper = setInterval(() => engine.sweepIdle(), IDLE_SWEEP_INTERVAL_MS);
  sweeper.unref();

  const grpcServer = new grpc.Server(grpcServerOptions(config));
  grpcServer.addService(externalScalerService, scaler.handlers());
  health.addToServer(grpcServer);
  // Reflection describes every service served here, health included (grpcurl, grpc_cli). Its
  // streams are tracked: one left open (grpcui, a client that keeps it) held a stop for the whole
  // budget, then the server was closed by force (found by review).
  const reflectionStreams = new OpenCalls<grpc.ServerDuplexStream<unknown, unknown>>();
  new ReflectionService(protoLoader.loadSync([PROTO_PATH, healthProtoPath], { keepCase: true })).addToServer(
    trackingStreams(grpcServer, reflectionStreams),
  );
  const credentials = serverCredentials(config, logger);
  const grpcPort = await bind(grpcServer, hostPort(config.BIND_ADDRESS, config.GRPC_PORT), credentials, 'GRPC_PORT');
  paceStreamOpens(grpcServer, { step: STREAM_OPEN_STEP, max: streamsPerConnection(config) });
  if (credentials instanceof ReloadingServerCredentials) {
    credentials.startWatching(options.tlsReloadIntervalMs ?? 30_000);
    logRefusedHandshakes(http2ServersOf(grpcServer).keys(), logger);
    metrics.observeTls(credentials);
  }

  let healthServer: grpc.Server | undefined;
  let healthPort: number | undefined;
  if (config.HEALTH_PORT > 0) {
    // Health alone, without TLS: a probe's request is a service name, and a probe needs a stream
    // or two (found by review: 4 MiB messages and any number of streams were taken here).
    healthServer = new grpc.Server({
      'grpc.max_receive_message_length': HEALTH_MAX_RECEIVE_BYTES,
      'grpc.max_concurrent_streams': HEALTH_MAX_STREAMS,
    });
    health.addToServer(healthServer);
    healthPort = await bind(
      healthServer,
      hostPort(config.BIND_ADDRESS, config.HEALTH_PORT),
      grpc.ServerCredentials.createInsecure(),
      'HEALTH_PORT',
    );
  }

  let serving = true;
  const http: HttpServer = createHttpServer({
    metrics,
    logger,
    engine,
    ready: () => serving,
    sourceLabels: (trigger) => engine.sourceLabels(trigger),
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', (err) => reject(cannotListen(hostPort(config.BIND_ADDRESS, config.METRICS_PORT), 'METRICS_PORT', err)));
    http.listen(config.METRICS_PORT, config.BIND_ADDRESS, () => resolve());
  });
  const metricsPort = (http.address() as AddressInfo).port;
  logger.info(
    {
      grpcPort,
      metricsPort,
      healthPort,
      tls: config.TLS_CERT_FILE !== undefined,
      mutualTls: config.TLS_CLIENT_CA_FILE !== undefined,
      stateStore: store.kind,
      writerId: store.writerId,
    },
    'keda-inference-scaler listening',
  );
  // A stop cuts what is still reading when its drain is over: KEDA sees INTERNAL ("call ended
  // without gRPC status") instead of an answer or a source's error (found by review).
  const drainMs = drainBudgetMs(config.SHUTDOWN_TIMEOUT_MS);
  if (drainMs < config.SOURCE_TIMEOUT_MS) {
    logger.warn(
      { SHUTDOWN_TIMEOUT_MS: config.SHUTDOWN_TIMEOUT_MS, SOURCE_TIMEOUT_MS: config.SOURCE_TIMEOUT_MS, drainMs },
      'SHUTDOWN_TIMEOUT_MS leaves calls less time to drain than a source read may take (SOURCE_TIMEOUT_MS): a call reading a slow source when a stop begins is cut',
    );
  }

  // Found by review: 300 (seconds meant) ended KEDA's streams every quarter second, without a word.
  if (config.GRPC_MAX_CONNECTION_AGE_MS < SHORT_CONNECTION_AGE_MS) {
    logger.warn(
      { GRPC_MAX_CONNECTION_AGE_MS: config.GRPC_MAX_CONNECTION_AGE_MS },
      "GRPC_MAX_CONNECTION_AGE_MS is under 10 s: KEDA's connections and streams end that often (it is in milliseconds)",
    );
  }

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      // One budget for the whole stop, less a moment for the exit itself: a broker or store that
      // never answers a close (blackholed) must not keep the process from exiting (amqplib waits
      // for a CloseOk forever).
      const budgetMs = stopBudgetMs(config.SHUTDOWN_TIMEOUT_MS);
      const deadlineMs = Date.now() + budgetMs;
      const left = () => Math.max(1, deadlineMs - Date.now());
      serving = false;
      clearInterval(sweeper);
      if (credentials instanceof ReloadingServerCredentials) credentials.stopWatching();
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(SERVICE_NAME, 'NOT_SERVING');
      // tryShutdown waits for open server streams: end them first (KEDA re-opens them elsewhere),
      // and the health Watches, which have just said NOT_SERVING.
      scaler.endStreams();
      health.endWatches();
      reflectionStreams.endAll();
      // Calls in flight get the budget but a reserve for closing what they read from.
      // Reads still waiting for room start now: their calls are among those in flight.
      admission.close();
      await shutdown(grpcServer, drainMs, 'the gRPC server', logger);
      if (healthServer !== undefined) await shutdown(healthServer, Math.min(1000, left()), 'the health server', logger);
      // What it learned since its last publishes, then its leases given up, so another writer takes
      // over at once: before the sources, whose close can take the rest of the budget (a broker
      // that never answers one), and neither needs them (found by review).
      await within(engine.publishOwed(), left() / 3, 'publishing the learned state', logger);
      await within(shared?.close() ?? store.close(), left() / 2, 'closing the state store', logger);
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
      await within(registry.close(), left(), 'closing the sources', logger);
      logger.info('keda-inference-scaler stopped');
    })();
    return stopping;
  };
  return { grpcPort, metricsPort, healthPort, engine, metrics, stop };
}

/** `server` to add a service to, whose streaming calls are kept in `streams`. */
function trackingStreams(
  server: grpc.Server,
  streams: OpenCalls<grpc.ServerDuplexStream<unknown, unknown>>,
  max = MAX_REFLECTION_STREAMS,
): Pick<grpc.Server, 'addService'> {
  return {
    addService(service: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation): void {
      const tracked: grpc.UntypedServiceImplementation = {};
      for (const [name, handler] of Object.entries(handlers)) {
        tracked[name] = !service[name]?.responseStream
          ? handler
          : (call: grpc.ServerDuplexStream<unknown, unknown>) => {
              if (streams.size >= max) {
                call.emit('error', {
                  code: grpc.status.RESOURCE_EXHAUSTED,
                  details: `${max} reflection streams are open; allowed: fewer at once`,
                });
                return;
              }
              if (streams.admit(call)) (handler as grpc.handleBidiStreamingCall<unknown, unknown>)(call);
              else call.end();
            };
      }
      server.addService(service, tracked);
    },
  };
}

/**
 * Reflection streams open at most, over all clients (grpcurl and grpc_cli open one a call): GRPC_MAX_OPEN_STREAMS
 * counts the scaler's own, and 600 reflection streams on one connection were all kept (found by
 * review: about 7 KB each, a few connections of them past the chart's heap).
 */
const MAX_REFLECTION_STREAMS = 100;

/**
 * A connection age grpc-js's up to 10 % of jitter keeps within a timer: past it the timer fired at
 * once and every connection was sent GOAWAY as it opened (found by review). MAX_TIMER_MS itself
 * is grpc-js's "no age".
 */
const MAX_JITTERED_AGE_MS = Math.floor(MAX_TIMER_MS / 1.1);

/** The gRPC server's channel options, from the configuration. */
export function grpcServerOptions(
  config: Pick<ServerConfig, 'GRPC_MAX_CONNECTION_AGE_MS' | 'GRPC_MAX_RECEIVE_MESSAGE_BYTES' | 'GRPC_MAX_OPEN_STREAMS'>,
): grpc.ServerOptions {
  return {
    // KEDA keeps one round_robin connection per address for the operator's life: a maximum age
    // lets new replicas take a share.
    'grpc.max_connection_age_ms':
      config.GRPC_MAX_CONNECTION_AGE_MS > MAX_JITTERED_AGE_MS ? MAX_TIMER_MS : config.GRPC_MAX_CONNECTION_AGE_MS,
    // Past its age a connection takes no new calls; the streams on it end themselves within one
    // more age (maxStreamAgeMs) with OK, which KEDA re-opens after 2 s. A shorter grace cut them
    // with UNAVAILABLE, after which KEDA backs off longer every time (2 s, 4 s, ... 1 min).
    'grpc.max_connection_age_grace_ms': Math.min(2 * config.GRPC_MAX_CONNECTION_AGE_MS, MAX_TIMER_MS),
    // No keepalive pings: grpc-js destroys a session whose ping it cannot send, and a session past
    // its age cannot be pinged, so the first ping after the age cut the streams still ending on it
    // (docs/reliability.md). A vanished client's connection goes with its age and grace instead.

    // Refused from the length prefix, never buffered (GRPC_MAX_RECEIVE_MESSAGE_BYTES).
    'grpc.max_receive_message_length': config.GRPC_MAX_RECEIVE_MESSAGE_BYTES,
    // One connection holds at most streamsPerConnection(): past it a client waits for a slot instead
    // of piling up requests that would only be refused (bench:abuse: 20,000 at once from one client
    // took RSS past the chart's limit while they were refused). It starts at one step and is
    // raised as its streams open (streamPacing.ts).
    'grpc.max_concurrent_streams': Math.min(STREAM_OPEN_STEP, streamsPerConnection(config)),
    // No channelz service is served; its per-call bookkeeping is garbage for nothing (bench:server).
    'grpc.enable_channelz': 0,
  };
}

/** How often the engine's idle sweep is offered a turn without a call (it runs at most once in 3 minutes). */
const IDLE_SWEEP_INTERVAL_MS = 60_000;

/** What a stop keeps for closing sources and the store after the gRPC drain: a fifth, at most 2 s. */
function closeReserveMs(budgetMs: number): number {
  return Math.min(2000, Math.floor(budgetMs / 5));
}

/** How long the exit waits for the last log lines before it flushes them and exits (run.ts). */
export const EXIT_LOG_WAIT_MS = 100;

/**
 * What SHUTDOWN_TIMEOUT_MS keeps for the signal to reach the handler and the process to exit after
 * the stop: a tenth, at most 1 s, and room for the exit's wait for the log unless that is more
 * than half. Less left a loaded node's exit at the very end of the timeout (bench:shutdown;
 * docs/reliability.md), and a timeout under 2 s past it (found by review: 387 ms for 300).
 */
function exitReserveMs(shutdownTimeoutMs: number): number {
  const forTheLog = Math.min(2 * EXIT_LOG_WAIT_MS, Math.floor(shutdownTimeoutMs / 2));
  return Math.min(1000, Math.max(Math.floor(shutdownTimeoutMs / 10), forTheLog));
}

/** The stop's budget: SHUTDOWN_TIMEOUT_MS less the exit's reserve. */
function stopBudgetMs(shutdownTimeoutMs: number): number {
  return shutdownTimeoutMs - exitReserveMs(shutdownTimeoutMs);
}

/** What of the stop's budget calls in flight get to finish: all but the close's reserve. */
function drainBudgetMs(shutdownTimeoutMs: number): number {
  const budgetMs = stopBudgetMs(shutdownTimeoutMs);
  return Math.max(1, budgetMs - closeReserveMs(budgetMs));
}

/** Waits for `work` at most `timeoutMs`; past that, logs and goes on (the exit closes the sockets). */
async function within(work: Promise<void>, timeoutMs: number, what: string, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([
    work.then(
      () => 'done' as const,
      (err: unknown) => {
        logger.warn({ err: errorMessage(err) }, `${what} failed`);
        return 'done' as const;
      },
    ),
    gaveUp,
  ]);
  clearTimeout(timer);
  if (outcome === 'timeout')
    logger.warn({ timeoutMs }, `${what} did not finish within the shutdown budget; leaving it to the exit`);
}

function shutdown(server: grpc.Server, timeoutMs: number, what: string, logger: Logger): Promise<void> {
  const closeSessions = sessionCloser(server);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      // Calls still in flight are cancelled (KEDA asks again at its next poll): a drain that needs
      // this every rollout wants a longer SHUTDOWN_TIMEOUT_MS, or a source that answers sooner.
      logger.warn({ timeoutMs }, `${what} still had calls in flight after the shutdown budget; closed by force`);
      server.forceShutdown();
      closeSessions();
      resolve();
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
