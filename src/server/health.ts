// grpc.health.v1 for the scaler's servers: grpc-health-check's implementation, plus what a graceful
// stop and an open port need from it. Its Watch streams never end on their own, and grpc-js's
// tryShutdown waits for every open stream: one Watch held the whole stop until its timeout, then
// was cut (UNAVAILABLE) with whatever else was still running. endWatches() ends them (OK), after
// they have carried NOT_SERVING. The library keeps a watcher set per service name a client sends
// and quotes the name whole in Check's NOT_FOUND: here a name the scaler does not serve is answered
// at once (Check: NOT_FOUND, the name cut short; Watch: SERVICE_UNKNOWN, then the stream ends, since
// the scaler's services are fixed at start), and open Watches are capped (found by review: held
// open with 256 KiB names they reached past the stream limit and the heap).
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { quote } from '../errors.ts';
import { OpenCalls } from './openCalls.ts';

type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** Open Watch streams at most, over all clients; more are refused with RESOURCE_EXHAUSTED. */
const MAX_HEALTH_WATCHES = 1000;

interface HealthRequest {
  readonly service?: string;
}

export class Health {
  private readonly implementation: HealthImplementation;
  private readonly services: ReadonlySet<string>;
  private readonly watches = new OpenCalls<grpc.ServerWritableStream<HealthRequest, unknown>>();
  private readonly maxWatches: number;

  constructor(statuses: Record<string, ServingStatus>, maxWatches = MAX_HEALTH_WATCHES) {
    this.implementation = new HealthImplementation(statuses);
    this.services = new Set(Object.keys(statuses));
    this.maxWatches = maxWatches;
  }

  setStatus(service: string, status: ServingStatus): void {
    this.implementation.setStatus(service, status);
  }

  /** Adds Check, Watch and List to `server`, with unknown names answered here and every Watch tracked. */
  addToServer(server: grpc.Server): void {
    const { watches, services, maxWatches } = this;
    const tracking = {
      addService(service: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation): void {
        const check = handlers.check as grpc.handleUnaryCall<HealthRequest, unknown>;
        const watch = handlers.watch as grpc.handleServerStreamingCall<HealthRequest, unknown>;
        server.addService(service, {
          ...handlers,
          check: (call: grpc.ServerUnaryCall<HealthRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
            const name = call.request.service ?? '';
            if (services.has(name)) return check(call, callback);
            callback({ code: grpc.status.NOT_FOUND, details: `Health status unknown for service ${quote(name)}` });
          },
          watch: (call: grpc.ServerWritableStream<HealthRequest, unknown>) => {
            if (!services.has(call.request.service ?? '')) {
              call.write({ status: 'SERVICE_UNKNOWN' });
              call.end();
              return;
            }
            if (watches.size >= maxWatches) {
              call.emit('error', {
                code: grpc.status.RESOURCE_EXHAUSTED,
                details: `${maxWatches} health Watch streams are open; allowed: Check, or fewer Watches`,
              });
              return;
            }
            // After endWatches (a stop): it would hold the stop until its budget (found by review).
            if (!watches.admit(call)) {
              call.write({ status: 'NOT_SERVING' });
              call.end();
              return;
            }
            watch(call);
          },
        });
      },
    };
    this.implementation.addToServer(tracking as unknown as grpc.Server);
  }

  /** Ends every open Watch with OK, and any that comes after; a client watching health then sees the server go. */
  endWatches(): void {
    this.watches.endAll();
  }
}
