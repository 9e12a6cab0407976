// SQS backlog: one GetQueueAttributes call per read, B = ApproximateNumberOfMessages (+ NotVisible
// when scaleOnInFlight, + Delayed when scaleOnDelayed); the in-flight count is read either way. Credentials come from the AWS SDK's default
// chain (env, web identity / IRSA, EKS pod identity, profile), never from trigger metadata. One
// SQSClient per (region, endpoint), shared by every queue that names them.
import { GetQueueAttributesCommand, type QueueAttributeName, SQSClient } from '@aws-sdk/client-sqs';
import {
  QUOTED_CHARS,
  SourceBadAnswer,
  SourceNotFound,
  SourceUnauthenticated,
  SourceUnavailable,
  clip,
  errorMessage,
  quote,
} from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { SqsSourceConfig } from '../trigger/types.ts';
import { ClientMap, sourceIdentity, withoutTrailingSlashes } from './common.ts';
import type { Source, SourceDriver, SourceReading } from './source.ts';

const VISIBLE: QueueAttributeName = 'ApproximateNumberOfMessages';
const IN_FLIGHT: QueueAttributeName = 'ApproximateNumberOfMessagesNotVisible';
const DELAYED: QueueAttributeName = 'ApproximateNumberOfMessagesDelayed';

/** The one call the source makes: the testing seam (as KEDA's SqsWrapperClient). */
export interface SqsAttributesClient {
  getQueueAttributes(
    queueUrl: string,
    attributeNames: readonly QueueAttributeName[],
    signal: AbortSignal,
  ): Promise<Readonly<Record<string, string>> | undefined>;
  /** Releases sockets (optional for fakes). */
  destroy?(): void;
}

export type SqsClientFactory = (region: string, endpoint: string | undefined) => SqsAttributesClient;

type SqsFlags = Pick<SqsSourceConfig, 'scaleOnInFlight' | 'scaleOnDelayed'>;

/**
 * Attributes a read asks for: visible and in-flight messages always (the model tells waiting
 * messages from those being served, whether or not B counts the latter), delayed ones when counted.
 */
export function sqsAttributeNames(flags: SqsFlags): QueueAttributeName[] {
  return [VISIBLE, IN_FLIGHT, ...(flags.scaleOnDelayed ? [DELAYED] : [])];
}

/**
 * The reading from the queue's attributes: B = visible (+ in flight when scaleOnInFlight, +
 * delayed when scaleOnDelayed); waiting = visible (+ delayed when counted); in flight apart. A
 * missing or non-numeric count is an error, never a 0.
 */
export function sqsReading(
  attributes: Readonly<Record<string, string>> | undefined,
  flags: SqsFlags,
  where: string,
): SourceReading {
  const count = (name: QueueAttributeName) => {
    // A string, as SQS sends it; an emulator that sends a JSON number had it fail as `raw.trim is
    // not a function` (UNAVAILABLE; found by review): a number is read, anything else refused.
    const raw = attributes?.[name] as unknown;
    const n = typeof raw === 'number' ? raw : typeof raw !== 'string' || raw.trim() === '' ? Number.NaN : Number(raw);
    if (!Number.isInteger(n) || n < 0) {
      throw new SourceBadAnswer(`${where}: GetQueueAttributes gave ${name}=${JSON.stringify(raw ?? null)}, not a count`);
    }
    return n;
  };
  const visible = count(VISIBLE);
  const inFlight = count(IN_FLIGHT);
  const waiting = visible + (flags.scaleOnDelayed ? count(DELAYED) : 0);
  return {
    backlog: waiting + (flags.scaleOnInFlight ? inFlight : 0),
    waiting,
    inFlight,
    ...(!flags.scaleOnInFlight && { inFlightInBacklog: false as const }),
  };
}

const notFoundNames = new Set(['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue', 'InvalidAddress']);
const credentialNames = new Set([
  'CredentialsProviderError',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'InvalidSecurity',
  'ExpiredToken',
  'ExpiredTokenException',
  'AccessDenied',
  'AccessDeniedException',
  'KMS.AccessDeniedException',
  // STS, assuming a role for a web identity (IRSA, EKS pod identity's token): the token's issuer
  // unknown to the account, or its claims refused (found by review: "SQS rejected the request").
  'InvalidIdentityToken',
  'InvalidIdentityTokenException',
  'IDPRejectedClaim',
  'IDPRejectedClaimException',
]);
/** STS could not reach the identity provider: passes with time. */
const transientNames = new Set(['IDPCommunicationError', 'IDPCommunicationErrorException']);

