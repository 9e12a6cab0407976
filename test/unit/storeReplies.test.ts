// The state store's reading of a store's error replies (redis.ts), as Redis 7 and Redis before 7
// word them: before 7, an error inside a script (every write here is one) quotes the code after a "-".
import { describe, expect, it } from 'vitest';
import { failoverReply, replyCode } from '../../src/state/redis.ts';

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
