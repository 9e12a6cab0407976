// The one place where an error becomes a gRPC status: the server's edge. Below it, errors carry
// the project's own codes (errors.ts), and nothing imports grpc-js.
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { errorCode, errorMessage } from '../errors.ts';

/** The status for `err`: its code, its message as it may leave the process. Unknown errors are INTERNAL, never OK. */
export function toServiceError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  const details = errorMessage(err);
  // A plain object: grpc-js reads code, details and metadata, and an Error would capture a stack per call.
  return { message: details, code: status[errorCode(err)], details, metadata: new Metadata() };
}
