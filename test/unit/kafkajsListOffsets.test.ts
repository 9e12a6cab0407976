// kafkajs's ListOffsets, patched (src/sources/kafkajsListOffsets.ts): a request that names no
// isolation level (an admin client's) asks READ_UNCOMMITTED, the high watermark KEDA reads; one
// that names its level (a consumer's) keeps it.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { ListOffsets, READ_UNCOMMITTED, patchListOffsetsIsolation } from '../../src/sources/kafkajsListOffsets.ts';

const require = createRequire(import.meta.url);
const { READ_COMMITTED } = require('kafkajs/src/protocol/isolationLevel.js') as { READ_COMMITTED: number };

/** The isolation level byte a ListOffsets request of `version` carries on the wire. */
async function isolationOnTheWire(version: number, isolationLevel?: number): Promise<number> {
  const make = ListOffsets.protocol({ version })!;
  const { request } = make({
    topics: [{ topic: 't', partitions: [{ partition: 0 }] }],
    ...(isolationLevel !== undefined ? { isolationLevel } : {}),
  }) as {
    request: { encode(): Promise<{ buffer: Buffer }> };
  };
  const { buffer } = await request.encode();
  return buffer.readInt8(4); // after replica_id (INT32)
}

describe("kafkajs's ListOffsets isolation level (kafkajsListOffsets.ts)", () => {
  // Unpatched, kafkajs 2.2.4 sends READ_COMMITTED (1) for the first: the last stable offset.
  it.each([2, 3])('v%i: no level named asks READ_UNCOMMITTED; a named level is kept', async (version) => {
    patchListOffsetsIsolation();
    patchListOffsetsIsolation(); // idempotent
    expect(await isolationOnTheWire(version)).toBe(READ_UNCOMMITTED);
    expect(await isolationOnTheWire(version, READ_COMMITTED)).toBe(READ_COMMITTED);
  });
});
