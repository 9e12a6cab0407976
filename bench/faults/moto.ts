// A private moto server that checks credentials (INITIAL_NO_AUTH_ACTION_COUNT): the shared one
// accepts any key, so it cannot take a key's rights away mid-run. The harness makes an admin user
// in it (the first three calls go unchecked), then a scaler user whose policy it can deny.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/support/process.ts';
import { track, until } from './bed.ts';

export interface AwsKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

const REGION = 'us-east-1';

/** moto_server from MOTO_SERVER, else the one scripts/services.sh installs in the user's cache. */
export function findMotoServer(): string | undefined {
  if (process.env.MOTO_SERVER) return process.env.MOTO_SERVER;
  const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'keda-inference-scaler');
  if (!existsSync(cache)) return undefined;
  for (const dir of readdirSync(cache).filter((d) => d.startsWith('moto-'))) {
    const bin = join(cache, dir, 'venv', 'bin', 'moto_server');
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

const sha256Hex = (data: string) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** AWS Signature V4 headers for a form-encoded POST (the query protocol IAM speaks). */
function signedHeaders(endpoint: URL, service: string, body: string, key: AwsKey): Record<string, string> {
  const amzDate = new Date().toISOString().replace(/[:-]|\.\d{3}/g, '');
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
    host: endpoint.host,
    'x-amz-date': amzDate,
  };
  const names = Object.keys(headers).sort();
  const canonical = ['POST', '/', '', ...names.map((n) => `${n}:${headers[n]}`), '', names.join(';'), sha256Hex(body)].join('\n');
  const scope = `${date}/${REGION}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${key.secretAccessKey}`, date), REGION), service), 'aws4_request');
  const signature = createHmac('sha256', signingKey).update(toSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${key.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return headers;
}

export class PrivateMoto {
  readonly endpoint: string;
  readonly admin: AwsKey;
  private readonly child: ChildProcess;

  private constructor(endpoint: string, admin: AwsKey, child: ChildProcess) {
    this.endpoint = endpoint;
    this.admin = admin;
    this.child = child;
  }

  static async start(binary: string): Promise<PrivateMoto> {
    const port = await freePort();
    const child = track(
      spawn(binary, ['-H', '127.0.0.1', '-p', String(port)], {
        env: { ...process.env, INITIAL_NO_AUTH_ACTION_COUNT: '3', AWS_DEFAULT_REGION: REGION },
        stdio: 'ignore',
      }),
    );
    const endpoint = `http://127.0.0.1:${port}`;
    try {
      // moto's own API answers without counting as an action.
      await until('private moto answers', async () => (await fetch(`${endpoint}/moto-api/data.json`)).ok, 30_000, 200);
      const nobody = { accessKeyId: 'bootstrap', secretAccessKey: 'bootstrap' };
      await iam(endpoint, nobody, { Action: 'CreateUser', UserName: 'admin' });
      await iam(endpoint, nobody, {
        Action: 'PutUserPolicy',
        UserName: 'admin',
        PolicyName: 'all',
        PolicyDocument: policy('Allow', '*'),
      });
      const admin = accessKey(await iam(endpoint, nobody, { Action: 'CreateAccessKey', UserName: 'admin' }));
      return new PrivateMoto(endpoint, admin, child);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  /** A user allowed every SQS action, and its key. */
  async user(name: string): Promise<AwsKey> {
    await this.iam({ Action: 'CreateUser', UserName: name });
    await this.iam({ Action: 'PutUserPolicy', UserName: name, PolicyName: 'sqs', PolicyDocument: policy('Allow', 'sqs:*') });
    return accessKey(await this.iam({ Action: 'CreateAccessKey', UserName: name }));
  }

  /** An explicit Deny on every SQS action: the key is still valid, its calls are refused (AccessDenied). */
  deny(name: string): Promise<string> {
    return this.iam({ Action: 'PutUserPolicy', UserName: name, PolicyName: 'deny', PolicyDocument: policy('Deny', 'sqs:*') });
  }

  allow(name: string): Promise<string> {
    return this.iam({ Action: 'DeleteUserPolicy', UserName: name, PolicyName: 'deny' });
  }

  private iam(params: Record<string, string>): Promise<string> {
    return iam(this.endpoint, this.admin, params);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

function policy(effect: 'Allow' | 'Deny', action: string): string {
  return JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: effect, Action: action, Resource: '*' }] });
}

async function iam(endpoint: string, key: AwsKey, params: Record<string, string>): Promise<string> {
  // Encoded as botocore does (RFC 3986, only -_.~ left as they are): moto signs the body it
  // re-encodes from the form it parsed, not the bytes we sent.
  const encode = (v: string) =>
    encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const body = Object.entries({ ...params, Version: '2010-05-08' })
    .map(([k, v]) => `${encode(k)}=${encode(v)}`)
    .join('&');
  const res = await fetch(`${endpoint}/`, { method: 'POST', headers: signedHeaders(new URL(endpoint), 'iam', body, key), body });
  const text = await res.text();
  if (!res.ok) throw new Error(`moto IAM ${params.Action}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return text;
}

function accessKey(xml: string): AwsKey {
  const accessKeyId = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(xml)?.[1];
  const secretAccessKey = /<SecretAccessKey>([^<]+)<\/SecretAccessKey>/.exec(xml)?.[1];
  if (accessKeyId === undefined || secretAccessKey === undefined)
    throw new Error(`CreateAccessKey gave no key: ${xml.slice(0, 300)}`);
  return { accessKeyId, secretAccessKey };
}
