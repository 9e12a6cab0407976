// Streaming calls a stop must end itself: grpc-js's tryShutdown waits for every call, so one left
// open (a health Watch, a reflection client) held a stop for its whole budget. A call that comes
// after the stop ended them (before the server refuses new ones) is not kept.
import type { EventEmitter } from 'node:events';

type Call = Pick<EventEmitter, 'on'> & { end(): void };

export class OpenCalls<C extends Call> {
  private readonly open = new Set<C>();
  private ending = false;

  get size(): number {
    return this.open.size;
  }

  /** Keeps `call` while it lasts; false once endAll ran, and the caller ends it. */
  admit(call: C): boolean {
    if (this.ending) return false;
    this.open.add(call);
    const done = () => this.open.delete(call);
    for (const event of ['close', 'finish', 'cancelled', 'error']) call.on(event, done);
    return true;
  }

  /** Ends every call kept (with OK), and from now on admits none. */
  endAll(): void {
    this.ending = true;
    for (const call of this.open) call.end();
    this.open.clear();
  }
}
