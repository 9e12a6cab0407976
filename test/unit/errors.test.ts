import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { InvalidTrigger, MAX_DETAILS_CHARS, SourceNotFound, clip, errorCode, quote, redact } from '../../src/errors.ts';
import { toServiceError } from '../../src/server/status.ts';

describe('redact', () => {
  it.each([
    ['amqp://user:pass@host', 'amqp://user:***@host'],
    ['AMQPS://U:P@H:5671/v', 'AMQPS://U:***@H:5671/v'],
    ['x amqps://u:p@h/v and http://a:b:c@d', 'x amqps://u:***@h/v and http://a:***@d'],
    ['kafka://u:p@h:9092,kafka://v:q@h2', 'kafka://u:***@h:9092,kafka://v:***@h2'],
    ['amqp://guest@host', 'amqp://guest@host'],
    ['redis://:s3cret@host:6379/0', 'redis://:***@host:6379/0'],
    ['rediss://scaler:s3cret@host', 'rediss://scaler:***@host'],
    ['amqp://host:5672/vhost', 'amqp://host:5672/vhost'],
    ['no url here', 'no url here'],
    // Found by test/integration/secrets.test.ts: the part after a raw "@" in a password, and the
    // password of a user that is an email address, were left in clear.
    ['amqp://u:p@ss@host/v', 'amqp://u:***@host/v'],
    ['amqp://alice@corp.example:s3cret@host', 'amqp://alice@corp.example:***@host'],
    ['amqp://guest@host:5672/v@x', 'amqp://guest@host:5672/v@x'],
    ['at http://127.0.0.1:1: connect ECONNREFUSED a@b', 'at http://127.0.0.1:1: connect ECONNREFUSED a@b'],
  ])('%j -> %j', (text, expected) => {
    expect(redact(text)).toBe(expected);
  });

  // A pattern that backtracked took seconds to minutes on these: a slow one runs into the test's
  // timeout; what each gives is asserted.
  it.each([
    ['letters', 'a'.repeat(1_000_000), 'a'.repeat(1_000_000)],
    ['schemes', 'a://'.repeat(250_000), 'a://'.repeat(250_000)],
    ['user parts', 'a://b:'.repeat(200_000), 'a://b:'.repeat(200_000)],
    ['a password without @', `http://u:${'p'.repeat(1_000_000)}`, `http://u:${'p'.repeat(1_000_000)}`],
    ['users of @s without a password', 'a://b@c:'.repeat(125_000), 'a://b@c:'.repeat(125_000)],
  ])('gives a megabyte of %s back as it is', (_, text, expected) => {
    expect(redact(text)).toBe(expected);
  });

  it('masks a megabyte-long password of @s whole', () => {
    const masked = redact(`http://u:${'p@'.repeat(500_000)}host`);
    expect(masked.startsWith('http://u:***@')).toBe(true);
    expect(masked).not.toContain('p@p@');
  });
});

const letters = (n: number) => 'a'.repeat(n);

describe('quote', () => {
  it.each([
    ['a short value as JSON would quote it', 'jobs', '"jobs"'],
    ['quotes and backslashes escaped', 'a"b\\c', '"a\\"b\\\\c"'],
    ['control and non-ASCII characters as \\u escapes', 'caf\u00e9\n\u{1F600}', '"caf\\u00e9\\u000a\\ud83d\\ude00"'],
    ['credentials masked before the cut', `amqp://u:${letters(200)}@h/v`, '"amqp://u:***@h/v"'],
    ['a long value cut, with its length', letters(100_000), `"${letters(40)}"... (100000 chars)`],
    ['the empty value', '', '""'],
  ])('%s', (_, value, expected) => {
    expect(quote(value)).toBe(expected);
  });

  it.each([letters(61), '\u00e9'.repeat(100), '"'.repeat(1000), `${letters(57)}\u00e9`])(
    'is at most 60 characters (%#)',
    (value) => {
      expect(quote(value).length).toBeLessThanOrEqual(60);
    },
  );

  it('cuts no escape in half', () => {
    expect(quote(`${letters(40)}\u00e9${letters(100)}`)).toBe(`"${letters(40)}"... (141 chars)`);
  });

  it('takes what it is asked for', () => {
    expect(quote(letters(200), 160)).toBe(`"${letters(143)}"... (200 chars)`);
  });
});

