// What an SQS queue URL's host says: which region it names, if it is AWS's. Pure; read by the
// trigger's schema.

/** An AWS host: amazonaws.com, or amazonaws.com.cn in China. */
function isAwsHost(hostname: string): boolean {
  return /(^|\.)amazonaws\.com(\.cn)?$/.test(hostname);
}

const AWS_REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$/;

/**
 * The region an AWS queue URL's host names, in each of its forms: sqs.<region>.amazonaws.com,
 * sqs-fips.<region>..., <region>.queue.amazonaws.com (legacy), vpce-....sqs.<region>.vpce.amazonaws.com,
 * and .amazonaws.com.cn.
 */
export function regionInQueueUrl(queueURL: string): string | undefined {
  let host: string;
  try {
    host = new URL(queueURL).hostname;
  } catch {
    return undefined;
  }
  if (!isAwsHost(host)) return undefined;
  return host.split('.').find((label) => AWS_REGION.test(label));
}
