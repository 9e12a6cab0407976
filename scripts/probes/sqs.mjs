// Readiness of the test bed's SQS emulator, asked with the project's own client
// (@aws-sdk/client-sqs): a signed ListQueues (moto routes on the signature's credential scope;
// it does not check the signature). Usage: node scripts/probes/sqs.mjs ENDPOINT [TIMEOUT_MS];
// prints the number of queues, exits 0 when ready.
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { probe } from './probe.mjs';

const [endpoint, limitArg] = process.argv.slice(2);

probe('sqs', Number(limitArg ?? 5000), async () => {
  const sqs = new SQSClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  const { QueueUrls = [] } = await sqs.send(new ListQueuesCommand({}));
  return `${QueueUrls.length} queues`;
});
