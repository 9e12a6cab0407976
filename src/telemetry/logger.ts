// JSON-line logging (pino). Every log line goes through redaction of URL credentials: the message,
// and every string of the object logged with it, errors serialized first (their causes, aggregated
// errors and own fields included), nested values too.
import { pino, type Logger } from 'pino';
import { redact } from '../errors.ts';

export type { Logger };

/** How deep redaction walks the object logged: the project's lines are one or two levels deep. */
const MAX_DEPTH = 6;

/**
 * `value` with every string in it redacted: errors as pino's serializer writes them (message and
 * stack with their causes', aggregated errors, own fields), plain objects and arrays walked, a URL
 * object as its text. Never throws: what cannot be read is said to be so.
 */
function redactValue(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redact(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof URL) return redact(value.href);
  if (seen.has(value)) return '[not logged: seen above]';
  if (depth >= MAX_DEPTH) return '[not logged: too deep]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1, seen));
    // pino's serializer gives an error's fields (its aggregated errors' too) as objects of its own
    // prototype: made plain, as pino would write them, then walked.
    const fields = value instanceof Error ? (JSON.parse(JSON.stringify(pino.stdSerializers.err(value))) as object) : value;
    const proto = Object.getPrototypeOf(value) as unknown;
    // Buffers, Maps, class instances: left to pino as they are (none of ours carries a URL).
    if (fields === value && proto !== Object.prototype && proto !== null) return value;
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(fields)) out[key] = redactValue(field, depth + 1, seen);
    return out;
  } catch {
    return '[not logged: unreadable]';
  }
}

/** A line's arguments with their strings redacted; an error logged alone keeps its message as the line's. */
function redactArgs(args: unknown[]): unknown[] {
  const [first, ...rest] = args;
  if (!(first instanceof Error)) return args.map((a) => redactValue(a));
  const err = redactValue(first) as { message?: unknown } | string;
  const message = typeof err === 'object' && typeof err.message === 'string' ? err.message : '';
  return typeof rest[0] === 'string' ? [{ err }, ...rest.map((a) => redactValue(a))] : [{ err }, message];
}

/** The process's logger: JSON lines on stdout, or on `destination` (tests read what would be logged). */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'keda-inference-scaler' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Errors are serialized by the hook below, before redaction: pino's own serializer would take the
    // plain object for an error again (it has a message) and name its type Object.
    serializers: { err: (err: unknown) => err },
    hooks: {
      logMethod(args, method) {
        method.apply(this, redactArgs(args) as typeof args);
      },
    },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** A logger that drops everything, for tests and the simulator. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
