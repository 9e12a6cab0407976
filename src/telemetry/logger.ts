// JSON-line logging (pino). Every log line goes through redaction of URL credentials.
import { pino, type Logger } from 'pino';
import { redact } from '../errors.ts';

export type { Logger };

/** The process's logger: JSON lines on stdout, or on `destination` (tests read what would be logged). */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'keda-inference-scaler' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    hooks: {
      logMethod(args, method) {
        const redacted = args.map((a) => (typeof a === 'string' ? redact(a) : a)) as typeof args;
        method.apply(this, redacted);
      },
    },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** A logger that drops everything, for tests and the simulator. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
