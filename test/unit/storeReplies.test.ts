// The state store's reading of a store's error replies (redis.ts), as Redis 7 and Redis before 7
// word them: before 7, an error inside a script (every write here is one) quotes the code after a "-".
import { describe, expect, it } from 'vitest';
import { FailoverReconnects, failoverReply, replyCode } from '../../src/state/redis.ts';

describe('failoverReply: a store that failed over behind one address, to reconnect to', () => {
  it.each([
    ["READONLY You can't write against a read only replica.", true],
    [
      "ERR Error running script (call to f_3c1b): @user_script:1: @user_script: 1: -READONLY You can't write against a read only replica.",
      true,
    ],
    ['MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.', true],
    ['LOADING Redis is loading the dataset in memory', true],
    ['ERR Error running script (call to f_3c1b): @user_script:1: -LOADING Redis is loading the dataset in memory', true],
    ['OOM command not allowed when used memory > maxmemory.', false],
    ['NOPERM this user has no permissions to run the evalsha command', false],
    ['ERR value READONLYISH is not an integer', false],
  ])('%s: %s', (message, expected) => {
    expect(failoverReply(message)).toBe(expected);
  });
});

describe('replyCode: the kind of refusal a warning is said once for', () => {
  it.each([
    ['OOM command not allowed when used memory > maxmemory.', 'OOM'],
    ['NOPERM this user has no permissions to run the evalsha command', 'NOPERM'],
    [
      "ERR Error running script (call to f_3c1b): @user_script:1: @user_script: 1: -OOM command not allowed when used memory > 'maxmemory'.",
      'OOM',
    ],
    ['ERR Error running script (call to f_3c1b): @user_script:1: -NOPERM this user has no permissions', 'NOPERM'],
    ['ERR unknown command', 'ERR'],
  ])('%s: %s', (message, expected) => {
    expect(replyCode(message)).toBe(expected);
  });
});

// Found by review: a store answering READONLY for good was reconnected at each reply, and then,
// once the gap reached its longest, started over at 1 s each time.
describe('FailoverReconnects: when a failover reply reconnects', () => {
  it('at once, then 1, 2, 4 ... up to 60 s apart while the replies go on, and at once after a quiet minute', () => {
    const spacing = new FailoverReconnects();
    const reconnects: number[] = [];
    for (let ms = 0; ms <= 10 * 60_000; ms += 70) if (spacing.allow(ms)) reconnects.push(ms);
    const gaps = reconnects.slice(1).map((at, i) => at - reconnects[i]!);
    expect(gaps.slice(0, 7).map((g) => Math.round(g / 1000))).toEqual([1, 2, 4, 8, 16, 32, 60]);
    expect(gaps.slice(6).every((g) => g >= 60_000 && g < 60_100)).toBe(true);
    expect(reconnects.length).toBeLessThan(16);
    const last = reconnects.at(-1)!;
    expect(spacing.allow(last + 61_000 + 60_000)).toBe(true); // a minute without a reply: at once
    expect(spacing.allow(last + 61_000 + 60_500)).toBe(false);
    expect(spacing.allow(last + 61_000 + 61_001)).toBe(true); // 1 s on
  });
});
