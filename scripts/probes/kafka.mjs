// Readiness of the test bed's Kafka, asked with the project's own client (kafkajs): the broker
// lists itself in its metadata, and a consumer group's coordinator answers an offset fetch. The
// second half matters on a fresh broker: the first group read creates __consumer_offsets, and
// until that partition is loaded every group read fails with "The coordinator is loading".
// Usage: node scripts/probes/kafka.mjs HOST:PORT [TIMEOUT_MS]; prints the brokers, exits 0 when ready.
import { Kafka, logLevel } from 'kafkajs';

const [broker, limitArg] = process.argv.slice(2);
const limit = Number(limitArg ?? 5000);
const fail = (why) => {
  console.error(`kafka probe: ${why}`);
  process.exit(1);
};
setTimeout(() => fail('timeout'), limit).unref();

const admin = new Kafka({
  clientId: 'kis-services-probe',
  brokers: [broker],
  connectionTimeout: limit,
  requestTimeout: limit,
  retry: { retries: 0 },
  logLevel: logLevel.NOTHING,
}).admin();
try {
  await admin.connect();
  const { brokers } = await admin.describeCluster();
  if (brokers.length === 0) fail('no broker in metadata yet');
  await admin.fetchOffsets({ groupId: 'kis-services-ready', topics: [] });
  console.log(brokers.map((b) => `${b.nodeId}@${b.host}:${b.port}`).join(','));
  await admin.disconnect();
  process.exit(0);
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
