import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry/logger.ts';
import { logLines } from '../support/logLines.ts';
import { REMIND_EVERY_MS, SourceFailureLog } from '../../src/telemetry/sourceFailures.ts';

/** A SourceFailureLog on the real logger, its lines parsed, and a clock the test moves. */
function bed() {
  const { sink, lines } = logLines();
  let nowMs = 0;
  const log = new SourceFailureLog(createLogger('info', sink), () => nowMs);
  const at = (ms: number) => (nowMs = ms);
  const shown = () =>
    lines.map(({ level, msg, source, code, failures, previousCode }) => ({ level, msg, source, code, failures, previousCode }));
  return { log, at, lines, shown };
}

const queue = { identity: 'rabbitmq|jobs', label: 'rabbitmq queue "jobs"' };
const other = { identity: 'rabbitmq|batch', label: 'rabbitmq queue "batch"' };

describe('source failures in the log', () => {
  it('one warning when a source starts failing, none for each read after, a reminder a minute on, one line when it reads again', () => {
    const { log, at, shown, lines } = bed();
    for (let s = 0; s <= 125; s++) {
      at(s * 1000);
      log.failed(queue, 'UNAVAILABLE', 'connect ECONNREFUSED');
    }
    at(130_000);
    log.succeeded(queue);
    log.succeeded(queue);
    expect(shown()).toEqual([
      { level: 'warn', msg: 'source query failed', source: queue.label, code: 'UNAVAILABLE' },
      { level: 'warn', msg: 'source query still failing', source: queue.label, code: 'UNAVAILABLE', failures: 61 },
      { level: 'warn', msg: 'source query still failing', source: queue.label, code: 'UNAVAILABLE', failures: 121 },
      { level: 'info', msg: 'source query recovered', source: queue.label, failures: 126 },
    ]);
    expect(lines[1]).toMatchObject({ failingForSeconds: REMIND_EVERY_MS / 1000, err: 'connect ECONNREFUSED' });
    expect(lines[3]).toMatchObject({ failedForSeconds: 130 });
  });

  it.each([
    ['another code', 'UNAUTHENTICATED', 1],
    ['the same code', 'UNAVAILABLE', 0],
  ])('a failure with %s logs at once: %s', (_name, code, extra) => {
    const { log, at, shown } = bed();
    log.failed(queue, 'UNAVAILABLE', 'down');
    at(5000);
    log.failed(queue, code, 'again');
    expect(shown()).toHaveLength(1 + extra);
    if (extra === 1) expect(shown()[1]).toMatchObject({ code, previousCode: 'UNAVAILABLE', failures: undefined });
  });

  // Found by review: each change of code was a warning, so a broker flapping between two was one a read.
  it('a source flapping between codes it already failed with: each code said once, then reminders a minute apart', () => {
    const { log, at, shown } = bed();
    for (let s = 0; s < 120; s++) {
      at(s * 1000);
      log.failed(queue, s % 2 === 0 ? 'UNAVAILABLE' : 'DEADLINE_EXCEEDED', 'flapping');
    }
    at(120_000);
    log.failed(queue, 'UNAUTHENTICATED', 'refused');
    expect(shown().map((l) => [l.msg, l.code, l.previousCode])).toEqual([
      ['source query failed', 'UNAVAILABLE', undefined],
      ['source query failed', 'DEADLINE_EXCEEDED', 'UNAVAILABLE'],
      ['source query still failing', 'DEADLINE_EXCEEDED', undefined],
      ['source query failed', 'UNAUTHENTICATED', 'DEADLINE_EXCEEDED'],
    ]);
    // The reminder counts every failure since it started failing, as its duration does.
    expect(shown()[2]!.failures).toBe(62); // 0 s to 61 s, a minute after the second code
  });

  it('tracks each source apart, and a success of one source says nothing of another', () => {
    const { log, at, shown } = bed();
    log.failed(queue, 'UNAVAILABLE', 'down');
    log.failed(other, 'NOT_FOUND', 'no queue');
    at(1000);
    log.succeeded(other);
    log.failed(queue, 'UNAVAILABLE', 'down');
    log.failed(other, 'NOT_FOUND', 'no queue');
    // other failing again within a minute of its recovery is the same failure (below); queue's goes on.
    expect(shown().map((l) => `${l.msg} ${l.source}`)).toEqual([
      `source query failed ${queue.label}`,
      `source query failed ${other.label}`,
      `source query recovered ${other.label}`,
    ]);
  });

  // Found by review: a source slower than SOURCE_TIMEOUT_MS one read in two logged a warning and a
  // recovery a read (100 queues on such a broker: 100 lines a second).
  it('a source failing on and off: one failure, one recovery, then a line of each a minute at most', () => {
    const { log, at, shown, lines } = bed();
    for (let s = 0; s < 150; s++) {
      at(s * 1000);
      if (s % 2 === 0) log.failed(queue, 'DEADLINE_EXCEEDED', 'timeout');
      else log.succeeded(queue);
    }
    expect(shown().map((l) => l.msg)).toEqual([
      'source query failed',
      'source query recovered',
      'source query still failing',
      'source query recovered',
      'source query still failing',
      'source query recovered',
    ]);
    expect(lines[2]).toMatchObject({ failures: 31, readAgainAndFailedAgain: 30 });
    // Reading for over a minute: over, and a failure after that is news again.
    for (let s = 150; s <= 215; s++) {
      at(s * 1000);
      log.succeeded(queue);
    }
    at(216_000);
    log.failed(queue, 'DEADLINE_EXCEEDED', 'timeout');
    expect(shown().at(-1)).toMatchObject({ msg: 'source query failed', failures: undefined });
  });

  it('says a recovery once when nothing was said of a relapse, its failure and recovery in one millisecond', () => {
    const { log, at, shown } = bed();
    at(0);
    log.failed(queue, 'UNAVAILABLE', 'down');
    log.succeeded(queue);
    at(500);
    log.failed(queue, 'UNAVAILABLE', 'down');
    at(1000);
    log.succeeded(queue);
    expect(shown().map((l) => l.msg)).toEqual(['source query failed', 'source query recovered']);
  });

  // Found by review: a recovery within a minute of the last one said was not said, though a
  // "still failing" came between: that was the last word while the source read for good.
  it('says a recovery that follows a reminder, however soon after the last recovery', () => {
    const { log, at, shown } = bed();
    at(0);
    log.failed(queue, 'UNAVAILABLE', 'down');
    at(50_000);
    log.succeeded(queue);
    at(55_000);
    log.failed(queue, 'UNAVAILABLE', 'down');
    at(61_000);
    log.failed(queue, 'UNAVAILABLE', 'down');
    at(65_000);
    log.succeeded(queue);
    expect(shown().map((l) => l.msg)).toEqual([
      'source query failed',
      'source query recovered',
      'source query still failing',
      'source query recovered',
    ]);
  });

  it('a source that reads is not logged at all', () => {
    const { log, shown } = bed();
    log.succeeded(queue);
    expect(shown()).toEqual([]);
  });
});
