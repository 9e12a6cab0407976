// The scaler's life in a process: configuration from the environment, start, and a graceful stop
// on SIGTERM/SIGINT (main.ts takes the signals before this module loads and hands them over).
import * as grpc from '@grpc/grpc-js';
import type { Counter } from 'prom-client';
import { ConfigError, loadConfig } from './config.ts';
import { errorMessage } from './errors.ts';
import { EXIT_LOG_WAIT_MS, startScaler } from './server/server.ts';
import { type Logger, createLogger } from './telemetry/logger.ts';
import { UNCAUGHT_KINDS, type UncaughtKind } from './telemetry/metrics.ts';

/**
 * Exits once the log's last lines are written, a second at the most. At exit pino writes what is
 * left synchronously, and its writer (sonic-boom) retries a write that fails for good forever: with
 * stdout a pipe whose reader went away (EPIPE), the process never ended, a second signal
 * included. The write under way ends first (on EPIPE pino stops writing), then what is left is
 * flushed, asynchronously.
 */
function exitAfterLog(logger: Logger, code: number): void {
  const exit = () => process.exit(code);
  setTimeout(exit, 1000);
  setTimeout(() => logger.flush(exit), EXIT_LOG_WAIT_MS);
}

/**
 * Errors nothing caught: logged at error (with the stack; a thrown non-Error as it is), counted in
 * uncaught_errors_total, and the process kept serving what it can. Those before the metrics exist
 * are counted once they do.
 */
export class UncaughtErrors {
  private readonly before: Record<UncaughtKind, number> = { exception: 0, rejection: 0 };
  private counter: Counter<'kind'> | undefined;

  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  record(kind: UncaughtKind, err: unknown): void {
    this.logger.error({ err }, kind === 'exception' ? 'uncaught exception' : 'unhandled rejection');
    if (this.counter === undefined) this.before[kind]++;
    else this.counter.inc({ kind });
  }

  attach(counter: Counter<'kind'>): void {
    this.counter = counter;
    for (const kind of UNCAUGHT_KINDS) if (this.before[kind] > 0) counter.inc({ kind }, this.before[kind]);
  }
}

export type SignalHandler = (signal: NodeJS.Signals) => void;

/** A repeat of the first signal this soon is the same Ctrl-C (the terminal's and npm's), not a second. */
const SAME_SIGNAL_MS = 250;

/**
 * What a signal does. The first: exit at once while starting (nothing is served yet to drain: a
 * store that takes its time, a rollout that changes its mind), else stop gracefully. Then the same
 * signal within SAME_SIGNAL_MS is the first's echo; any other forces the exit.
 */
export class SignalPolicy {
  private first: { readonly signal: NodeJS.Signals; readonly atMs: number } | undefined;

  next(signal: NodeJS.Signals, nowMs: number, serving: boolean): 'exit' | 'stop' | 'echo' | 'force' {
    if (this.first === undefined) {
      this.first = { signal, atMs: nowMs };
      return serving ? 'stop' : 'exit';
    }
    return signal === this.first.signal && nowMs - this.first.atMs < SAME_SIGNAL_MS ? 'echo' : 'force';
  }

  /** Whether a signal came. */
  get signalled(): boolean {
    return this.first !== undefined;
  }
}

/** Runs the scaler; `onSignals` takes the handler for every SIGTERM and SIGINT from then on. */
export async function run(onSignals: (handler: SignalHandler) => void): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keda-inference-scaler: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.LOG_LEVEL);
  // grpc-js writes its own lines ("E No address added ...") to stderr: into the JSON log instead.
  const grpcLog = logger.child({ component: 'grpc-js' });
  const line = (a: unknown[]) => a.map(String).join(' ');
  grpc.setLogger({
    error: (...a: unknown[]) => grpcLog.error(line(a)),
    info: (...a: unknown[]) => grpcLog.info(line(a)),
    debug: (...a: unknown[]) => grpcLog.debug(line(a)),
  });
  // The logger serializes an error with its stack (and redacts it), and logs a thrown non-Error as
  // it is: String() of one dropped the stack, and err.message of a string was nothing.
  const uncaught = new UncaughtErrors(logger);
  process.on('unhandledRejection', (reason) => uncaught.record('rejection', reason));
  process.on('uncaughtException', (err) => uncaught.record('exception', err));
  let scaler: Awaited<ReturnType<typeof startScaler>> | undefined;
  const signals = new SignalPolicy();
  onSignals((signal) => {
    const action = signals.next(signal, performance.now(), scaler !== undefined);
    if (action === 'echo') return;
    if (action === 'force') {
      logger.warn({ signal }, 'second signal: exiting now');
      exitAfterLog(logger, 1);
      return;
    }
    if (action === 'exit' || scaler === undefined) {
      logger.info({ signal }, 'signal while starting: exiting');
      // The start goes on until the exit: its "listening" line would read as a scaler that serves.
      logger.level = 'silent';
      exitAfterLog(logger, 0);
      return;
    }
    logger.info({ signal }, 'shutting down');
    scaler.stop().then(
      () => exitAfterLog(logger, 0),
      (err: unknown) => {
        logger.error({ err: String(err) }, 'shutdown failed');
        exitAfterLog(logger, 1);
      },
    );
  });
  try {
    const started = await startScaler(config, { logger });
    uncaught.attach(started.metrics.uncaughtErrors);
    // A signal while it started: exiting already.
    if (!signals.signalled) scaler = started;
  } catch (err) {
    // A port taken, a certificate unreadable: exit, so that the pod restarts and says why, instead
    // of staying up serving nothing. A setting found wrong only now (a store's CA file) exits as a
    // wrong setting found at once does, 2.
    logger.fatal({ err: errorMessage(err) }, 'start failed');
    exitAfterLog(logger, err instanceof ConfigError ? 2 : 1);
  }
}
