// SQS bed: queues with a known count of visible messages. With a private moto (moto.ts) the scaler
// reads as a user of its own whose rights can be denied mid-run; on the shared server (any key
// passes) there is no credentials fault.
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  SQSClient,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import { TcpProxy } from '../../test/support/tcpProxy.ts';
import { BACKLOG, MESSAGES_PER_REPLICA, QUEUE_REPLICAS, type SourceBed, until } from './bed.ts';
import { PrivateMoto } from './moto.ts';

export interface SqsBedOptions {
  readonly sources: number;
  readonly runId: string;
  /** moto_server to start privately (credentials fault possible); absent, the shared server at `endpoint`. */
  readonly motoServer?: string;
  readonly endpoint?: string;
}

const REGION = 'us-east-1';

export async function sqsBed(options: SqsBedOptions): Promise<SourceBed> {
  const moto = options.motoServer !== undefined ? await PrivateMoto.start(options.motoServer) : undefined;
  const endpoint = moto?.endpoint ?? options.endpoint;
  if (endpoint === undefined) throw new Error('sqs bed: neither a moto_server to start nor an SQS endpoint');
  const scalerUser = `kis-faults-${options.runId}`;
  const scalerKey = moto !== undefined ? await moto.user(scalerUser) : { accessKeyId: 'test', secretAccessKey: 'test' };
  const client = new SQSClient({ endpoint, region: REGION, credentials: moto?.admin ?? scalerKey, maxAttempts: 3 });
  const names = Array.from({ length: options.sources }, (_, i) => `kis-faults-${options.runId}-${i}`);
  const urls: string[] = [];
  const fill = async () => {
    urls.length = 0;
    for (const name of names) {
      const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name }));
      if (QueueUrl === undefined) throw new Error(`CreateQueue ${name} gave no URL`);
      urls.push(QueueUrl);
      for (let start = 0; start < BACKLOG; start += 10) {
        const entries = Array.from({ length: Math.min(10, BACKLOG - start) }, (_, i) => ({
          Id: String(start + i),
          MessageBody: `job ${start + i}`,
        }));
        await client.send(new SendMessageBatchCommand({ QueueUrl, Entries: entries }));
      }
    }
  };
  await fill();
  const proxy = TcpProxy.forUrl(endpoint);
  await proxy.start();
  const viaProxy = `http://127.0.0.1:${proxy.port}`;
  return {
    kind: 'sqs',
    sources: names.length,
    expectedReplicas: QUEUE_REPLICAS,
    proxies: [proxy],
    scalerEnv: {
      AWS_ACCESS_KEY_ID: scalerKey.accessKeyId,
      AWS_SECRET_ACCESS_KEY: scalerKey.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    metadata: (i) => ({
      'sqs.queueURL': urls[i % urls.length]!,
      'sqs.awsRegion': REGION,
      'sqs.awsEndpoint': viaProxy,
      messagesPerReplica: String(MESSAGES_PER_REPLICA),
    }),
    ready: () =>
      until(`sqs queues hold ${BACKLOG} messages`, async () => {
        for (const QueueUrl of urls) {
          const out = await client.send(
            new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
          );
          if (out.Attributes?.ApproximateNumberOfMessages !== String(BACKLOG)) return false;
        }
        return true;
      }),
    ...(moto !== undefined
      ? {
          breakCredentials: async () => {
            await moto.deny(scalerUser);
          },
          restoreCredentials: async () => {
            await moto.allow(scalerUser);
          },
        }
      : {}),
    deleteSources: async () => {
      for (const QueueUrl of urls) await client.send(new DeleteQueueCommand({ QueueUrl }));
    },
    recreateSources: fill,
    close: async () => {
      await proxy.stop();
      for (const QueueUrl of urls) await client.send(new DeleteQueueCommand({ QueueUrl })).catch(() => undefined);
      client.destroy();
      await moto?.stop();
    },
  };
}