describe('clip', () => {
  it.each([
    ['short text as it is', 'queue "jobs" not found', 'queue "jobs" not found'],
    ['text of exactly the bound as it is', letters(MAX_DETAILS_CHARS), letters(MAX_DETAILS_CHARS)],
    ['longer text cut, with its length', letters(MAX_DETAILS_CHARS + 1), `${letters(MAX_DETAILS_CHARS - 16)}... (1001 chars)`],
    ['non-ASCII as \\u escapes', 'r\u00e9seau', 'r\\u00e9seau'],
  ])('%s', (_, text, expected) => {
    expect(clip(text)).toBe(expected);
  });
});

describe('toServiceError', () => {
  it('gives each code of the project errors as the gRPC status of that name, and INTERNAL for anything else', () => {
    expect(errorCode(new SourceNotFound('x'))).toBe('NOT_FOUND');
    expect(errorCode(new InvalidTrigger(['a: b']))).toBe('INVALID_ARGUMENT');
    expect(errorCode(new Error('x'))).toBe('INTERNAL');
    expect(errorCode('thrown text')).toBe('INTERNAL');
    expect(toServiceError(new InvalidTrigger(['a: b'])).code).toBe(status.INVALID_ARGUMENT);
    expect(toServiceError(new Error('x')).code).toBe(status.INTERNAL);
  });

  it('captures no stack for the project errors, keeps it for unexpected ones, and restores the limit', () => {
    const limit = Error.stackTraceLimit;
    expect(new SourceNotFound('x').stack).not.toContain('    at ');
    expect(new InvalidTrigger(['a: b']).stack).not.toContain('    at ');
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error('x').stack).toContain('    at ');
    // The status is what grpc-js reads (code, details, metadata), and a message for its fallback.
    expect(toServiceError(new SourceNotFound('gone'))).toMatchObject({ message: 'gone', details: 'gone' });
  });

  it('keeps short details whole', () => {
    expect(toServiceError(new SourceNotFound('rabbitmq queue "jobs": not found'))).toMatchObject({
      code: status.NOT_FOUND,
      details: 'rabbitmq queue "jobs": not found',
    });
  });

  it.each([
    ["a source error quoting a broker's long text", new SourceNotFound(`not found: ${letters(1_000_000)}`)],
    ['an unexpected error', new Error('\u00e9'.repeat(100_000))],
    ['a thrown string', `amqp://u:p@h ${letters(5000)}`],
  ])('bounds the details of %s to printable ASCII of MAX_DETAILS_CHARS', (_, err) => {
    const { details } = toServiceError(err);
    expect(details.length).toBeLessThanOrEqual(MAX_DETAILS_CHARS);
    expect(details).toMatch(/^[\x20-\x7e]*$/);
  });
});

describe('InvalidTrigger', () => {
  const unknown = (i: number) => `k${i}: unknown key; allowed: ${letters(250)}`;

  it('lists every problem that fits', () => {
    const err = new InvalidTrigger(['a: got "x"; allowed: a number', 'b: is required; allowed: a name']);
    expect(err.message).toBe('invalid trigger metadata: a: got "x"; allowed: a number; b: is required; allowed: a name');
    expect(err.total).toBe(2);
  });

  it.each([
    [4, 3, 'and 1 more'],
    [300, 3, 'and 297 more'],
    [10_000, 3, 'and 9997 more'],
  ])('lists the first problems of %i that fit (%i) and counts the rest', (count, listed, rest) => {
    const err = new InvalidTrigger(Array.from({ length: count }, (_, i) => unknown(i)));
    expect(err.message.length).toBeLessThanOrEqual(MAX_DETAILS_CHARS);
    expect(err.message).toMatch(/^invalid trigger metadata: k0: unknown key/);
    expect(err.message.match(/k\d+: unknown key/g)).toHaveLength(listed);
    expect(err.message.endsWith(`; ${rest}`)).toBe(true);
    expect(err.issues).toHaveLength(Math.min(count, 10));
    expect(err.total).toBe(count);
  });

  it('cuts a first problem longer than the whole bound', () => {
    const err = new InvalidTrigger([`gpu.query: Prometheus said ${letters(5000)}`, 'b: is required']);
    expect(err.message.length).toBeLessThanOrEqual(MAX_DETAILS_CHARS);
    expect(err.message).toMatch(/^invalid trigger metadata: gpu\.query: Prometheus said a+\.\.\. \(5027 chars\); and 1 more$/);
  });
});
