import { describe, expect, it } from 'vitest';
import { redact } from '../../src/errors.ts';

/** Milliseconds `fn` takes. */
function timed(fn: () => void): number {
  const startedMs = performance.now();
  fn();
  return performance.now() - startedMs;
}

describe('redact', () => {
  it.each([
    ['amqp://user:pass@host', 'amqp://user:***@host'],
    ['AMQPS://U:P@H:5671/v', 'AMQPS://U:***@H:5671/v'],
    ['x amqps://u:p@h/v and http://a:b:c@d', 'x amqps://u:***@h/v and http://a:***@d'],
    ['kafka://u:p@h:9092,kafka://v:q@h2', 'kafka://u:***@h:9092,kafka://v:***@h2'],
    ['amqp://guest@host', 'amqp://guest@host'],
    ['amqp://host:5672/vhost', 'amqp://host:5672/vhost'],
    ['no url here', 'no url here'],
  ])('%j -> %j', (text, expected) => {
    expect(redact(text)).toBe(expected);
  });

  it.each([
    ['letters', 'a'.repeat(1_000_000)],
    ['schemes', 'a://'.repeat(250_000)],
    ['user parts', 'a://b:'.repeat(200_000)],
    ['a password without @', `http://u:${'p'.repeat(1_000_000)}`],
  ])('takes linear time over a megabyte of %s', (_, text) => {
    expect(timed(() => redact(text))).toBeLessThan(200);
  });
});
