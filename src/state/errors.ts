// Errors of the state store. They never reach a gRPC caller: a caller that gets one evaluates on
// its own state instead, so they are not ScalerErrors (one that leaked would show as INTERNAL).
import type { StoreOp } from './types.ts';

/** The store did not answer within its timeout, refused the connection, or is not connected yet. */
export class StateStoreUnavailable extends Error {
  readonly op: StoreOp;

  constructor(op: StoreOp, message: string, options?: { cause?: unknown }) {
    super(`state store ${op}: ${message}`, options);
    this.op = op;
  }
}
