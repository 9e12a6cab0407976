// kafkajs 2.2.4 (its last release; tulios/kafkajs#1751, fixes #1755 and #1768 unmerged): a broker
// connection's request queue re-arms its throttle check after every check, with a delay of
// `throttledUntil − Date.now()`, and throttledUntil starts at −1. With nothing pending that is a
// negative delay, which Node runs after 1 ms: every idle Kafka connection wakes the event loop
// about 600 times a second for as long as it lives (and from Node 24 prints a
// TimeoutNegativeWarning). With nothing pending there is nothing to check: a request pushed later
// schedules its own check. This skips the check then; with a fixed kafkajs it skips nothing needed.
import { createRequire } from 'node:module';

interface RequestQueuePrototype {
  pending: unknown[];
  scheduleCheckPendingRequests(this: RequestQueuePrototype): void;
  [patched]?: true;
}

const patched = Symbol('kafkajs idle request queue patched');
const require = createRequire(import.meta.url);

/** kafkajs's RequestQueue class: not part of its API (kafkajs has no exports map). */
export const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueuePrototype };

export function patchIdleRequestQueue(): void {
  const proto = RequestQueue.prototype;
  if (proto[patched] === true || typeof proto.scheduleCheckPendingRequests !== 'function') return;
  const schedule = proto.scheduleCheckPendingRequests;
  proto.scheduleCheckPendingRequests = function scheduleCheckPendingRequests() {
    if (this.pending.length === 0) return;
    schedule.call(this);
  };
  proto[patched] = true;
}