interface AwsErrorShape {
  name?: unknown;
  Code?: unknown;
  code?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** Maps an AWS SDK error to a typed error: missing queue, refused credentials, or unreachable. */
export function sqsError(where: string, err: unknown): Error {
  const e = (err ?? {}) as AwsErrorShape;
  const names = [e.name, e.Code].filter((n): n is string => typeof n === 'string');
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  const message = withoutSignedText(errorMessage(err));
  if (names.some((n) => notFoundNames.has(n))) return new SourceNotFound(`${where}: queue does not exist (${message})`);
  // 429 is throttling whatever the error's name (found by review: "SQS rejected the request"), and
  // SQS's own RequestThrottled comes with 403 (found by review: read as refused credentials).
  const throttled = status === 429 || /Throttl|OverLimit/i.test(names.join(' '));
  if (throttled) return new SourceUnavailable(`${where}: SQS throttled the request (${names[0] ?? status}: ${message})`);
  // An answer cut off after its status (the connection reset mid-body): an outage, whatever the
  // status said (found by review: read as a wrong endpoint).
  const cutOff =
    status !== undefined &&
    ((typeof e.code === 'string' && /^(ECONNRESET|EPIPE|ERR_STREAM_PREMATURE_CLOSE)$/.test(e.code)) ||
      /^aborted\b/.test(message));
  if (cutOff) return new SourceUnavailable(`${where}: SQS's answer was cut off (${message})`);
  if (status !== undefined && status >= 200 && status < 300) {
    // A success status with an answer the SDK could not read (an HTML page from a proxy, another
    // service at the endpoint): a bad answer, as RabbitMQ's and Prometheus' are, not an outage.
    // The SDK's hint about its hidden field is for its own users.
    return new SourceBadAnswer(
      `${where}: the endpoint answered HTTP ${status} with no SQS response (${message.split(/\n|\\u000a/)[0]}); check sqs.awsEndpoint / the queue URL`,
    );
  }
  if (names.some((n) => transientNames.has(n))) {
    return new SourceUnavailable(`${where}: AWS STS could not reach the identity provider (${names[0]}: ${message})`);
  }
  if (names.some((n) => credentialNames.has(n)) || status === 401 || status === 403) {
    return new SourceUnauthenticated(`${where}: ${refusal(names, message)} (${names[0] ?? status}: ${message})`);
  }
  // A file the credential chain reads (the web identity token of IRSA, a profile's) missing or
  // unreadable (an fsGroup that leaves the token root's): no credentials, not an outage (found by
  // review: "SQS unreachable").
  if (typeof e.code === 'string' && /^(ENOENT|EACCES|EPERM)$/.test(e.code) && names.every((n) => n === 'Error')) {
    return new SourceUnauthenticated(
      `${where}: AWS credentials could not be read from a file (${e.code}: ${message}); check AWS_WEB_IDENTITY_TOKEN_FILE and the pod's access to it`,
    );
  }
  if (status !== undefined && status >= 400 && status < 500) {
    return new SourceBadAnswer(`${where}: SQS rejected the request (${names[0] ?? status}: ${message})`);
  }
  const code = typeof e.code === 'string' ? `${e.code}: ` : '';
  return new SourceUnavailable(`${where}: SQS unreachable or failing (${code}${message})`);
}

/**
 * A SignatureDoesNotMatch of AWS's Query services spells out the canonical request and the
 * string to sign it expected: the request's headers, X-Amz-Security-Token among them. Cut there
 * (with the newlines before it, which errorMessage has escaped).
 */
function withoutSignedText(message: string): string {
  const cut = message.search(/(?:\s|\\u000a)*The (?:Canonical String for this request|String-to-Sign) should have been/i);
  return cut < 0 ? message : `${message.slice(0, cut)} (the request AWS expected left out)`;
}

/** What an AWS refusal means, for the one who fixes it. */
function refusal(names: readonly string[], message: string): string {
  // Assuming the role itself refused: its trust policy, not the queue's permissions.
  if (/AssumeRole/.test(message) || names.some((n) => /IdentityToken|IDPRejectedClaim/.test(n))) {
    return "AWS refused to let the scaler assume its role: check the role's trust policy (the cluster's OIDC provider, the service account in its condition) and the service account's role annotation";
  }
  // AccessDenied is a permission, not a credential: say which the identity needs.
  if (names.some((n) => /AccessDenied/.test(n))) {
    return "AWS refused the request: the scaler's identity lacks sqs:GetQueueAttributes on the queue (or the KMS key), or has no credentials";
  }
  return 'AWS refused or found no credentials';
}

/** The hosts the SDK's regional endpoint stands for: sqs.<region> and the legacy <region>.queue. */
const REGIONAL_SQS_HOST = /^(sqs\.[a-z0-9-]+|[a-z0-9-]+\.queue)\.amazonaws\.com(\.cn)?$/;

/**
 * The endpoint a read goes to: sqs.awsEndpoint, else the SDK's regional endpoint for a queue URL
 * on it, else the queue URL's own origin: a local or private server, a VPC endpoint
 * (vpce-....sqs.<region>.vpce.amazonaws.com) or a FIPS one (sqs-fips.<region>), which the
 * regional endpoint would have bypassed (found by review: a VPC without private DNS read nothing,
 * a FIPS requirement was silently not met).
 */
export function sqsEndpoint(config: Pick<SqsSourceConfig, 'queueURL' | 'awsEndpoint'>): string | undefined {
  if (config.awsEndpoint !== undefined) return config.awsEndpoint;
  const url = new URL(config.queueURL);
  return REGIONAL_SQS_HOST.test(url.hostname) ? undefined : url.origin;
}

/**
 * The SDK's log lines into ours. It logs every call at info (dropped) and every failed call at
 * error, with the command's input and the error as an object: the read reports that failure itself
 * (a typed error, logged once per source while it lasts), so it goes to debug as the command and
 * the error's message. Its own warnings (strings) stay warnings.
 */
export function awsSdkLogger(logger: Logger): Record<'trace' | 'debug' | 'info' | 'warn' | 'error', (...a: unknown[]) => void> {
  const sdkLog = logger.child({ component: 'aws-sdk' });
  const quiet = () => undefined;
  // Without the request AWS says it expected (its session token): found by review, at debug too.
  const line = (a: readonly unknown[]) => withoutSignedText(a.map((x) => (x instanceof Error ? x.message : String(x))).join(' '));
  const toLog = (...a: unknown[]) => {
    const [first] = a;
    if (typeof first === 'object' && first !== null && !(first instanceof Error) && 'commandName' in first) {
      const { commandName, error } = first as { commandName?: unknown; error?: unknown };
      sdkLog.debug(
        { command: String(commandName), error: withoutSignedText(error instanceof Error ? error.message : String(error)) },
        'aws-sdk call failed',
      );
    } else sdkLog.warn(line(a));
  };
  return { trace: quiet, debug: quiet, info: quiet, warn: toLog, error: toLog };
}

/** The real client: @aws-sdk/client-sqs with the default credential chain. */
export function awsSqsClient(
  region: string,
  endpoint: string | undefined,
  timeoutMs: number,
  logger: Logger,
): SqsAttributesClient {
  const client = new SQSClient({
    region,
    ...(endpoint !== undefined ? { endpoint } : { useQueueUrlAsEndpoint: false }),
    logger: awsSdkLogger(logger),
    // The read cache retries on its own clock; one quick retry covers a dropped keep-alive socket.
    maxAttempts: 2,
    requestHandler: { connectionTimeout: timeoutMs, requestTimeout: timeoutMs },
  });
  return {
    async getQueueAttributes(queueUrl, attributeNames, signal) {
      const out = await client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: [...attributeNames] }), {
        abortSignal: signal,
      });
      return out.Attributes;
    },
    destroy: () => client.destroy(),
  };
}

