// grpc.health.v1 for the scaler's servers: grpc-health-check's implementation, plus the one thing
// a graceful stop needs from it. Its Watch streams never end on their own, and grpc-js's
// tryShutdown waits for every open stream: one Watch held the whole stop until its timeout, then
// was cut (UNAVAILABLE) with whatever else was still running. endWatches() ends them (OK), after
// they have carried NOT_SERVING.
import type * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';

type ServingStatus = 'SERVING' | 'NOT_SERVING';

export class Health {
  private readonly implementation: HealthImplementation;
  private readonly watches = new Set<grpc.ServerWritableStream<unknown, unknown>>();

  constructor(statuses: Record<string, ServingStatus>) {
    this.implementation = new HealthImplementation(statuses);
  }

  setStatus(service: string, status: ServingStatus): void {
    this.implementation.setStatus(service, status);
  }

  /** Adds Check, Watch and List to `server`, with every Watch tracked. */
  addToServer(server: grpc.Server): void {
    const watches = this.watches;
    const tracking = {
      addService(service: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation): void {
        const watch = handlers.watch as grpc.handleServerStreamingCall<unknown, unknown>;
        server.addService(service, {
          ...handlers,
          watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
            watches.add(call);
            const forget = () => watches.delete(call);
            call.on('cancelled', forget);
            call.on('finish', forget);
            watch(call);
          },
        });
      },
    };
    this.implementation.addToServer(tracking as unknown as grpc.Server);
  }

  /** Ends every open Watch with OK; a client watching health then sees the server go. */
  endWatches(): void {
    for (const call of this.watches) call.end();
    this.watches.clear();
  }
}
