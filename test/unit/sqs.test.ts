// SQS source with a fake client behind the one-call interface: the backlog formula per flag,
// error mapping, and one client per (region, endpoint).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SourceBadAnswer, SourceNotFound, SourceUnauthenticated, SourceUnavailable } from '../../src/errors.ts';
import {
  type SqsAttributesClient,
  SqsDriver,
  awsSdkLogger,
  sqsAttributeNames,
  sqsReading,
  sqsEndpoint,
  sqsError,
} from '../../src/sources/sqs.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import type { SqsSourceConfig } from '../../src/trigger/types.ts';
import { logLines } from '../support/logLines.ts';

const counts = {
  ApproximateNumberOfMessages: '7',
  ApproximateNumberOfMessagesNotVisible: '3',
  ApproximateNumberOfMessagesDelayed: '2',
};

function config(overrides: Partial<SqsSourceConfig> = {}): SqsSourceConfig {
  return {
    kind: 'sqs',
    queueURL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/jobs',
    awsRegion: 'eu-west-1',
    awsEndpoint: undefined,
    scaleOnInFlight: true,
    scaleOnDelayed: false,
    ...overrides,
  };
}

function awsError(name: string, httpStatusCode?: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode }, ...extra });
}

describe('sqsReading', () => {
  it.each([
    // scaleOnInFlight, scaleOnDelayed, B, waiting, names asked for
    [false, false, 7, 7, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']],
    [true, false, 10, 7, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']],
    [
      false,
      true,
      9,
      9,
      ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    ],
    [
      true,
      true,
      12,
      9,
      ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    ],
  ])(
    'scaleOnInFlight %s, scaleOnDelayed %s -> B = %d, waiting %d, from %j',
    (scaleOnInFlight, scaleOnDelayed, backlog, waiting, names) => {
      const flags = { scaleOnInFlight, scaleOnDelayed };
      expect(sqsAttributeNames(flags)).toEqual(names);
      expect(sqsReading(counts, flags, 'q')).toEqual({
        backlog,
        waiting,
        inFlight: 3,
        ...(!scaleOnInFlight && { inFlightInBacklog: false }),
      });
    },
  );

  it('fails on a missing or non-numeric count instead of reading it as 0', () => {
    const flags = { scaleOnInFlight: true, scaleOnDelayed: false };
    expect(() => sqsReading({ ApproximateNumberOfMessages: '4' }, flags, 'q')).toThrow(SourceBadAnswer);
    expect(() => sqsReading({ ...counts, ApproximateNumberOfMessages: 'x' }, flags, 'q')).toThrow(
      /ApproximateNumberOfMessages="x"/,
    );
    expect(() => sqsReading({ ...counts, ApproximateNumberOfMessages: '' }, flags, 'q')).toThrow(SourceBadAnswer);
    expect(() => sqsReading(undefined, flags, 'q')).toThrow(SourceBadAnswer);
    // Found by review: an emulator's JSON numbers failed as `raw.trim is not a function`; read as counts.
    const numbers = { ApproximateNumberOfMessages: 4, ApproximateNumberOfMessagesNotVisible: 1 } as unknown as Record<
      string,
      string
    >;
    expect(sqsReading(numbers, flags, 'q')).toMatchObject({ backlog: 5, waiting: 4, inFlight: 1 });
    const wrong = { ...counts, ApproximateNumberOfMessages: true } as unknown as Record<string, string>;
    expect(() => sqsReading(wrong, flags, 'q')).toThrow(SourceBadAnswer);
    // The in-flight count is read even when B does not count it.
    expect(() =>
      sqsReading({ ApproximateNumberOfMessages: '4' }, { scaleOnInFlight: false, scaleOnDelayed: false }, 'q'),
    ).toThrow(SourceBadAnswer);
  });
});

describe('awsSdkLogger', () => {
  it("takes the SDK's failed calls to debug as the command and the error's message, and keeps its warnings", () => {
    const { sink, lines } = logLines<{ level: number; msg: string; component?: string; command?: string; error?: string }>();
    const log = awsSdkLogger(pino({ level: 'debug' }, sink));
    // What the SDK's logger middleware sends for each failed call.
    log.error({
      clientName: 'SQSClient',
      commandName: 'GetQueueAttributesCommand',
      input: { QueueUrl: 'http://127.0.0.1:1/123456789012/nope' },
      error: awsError('AWS.SimpleQueueService.NonExistentQueue', 400),
      metadata: { httpStatusCode: 400 },
    });
    log.info({ clientName: 'SQSClient', commandName: 'GetQueueAttributesCommand' });
    log.warn('QueueUrl=http://a differs from SQSClient resolved endpoint=http://b, using QueueUrl host as endpoint.');
    log.warn(new Error('an odd one'));
    expect(lines.map(({ level, msg, component, command, error }) => ({ level, msg, component, command, error }))).toEqual([
      {
        level: 20,
        msg: 'aws-sdk call failed',
        component: 'aws-sdk',
        command: 'GetQueueAttributesCommand',
        error: 'AWS.SimpleQueueService.NonExistentQueue happened',
      },
      {
        level: 40,
        msg: 'QueueUrl=http://a differs from SQSClient resolved endpoint=http://b, using QueueUrl host as endpoint.',
        component: 'aws-sdk',
        command: undefined,
        error: undefined,
      },
      { level: 40, msg: 'an odd one', component: 'aws-sdk', command: undefined, error: undefined },
    ]);
  });

  // Found by review: the error's cut went to KEDA, and the SDK's own line at debug kept the token.
  it('leaves out the request AWS says it expected, with its session token, at debug too', () => {
    const { sink, lines } = logLines<{ error?: string; msg: string }>();
    const log = awsSdkLogger(pino({ level: 'debug' }, sink));
    const token = 'IQoJb3JpZ2luX2VjEXAMPLETOKEN';
    const message = `Signature mismatch.\n\nThe Canonical String for this request should have been\n'POST\nx-amz-security-token:${token}\n'`;
    log.error({
      commandName: 'GetQueueAttributesCommand',
      error: Object.assign(awsError('SignatureDoesNotMatch', 403), { message }),
    });
    log.warn(message);
    expect(lines).toHaveLength(2);
    expect(JSON.stringify(lines)).not.toContain(token);
  });
});

describe('sqsEndpoint', () => {
  it('uses sqs.awsEndpoint, else the origin of a non-AWS queue URL, else the regional AWS endpoint', () => {
    const aws = 'https://sqs.eu-west-1.amazonaws.com/123456789012/jobs';
    expect(sqsEndpoint({ queueURL: aws, awsEndpoint: undefined })).toBeUndefined();
    expect(sqsEndpoint({ queueURL: 'https://sqs.cn-north-1.amazonaws.com.cn/1/jobs', awsEndpoint: undefined })).toBeUndefined();
    expect(sqsEndpoint({ queueURL: 'http://127.0.0.1:9324/000000000000/jobs', awsEndpoint: undefined })).toBe(
      'http://127.0.0.1:9324',
    );
    expect(sqsEndpoint({ queueURL: aws, awsEndpoint: 'https://vpce-1.sqs.eu-west-1.vpce.amazonaws.com' })).toBe(
      'https://vpce-1.sqs.eu-west-1.vpce.amazonaws.com',
    );
    expect(sqsEndpoint({ queueURL: 'https://eu-west-1.queue.amazonaws.com/1/jobs', awsEndpoint: undefined })).toBeUndefined();
  });

  // Found by review: both were sent to sqs.<region>.amazonaws.com, which a VPC without private DNS
  // cannot reach, and which is not FIPS.
  it.each([
    'https://vpce-0a1b2c-d3e4.sqs.eu-west-1.vpce.amazonaws.com/123456789012/jobs',
    'https://sqs-fips.us-east-1.amazonaws.com/123456789012/jobs',
  ])("sends a read for %s to the queue URL's own host", (queueURL) => {
    expect(sqsEndpoint({ queueURL, awsEndpoint: undefined })).toBe(new URL(queueURL).origin);
  });
});

describe('sqsError', () => {
  it.each([
    [awsError('QueueDoesNotExist', 400, { Code: 'AWS.SimpleQueueService.NonExistentQueue' }), SourceNotFound],
    [awsError('AWS.SimpleQueueService.NonExistentQueue', 400), SourceNotFound],
    [awsError('CredentialsProviderError'), SourceUnauthenticated],
    [awsError('InvalidClientTokenId', 403), SourceUnauthenticated],
    [awsError('AccessDenied', 403), SourceUnauthenticated],
    [awsError('SomethingForbidden', 403), SourceUnauthenticated],
    [awsError('InvalidParameterValue', 400), SourceBadAnswer],
    [awsError('ThrottlingException', 400), SourceUnavailable],
    [awsError('InternalFailure', 500), SourceUnavailable],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', $metadata: {} }), SourceUnavailable],
    [awsError('TimeoutError'), SourceUnavailable],
    // STS, assuming the role for a web identity token (IRSA).
    [awsError('InvalidIdentityTokenException', 400), SourceUnauthenticated],
    [awsError('IDPRejectedClaimException', 403), SourceUnauthenticated],
    [awsError('IDPCommunicationErrorException', 400), SourceUnavailable],
    // Found by review: a 429 without a throttling name read as a request refused, and the web
    // identity token's file missing (or unreadable) as an outage.
    [awsError('Unknown', 429), SourceUnavailable],
    // Found by review: SQS's own throttling error comes with 403 (the SDK's model), read as refused
    // credentials; an answer cut off after its 200 status read as a wrong endpoint.
    [awsError('RequestThrottled', 403), SourceUnavailable],
    [Object.assign(new Error('aborted'), { code: 'ECONNRESET', $metadata: { httpStatusCode: 200 } }), SourceUnavailable],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', $metadata: {} }), SourceUnavailable],
    [
      Object.assign(
        new Error("ENOENT: no such file or directory, open '/var/run/secrets/eks.amazonaws.com/serviceaccount/token'"),
        {
          code: 'ENOENT',
        },
      ),
      SourceUnauthenticated,
    ],
    [
      Object.assign(new Error("EACCES: permission denied, open '/var/run/secrets/token'"), { code: 'EACCES' }),
      SourceUnauthenticated,
    ],
  ])('%s -> %o', (err, type) => {
    const mapped = sqsError('sqs queue "jobs" (eu-west-1)', err);
    expect(mapped).toBeInstanceOf(type);
    expect(mapped.message).toMatch(/^sqs queue "jobs" \(eu-west-1\): /);
  });

  it('tells a permission the identity lacks (AccessDenied) from credentials AWS refused', () => {
    expect(sqsError('q', awsError('AccessDenied', 403)).message).toMatch(/lacks sqs:GetQueueAttributes on the queue/);
    expect(sqsError('q', awsError('KMS.AccessDeniedException', 400)).message).toMatch(/lacks sqs:GetQueueAttributes/);
    expect(sqsError('q', awsError('InvalidClientTokenId', 403)).message).toMatch(/AWS refused or found no credentials/);
  });

  // Found by review: AWS's Query services spell the expected canonical request out, headers and all.
  it('leaves out the canonical request a SignatureDoesNotMatch spells out, with its session token', () => {
    const token = 'IQoJb3JpZ2luX2VjEXAMPLETOKEN';
    const signature = Object.assign(awsError('SignatureDoesNotMatch', 403), {
      message:
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.\n\n' +
        `The Canonical String for this request should have been\n'POST\n/\n\nhost:sqs.eu-west-1.amazonaws.com\nx-amz-security-token:${token}\n'\n\n` +
        `The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20261207T070000Z'`,
    });
    const { message } = sqsError('q', signature);
    expect(message).not.toContain(token);
    expect(message).toMatch(
      /does not match the signature you provided\. Check your AWS Secret Access Key and signing method\. \(the request AWS expected left out\)\)$/,
    );
    const stringToSign = Object.assign(awsError('SignatureDoesNotMatch', 403), {
      message: `Signature expired.\nThe String-to-Sign should have been 'AWS4-HMAC-SHA256\n${token}'`,
    });
    expect(sqsError('q', stringToSign).message).not.toContain(token);
  });

  it("points at the role's trust policy when assuming the role is what AWS refused", () => {
    const notAssumable = Object.assign(awsError('AccessDenied', 403), {
      message: 'Not authorized to perform sts:AssumeRoleWithWebIdentity',
    });
    expect(sqsError('q', notAssumable).message).toMatch(/assume its role: check the role's trust policy/);
    expect(sqsError('q', awsError('InvalidIdentityTokenException', 400)).message).toMatch(/trust policy/);
  });
});

class FakeSqs implements SqsAttributesClient {
  readonly calls: { queueUrl: string; names: readonly string[] }[] = [];
  answer: () => Promise<Record<string, string> | undefined> = () => Promise.resolve(counts);
  destroyed = false;
  getQueueAttributes(queueUrl: string, names: readonly string[]) {
    this.calls.push({ queueUrl, names });
    return this.answer();
  }
  destroy() {
    this.destroyed = true;
  }
}

function driverWithFakes() {
  const made: { region: string; endpoint: string | undefined; client: FakeSqs }[] = [];
  const driver = new SqsDriver({
    logger: silentLogger(),
    timeoutMs: 1000,
    clientFactory: (region, endpoint) => {
      const client = new FakeSqs();
      made.push({ region, endpoint, client });
      return client;
    },
  });
  return { driver, made };
}

describe('SqsDriver', () => {
  it('makes ONE GetQueueAttributes call per read, asking for the counted attributes and the in-flight count', async () => {
    const { driver, made } = driverWithFakes();
    const source = driver.create(config({ scaleOnDelayed: true }));
    expect(await source.read(new AbortController().signal)).toEqual({ backlog: 12, waiting: 9, inFlight: 3 });
    expect(made).toHaveLength(1);
    expect(made[0]!.client.calls).toEqual([
      {
        queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/jobs',
        names: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
      },
    ]);
  });

  it('keeps one client per (region, endpoint), shared by the queues that name them', async () => {
    const { driver, made } = driverWithFakes();
    const signal = new AbortController().signal;
    // Found by review: the client's key joined the two by '|', which a region may hold.
    const queueURL = 'https://sqs.eu-west-1.amazonaws.com/1/x';
    await driver.create(config({ awsRegion: 'eu-west-1|http://other:1/', queueURL })).read(signal);
    await driver.create(config({ awsRegion: 'eu-west-1', awsEndpoint: 'http://other:1/|', queueURL })).read(signal);
    expect(made.splice(0).map((m) => [m.region, m.endpoint])).toEqual([
      ['eu-west-1|http://other:1/', undefined],
      ['eu-west-1', 'http://other:1/|'],
    ]);
    await driver.create(config()).read(signal);
    await driver.create(config({ queueURL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/other' })).read(signal);
    await driver.create(config({ awsEndpoint: 'http://127.0.0.1:9324' })).read(signal);
    await driver.create(config({ awsRegion: 'us-east-1', queueURL: 'https://sqs.us-east-1.amazonaws.com/1/jobs' })).read(signal);
    expect(made.map((m) => [m.region, m.endpoint])).toEqual([
      ['eu-west-1', undefined],
      ['eu-west-1', 'http://127.0.0.1:9324'],
      ['us-east-1', undefined],
    ]);
    expect(made[0]!.client.calls).toHaveLength(2);
    await driver.close();
    expect(made.every((m) => m.client.destroyed)).toBe(true);
  });

  it('gives the same identity only to triggers that count the same thing', () => {
    const { driver } = driverWithFakes();
    expect(driver.identity(config())).toBe(driver.identity(config()));
    expect(driver.identity(config())).not.toBe(driver.identity(config({ scaleOnDelayed: true })));
    expect(driver.identity(config())).not.toBe(driver.identity(config({ scaleOnInFlight: false })));
    expect(driver.identity(config())).not.toBe(driver.identity(config({ awsEndpoint: 'http://127.0.0.1:9324' })));
    // Found by review: joined by '|', a region holding one named another endpoint's queue.
    const queueURL = 'https://sqs.eu-west-1.amazonaws.com/1/jobs';
    expect(driver.identity(config({ awsRegion: 'eu-west-1|http://other:1/', awsEndpoint: undefined, queueURL }))).not.toBe(
      driver.identity(config({ awsRegion: 'eu-west-1', awsEndpoint: 'http://other:1/|', queueURL })),
    );
  });

  it('turns client errors into typed errors that name the queue', async () => {
    const { driver, made } = driverWithFakes();
    const source = driver.create(config());
    expect(source.label).toBe('sqs queue "jobs" (eu-west-1)');
    await source.read(new AbortController().signal);
    made[0]!.client.answer = () => Promise.reject(awsError('QueueDoesNotExist', 400));
    await expect(source.read(new AbortController().signal)).rejects.toThrow(SourceNotFound);
    await expect(source.read(new AbortController().signal)).rejects.toThrow(/sqs queue "jobs"/);
  });

  it('names a long queue quoted and cut, so its errors stay short', () => {
    const { driver } = driverWithFakes();
    const long = 'q'.repeat(100_000);
    const source = driver.create(
      config({ queueURL: `https://sqs.eu-west-1.amazonaws.com/123456789012/${long}`, awsRegion: 'r'.repeat(100_000) }),
    );
    expect(source.label).toBe(`sqs queue "${'q'.repeat(40)}"... (100000 chars) (${'r'.repeat(42)}... (100000 chars))`);
  });

  it('rejects with the abort reason when the cache gives up on the read', async () => {
    const { driver, made } = driverWithFakes();
    const source = driver.create(config());
    await source.read(new AbortController().signal);
    const controller = new AbortController();
    made[0]!.client.answer = () => {
      controller.abort(new Error('deadline'));
      return Promise.reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    };
    await expect(source.read(controller.signal)).rejects.toThrow('deadline');
  });
});

// Found by review: a 200 that is no SQS answer read as an outage, with the SDK's hint about its
// hidden field in the message. The real SDK client against a local HTTP server.
describe('an endpoint that answers with something that is no SQS response', () => {
  it('is a bad answer (FAILED_PRECONDITION), not an outage, and says what to check', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><body>Sign in</body></html>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_EC2_METADATA_DISABLED: 'true' });
    const driver = new SqsDriver({ logger: silentLogger(), timeoutMs: 2000 });
    try {
      const source = driver.create(config({ awsEndpoint: `http://127.0.0.1:${port}` }));
      const err = (await source.read(new AbortController().signal).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(SourceBadAnswer);
      expect(err.message).toMatch(
        /^sqs queue "jobs" \(eu-west-1 via [^)]+\): the endpoint answered HTTP 200 with no SQS response \(Unexpected token/,
      );
      expect(err.message).toMatch(/check sqs\.awsEndpoint/);
      expect(err.message).not.toMatch(/hidden field/);
    } finally {
      await driver.close();
      process.env = saved;
      server.close();
    }
  });
});
