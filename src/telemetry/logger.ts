// JSON-line logging (pino). Every log line goes through redaction of URL credentials: the message
// and the string fields of the object logged with it (an error's message and stack included).
import { pino, type Logger } from 'pino';
import { redact } from '../errors.ts';

export type { Logger };

/** A copy of `err` (same class, so pino's serializer names it alike) with its strings redacted. */
function redactError(err: Error): Error {
  const copy = Object.create(Object.getPrototypeOf(err) as object) as Error;
  for (const key of Object.getOwnPropertyNames(err)) {
    const value: unknown = (err as unknown as Record<string, unknown>)[key];
    Object.defineProperty(copy, key, {
      value: typeof value === 'string' ? redact(value) : value,
      enumerable: Object.prototype.propertyIsEnumerable.call(err, key),
      writable: true,
      configurable: true,
    });
  }
  return copy;
}

function redactValue(value: unknown): unknown {
  if (typeof value === 'string') return redact(value);
  return value instanceof Error ? redactError(value) : value;
}

/** The message, or the object logged with it one level deep (where every call here puts its strings). */
function redactArg(arg: unknown): unknown {
  if (arg === null || typeof arg !== 'object' || arg instanceof Error) return redactValue(arg);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(arg)) out[key] = redactValue(value);
  return out;
}

/** The process's logger: JSON lines on stdout, or on `destination` (tests read what would be logged). */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'keda-inference-scaler' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map(redactArg) as typeof args);
      },
    },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** A logger that drops everything, for tests and the simulator. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
