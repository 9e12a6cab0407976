#!/usr/bin/env node
// Checks that an SQS emulator counts messages the way the scaler reads them,
// through @aws-sdk/client-sqs v3 (AWS JSON protocol, x-amz-target headers).
//
//   node scripts/check-sqs-emulator.mjs [endpoint]      (default: $SQS_ENDPOINT)
//
// Creates a queue, sends 3 messages, receives 1 without deleting it (in
// flight), sends 2 with DelaySeconds=60, then expects
//   ApproximateNumberOfMessages=2, ...NotVisible=1, ...Delayed=2,
// and that GetQueueAttributes / GetQueueUrl on a missing queue fail with
// QueueDoesNotExist as parsed by the SDK. Exits non-zero on any mismatch.
import {
  SQSClient,
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';

const endpoint = process.argv[2] ?? process.env.SQS_ENDPOINT;
if (!endpoint) {
  console.error('usage: check-sqs-emulator.mjs ENDPOINT (or set SQS_ENDPOINT)');
  process.exit(2);
}

const sqs = new SQSClient({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  maxAttempts: 1,
});

const failures = [];
const report = { endpoint };
function expect(what, actual, wanted) {
  report[what] = actual;
  if (actual !== wanted) failures.push(`${what}: got ${JSON.stringify(actual)}, wanted ${JSON.stringify(wanted)}`);
}

const name = `kis-check-${process.pid}-${Date.now()}`;
const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
report.queueUrl = QueueUrl;
try {
  const listed = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: name }));
  expect('listQueuesFindsIt', (listed.QueueUrls ?? []).includes(QueueUrl), true);

  for (let i = 0; i < 3; i++) await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: `m${i}` }));
  const got = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1, VisibilityTimeout: 60, WaitTimeSeconds: 0 }),
  );
  expect('received', got.Messages?.length ?? 0, 1);
  for (let i = 0; i < 2; i++) {
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: `d${i}`, DelaySeconds: 60 }));
  }

  const { Attributes: a = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  expect('ApproximateNumberOfMessages', a.ApproximateNumberOfMessages, '2');
  expect('ApproximateNumberOfMessagesNotVisible', a.ApproximateNumberOfMessagesNotVisible, '1');
  expect('ApproximateNumberOfMessagesDelayed', a.ApproximateNumberOfMessagesDelayed, '2');

  const { Attributes: all = {} } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }));
  expect(
    'AllHasCounts',
    ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'].every(
      (k) => k in all,
    ),
    true,
  );
} finally {
  await sqs.send(new DeleteQueueCommand({ QueueUrl })).catch(() => {});
}

const missingUrl = QueueUrl.replace(name, `${name}-missing`);
async function errorOf(cmd) {
  try {
    await sqs.send(cmd);
    return { name: '(no error)' };
  } catch (err) {
    return { name: err.name, status: err.$metadata?.httpStatusCode, fault: err.$fault, message: err.message };
  }
}
const e1 = await errorOf(
  new GetQueueAttributesCommand({ QueueUrl: missingUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
);
report.missingGetQueueAttributes = e1;
if (e1.name !== 'QueueDoesNotExist') failures.push(`GetQueueAttributes on a missing queue: got ${JSON.stringify(e1)}`);
const e2 = await errorOf(new GetQueueUrlCommand({ QueueName: `${name}-missing` }));
report.missingGetQueueUrl = e2;
if (e2.name !== 'QueueDoesNotExist') failures.push(`GetQueueUrl on a missing queue: got ${JSON.stringify(e2)}`);

console.log(JSON.stringify(report, null, 2));
if (failures.length) {
  console.error(`FAIL:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.error('OK: the emulator counts visible / in-flight / delayed and reports missing queues as the SDK expects');
