// Entry point: configuration from the environment, start, and a graceful stop on SIGTERM/SIGINT.
import * as grpc from '@grpc/grpc-js';
import { ConfigError, loadConfig } from './config.ts';
import { errorMessage } from './errors.ts';
import { startScaler } from './server/server.ts';
import { type Logger, createLogger } from './telemetry/logger.ts';

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
  setTimeout(() => logger.flush(exit), 100);
}

async function main(): Promise<void> {
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
    error: (...a: unknown[]) => grpcLog.warn(line(a)),
    info: (...a: unknown[]) => grpcLog.info(line(a)),
    debug: (...a: unknown[]) => grpcLog.debug(line(a)),
  });
  // The logger serializes an error with its stack (and redacts it), and logs a thrown non-Error as
  // it is: String() of one dropped the stack, and err.message of a string was nothing.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  process.on('uncaughtException', (err) => logger.error({ err }, 'uncaught exception'));
  // A signal while starting (a store that takes its time, a rollout that changes its mind) ends the
  // process: nothing is served yet to drain. Without a handler, node as PID 1 (the image's) ignored
  // it, and ran until the kubelet's SIGKILL (found by review).
  const duringStart = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'signal while starting: exiting');
    exitAfterLog(logger, 0);
  };
  process.on('SIGTERM', duringStart);
  process.on('SIGINT', duringStart);
  let scaler;
  try {
    scaler = await startScaler(config, { logger });
  } catch (err) {
    // A port taken, a certificate unreadable: exit, so that the pod restarts and says why, instead
    // of staying up serving nothing.
    logger.fatal({ err: errorMessage(err) }, 'start failed');
    exitAfterLog(logger, 1);
    return;
  } finally {
    process.off('SIGTERM', duringStart);
    process.off('SIGINT', duringStart);
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      exitAfterLog(logger, 1);
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
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

void main();
