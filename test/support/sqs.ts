// Real SQS-compatible server helpers for tests: fresh queues with known visible, in-flight and
// delayed counts. Credentials go through the AWS SDK's default chain (environment), as in the scaler.
import { randomUUID } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';

/** Dummy credentials for the local server, set where the SDK's default chain looks first. */
export function useLocalAwsCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
}

export const SQS_TEST_REGION = 'us-east-1';

export class SqsFixture implements AsyncDisposable {
  readonly client: SQSClient;
  private readonly queues: string[] = [];

  constructor(endpoint: string) {
    this.client = new SQSClient({ endpoint, region: SQS_TEST_REGION, maxAttempts: 2 });
  }

  /** A fresh queue (unique name); returns its URL. */
  async queue(prefix = 'kis-test'): Promise<string> {
    const name = `${prefix}-${randomUUID().slice(0, 8)}`;
    const { QueueUrl } = await this.client.send(new CreateQueueCommand({ QueueName: name }));
    if (QueueUrl === undefined) throw new Error(`CreateQueue ${name} gave no URL`);
    this.queues.push(QueueUrl);
    return QueueUrl;
  }

  async send(queueUrl: string, messages: number, delaySeconds = 0): Promise<void> {
    for (let start = 0; start < messages; start += 10) {
      const batch = Array.from({ length: Math.min(10, messages - start) }, (_, i) => ({
        Id: String(start + i),
        MessageBody: `job ${start + i}`,
        DelaySeconds: delaySeconds,
      }));
      const out = await this.client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch }));
      if ((out.Failed ?? []).length > 0) throw new Error(`SendMessageBatch failed: ${JSON.stringify(out.Failed)}`);
    }
  }

  /** Receives `messages` without deleting them: they stay in flight for `visibilitySeconds`. */
  async receive(queueUrl: string, messages: number, visibilitySeconds = 300): Promise<void> {
    let got = 0;
    for (let tries = 0; got < messages && tries < 20; tries++) {
      const out = await this.client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, messages - got),
          VisibilityTimeout: visibilitySeconds,
          WaitTimeSeconds: 0,
        }),
      );
      got += out.Messages?.length ?? 0;
    }
    if (got !== messages) throw new Error(`received ${got} of ${messages} messages`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const q of this.queues) await this.client.send(new DeleteQueueCommand({ QueueUrl: q })).catch(() => undefined);
    this.client.destroy();
  }
}