function queueName(queueURL: string): string {
  const path = withoutTrailingSlashes(new URL(queueURL).pathname);
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
}

function label(config: SqsSourceConfig): string {
  const endpoint = sqsEndpoint(config);
  const via = endpoint !== undefined ? ` via ${new URL(endpoint).host}` : '';
  return `sqs queue ${quote(queueName(config.queueURL))} (${clip(config.awsRegion, QUOTED_CHARS)}${via})`;
}

export class SqsDriver implements SourceDriver<SqsSourceConfig> {
  readonly kind = 'sqs' as const;
  private readonly clients = new ClientMap<SqsAttributesClient>();
  private readonly factory: SqsClientFactory;
  private readonly logger: Logger;

  constructor(options: { logger: Logger; timeoutMs: number; clientFactory?: SqsClientFactory }) {
    this.logger = options.logger;
    const timeoutMs = options.timeoutMs;
    const logger = options.logger;
    this.factory = options.clientFactory ?? ((region, endpoint) => awsSqsClient(region, endpoint, timeoutMs, logger));
  }

  identity(config: SqsSourceConfig): string {
    const counted = `${config.scaleOnInFlight ? '+inflight' : ''}${config.scaleOnDelayed ? '+delayed' : ''}`;
    return sourceIdentity('sqs', config.awsRegion, sqsEndpoint(config) ?? '', config.queueURL, `visible${counted}`);
  }

  /** The shared client for (region, endpoint), made on first use. */
  client(region: string, endpoint: string | undefined): SqsAttributesClient {
    return this.clients.get(sourceIdentity('sqs-client', region, endpoint ?? ''), () => {
      this.logger.debug({ region, endpoint }, 'sqs client created');
      return this.factory(region, endpoint);
    });
  }

  create(config: SqsSourceConfig): Source {
    const where = label(config);
    const attributeNames = sqsAttributeNames(config);
    const endpoint = sqsEndpoint(config);
    const read = async (signal: AbortSignal): Promise<SourceReading> => {
      let attributes: Readonly<Record<string, string>> | undefined;
      try {
        attributes = await this.client(config.awsRegion, endpoint).getQueueAttributes(config.queueURL, attributeNames, signal);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        throw sqsError(where, err);
      }
      return sqsReading(attributes, config, where);
    };
    return { identity: this.identity(config), label: where, kind: 'sqs', read };
  }

  async closeIdle(idleMs: number): Promise<void> {
    await this.clients.closeIdle(idleMs, (client) => client.destroy?.());
  }

  close(): Promise<void> {
    return this.clients.close((client) => client.destroy?.());
  }
}
