// The project's typed errors, raised by sources, the cache and the schema. Each carries a code named
// as the gRPC status KEDA will see (server/status.ts maps it there, the one place that knows gRPC),
// and helpers that keep what an error says short and free of credentials.

/** What went wrong, in the words of the gRPC status it becomes. */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'UNAUTHENTICATED'
  | 'UNAVAILABLE'
  | 'FAILED_PRECONDITION'
  | 'DEADLINE_EXCEEDED'
  | 'RESOURCE_EXHAUSTED'
  | 'INTERNAL';

export class ScalerError extends Error {
  readonly code: ErrorCode = 'INTERNAL';

  /**
   * Without a stack: these are expected outcomes (a bad trigger, a broker that cannot be read),
   * told by their message and never logged with one; capturing it was most of what refusing a
   * call cost (docs/reliability.md, "Abuse").
   */
  constructor(message?: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
  }
}

/** An error's code: its own for the project's errors, INTERNAL for anything else (never OK). */
export function errorCode(err: unknown): ErrorCode {
  return err instanceof ScalerError ? err.code : 'INTERNAL';
}

/** Most characters of one key or value that an error quotes: enough to recognise it. */
export const QUOTED_CHARS = 60;

/**
 * Most characters of a status's details. They are printable ASCII, so percent-encoded at most 3 bytes
 * each: well under the 8 KiB of trailers gRPC tells clients to accept (a grpc-js client lost its
 * connection over a 93 KB one).
 */
export const MAX_DETAILS_CHARS = 1000;

const INVALID_TRIGGER = 'invalid trigger metadata: ';

/** Trigger metadata that does not pass the schema. The message names the first bad keys and counts the rest. */
export class InvalidTrigger extends ScalerError {
  /** The problems an InvalidTrigger keeps (its message lists as many as fit). */
  static readonly KEPT = 10;
  override readonly code = 'INVALID_ARGUMENT';
  /** The first problems found, each naming its key and what is allowed. */
  readonly issues: readonly string[];
  /** How many problems were found in all. */
  readonly total: number;
  constructor(issues: readonly string[], total = issues.length) {
    super(INVALID_TRIGGER + listWithin(issues, total, MAX_DETAILS_CHARS - INVALID_TRIGGER.length));
    this.issues = issues.slice(0, InvalidTrigger.KEPT);
    this.total = total;
  }
}

/** The source is there but cannot be read now (broker down, timeout, refused connection). */
export class SourceUnavailable extends ScalerError {
  override readonly code = 'UNAVAILABLE';
}

/** The queue, topic, group or series named by the trigger does not exist. */
export class SourceNotFound extends ScalerError {
  override readonly code = 'NOT_FOUND';
}

/** The source refused our credentials. */
export class SourceUnauthenticated extends ScalerError {
  override readonly code = 'UNAUTHENTICATED';
}

/** The source answered with something we cannot use (NaN, several series, a bad query). */
export class SourceBadAnswer extends ScalerError {
  override readonly code = 'FAILED_PRECONDITION';
}

/** The server holds as many streams as it is configured to (GRPC_MAX_OPEN_STREAMS); KEDA retries. */
export class TooManyStreams extends ScalerError {
  override readonly code = 'RESOURCE_EXHAUSTED';
}

/** A source query ran past its deadline. */
export class SourceTimeout extends ScalerError {
  override readonly code = 'DEADLINE_EXCEEDED';
}

// Anchored on "://", not on the scheme: a scheme-first pattern retried from every letter of a long
// run of letters (a 100 KB metadata value) and took seconds, quadratic in its length. The user may
// be empty (redis://:password@host is how Redis URLs carry a password alone) or hold "@" (an email
// address); the password runs to the last "@" before the path, as URL parsers read it, so one with
// "@" written raw is masked whole. Both stop at "/", "?", "#" or a space: the scan from one "://"
// ends at the next, and the time stays linear.
const credentialsInUrl = /(:\/\/[^:/?#\s]*:)[^/?#\s]+@/g;

/** Strips `user:pass@` passwords from any text that may carry a URL (error texts, log lines). */
export function redact(text: string): string {
  return text.replace(credentialsInUrl, '$1***@');
}

/** An error's text as it may leave the process (status details, log fields): credentials masked, clipped. */
export function errorMessage(err: unknown): string {
  return clip(redact(err instanceof Error ? err.message : String(err)));
}

/**
 * A user's key or value as an error quotes it: credentials masked, in double quotes, escaped to
 * printable ASCII, and cut to maxChars in all, with its length when cut.
 */
export function quote(value: string, maxChars = QUOTED_CHARS): string {
  return cut(redact(value), maxChars, '"');
}

/** Text cut to maxChars of printable ASCII (others escaped as \uXXXX), with its length when cut. */
export function clip(text: string, maxChars = MAX_DETAILS_CHARS): string {
  return cut(text, maxChars, '');
}

/** The one cut behind quote() and clip(); it costs maxChars, whatever the length of `text`. */
function cut(text: string, maxChars: number, quotes: '"' | ''): string {
  const room = maxChars - 2 * quotes.length;
  const whole = escapedWithin(text, room, quotes !== '');
  if (whole.complete) return quotes + whole.head + quotes;
  const note = `... (${text.length} chars)`;
  return quotes + escapedWithin(text, room - note.length, quotes !== '').head + quotes + note;
}

function escapedWithin(text: string, maxChars: number, quoted: boolean): { head: string; complete: boolean } {
  let head = '';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const char =
      code < 0x20 || code > 0x7e
        ? `\\u${code.toString(16).padStart(4, '0')}`
        : quoted && (code === 0x22 || code === 0x5c)
          ? `\\${text[i]}`
          : text[i]!;
    if (head.length + char.length > maxChars) return { head, complete: false };
    head += char;
  }
  return { head, complete: true };
}

/** As many items as fit in maxChars (the first always, clipped), then how many of `total` were left out. */
function listWithin(items: readonly string[], total: number, maxChars: number): string {
  const rest = (shown: number) => (shown < total ? `; and ${total - shown} more` : '');
  const room = maxChars - rest(0).length;
  let text = clip(items[0] ?? '', room);
  let shown = Math.min(1, items.length);
  while (shown < items.length && text.length + 2 + items[shown]!.length <= room) text += `; ${items[shown++]}`;
  return text + rest(shown);
}
