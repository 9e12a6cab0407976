// kafkajs 2.2.4: an admin client's ListOffsets (fetchTopicOffsets, v2 and up) asks at the
// READ_COMMITTED isolation level, since kafka.admin() builds its cluster with none and the request
// defaults to it: the "log end" it gives is the last stable offset (LSO), not the high watermark.
// KEDA's Kafka triggers read the high watermark (sarama's ListOffsets v0/v1, kafka-go read
// uncommitted). With a transaction held open (Flink, Kafka Streams exactly-once) a group whose
// consumers read uncommitted (the Java default) commits past the LSO, which the lag rules read as
// out of range and reset: the whole retained log under `earliest` (found by review). A request
// that names no isolation level now asks READ_UNCOMMITTED; consumers name theirs, so only the
// admin clients change.
import { createRequire } from 'node:module';

interface ListOffsetsArgs {
  readonly isolationLevel?: number;
  readonly [key: string]: unknown;
}

interface ListOffsetsModule {
  protocol: (options: { version: number }) => ((args: ListOffsetsArgs) => unknown) | undefined;
  [patched]?: true;
}

const patched = Symbol('kafkajs ListOffsets isolation patched');
const require = createRequire(import.meta.url);

/** kafkajs's READ_UNCOMMITTED (protocol/isolationLevel.js). */
export const READ_UNCOMMITTED = 0;

/** kafkajs's ListOffsets request definitions: not part of its API (kafkajs has no exports map). */
export const ListOffsets = require('kafkajs/src/protocol/requests/listOffsets/index.js') as ListOffsetsModule;

export function patchListOffsetsIsolation(): void {
  if (ListOffsets[patched] === true || typeof ListOffsets.protocol !== 'function') return;
  const protocol = ListOffsets.protocol;
  ListOffsets.protocol = (options) => {
    const request = protocol(options);
    if (request === undefined) return request;
    return (args) => request({ ...args, isolationLevel: args.isolationLevel ?? READ_UNCOMMITTED });
  };
  ListOffsets[patched] = true;
}
