// Typed errors and their one mapping to gRPC status codes. Handlers never build statuses by hand.
import { status, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';

export class ScalerError extends Error {
  readonly code: status = status.INTERNAL;
}

/** Trigger metadata that does not pass the schema. The message names every bad key. */
export class InvalidTrigger extends ScalerError {
  override readonly code = status.INVALID_ARGUMENT;
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(`invalid trigger metadata: ${issues.join('; ')}`);
    this.issues = issues;
  }
}

/** The source is there but cannot be read now (broker down, timeout, refused connection). */
export class SourceUnavailable extends ScalerError {
  override readonly code = status.UNAVAILABLE;
}

/** The queue, topic, group or series named by the trigger does not exist. */
export class SourceNotFound extends ScalerError {
  override readonly code = status.NOT_FOUND;
}

/** The source refused our credentials. */
export class SourceUnauthenticated extends ScalerError {
  override readonly code = status.UNAUTHENTICATED;
}

/** The source answered with something we cannot use (NaN, several series, a bad query). */
export class SourceBadAnswer extends ScalerError {
  override readonly code = status.FAILED_PRECONDITION;
}

/** A source query ran past its deadline. */
export class SourceTimeout extends ScalerError {
  override readonly code = status.DEADLINE_EXCEEDED;
}

// Anchored on "://", not on the scheme: a scheme-first pattern retried from every letter of a long
// run of letters (a 100 KB metadata value) and took seconds, quadratic in its length.
const credentialsInUrl = /(:\/\/[^:/?#@\s]+:)[^@/\s]+@/g;

/** Strips `user:pass@` passwords from any text that may carry a URL (error texts, log lines). */
export function redact(text: string): string {
  return text.replace(credentialsInUrl, '$1***@');
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return redact(err.message);
  return redact(String(err));
}

/** The one place where an error becomes a gRPC status. Unknown errors are INTERNAL, never OK. */
export function toServiceError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  const code = err instanceof ScalerError ? err.code : status.INTERNAL;
  const details = errorMessage(err);
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}

export function statusName(code: status): string {
  return status[code] ?? String(code);
}
