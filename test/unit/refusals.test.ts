import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry/logger.ts';
import { logLines } from '../support/logLines.ts';
import { RefusalLog } from '../../src/telemetry/refusals.ts';

/** A RefusalLog on the real logger, its lines parsed, and a clock the test moves. */
function bed() {
  const { sink, lines } = logLines();
  let nowMs = 0;
  const log = new RefusalLog(createLogger('info', sink), () => nowMs);
  const at = (ms: number) => (nowMs = ms);
  const shown = () =>
    lines.map(({ level, msg, namespace, name, err, refusals, otherRefusalsNotLogged }) => ({
      level,
      msg,
      namespace,
      name,
      err,
      refusals,
      otherRefusalsNotLogged,
    }));
  return { log, at, lines, shown };
}

const so = { namespace: 'ml', name: 'llm' };
const bad = 'invalid trigger metadata: maxReplicas: got "zero"; allowed: an integer > 0';
const worse = 'invalid trigger metadata: rabbitmq.queueName: is required; allowed: a queue name';

describe('refused trigger metadata in the log and /explain', () => {
  it('one warning naming the ScaledObject and its issues, a reminder a minute on, again at once when the issues change', () => {
    const { log, at, shown } = bed();
    for (let s = 0; s <= 65; s++) {
      at(s * 1000);
      log.add(so, bad);
    }
    at(66_000);
    log.add(so, worse);
    expect(shown()).toEqual([
      {
        level: 'warn',
        msg: 'trigger metadata refused',
        namespace: 'ml',
        name: 'llm',
        err: bad,
        refusals: 1,
        otherRefusalsNotLogged: undefined,
      },
      {
        level: 'warn',
        msg: 'trigger metadata still refused',
        namespace: 'ml',
        name: 'llm',
        err: bad,
        refusals: 61,
        otherRefusalsNotLogged: undefined,
      },
      {
        level: 'warn',
        msg: 'trigger metadata refused',
        namespace: 'ml',
        name: 'llm',
        err: worse,
        refusals: 1,
        otherRefusalsNotLogged: undefined,
      },
    ]);
    expect(log.list()).toEqual([{ namespace: 'ml', name: 'llm', atMs: 66_000, message: worse, refusals: 1 }]);
  });

  // Found by review: a deleted ScaledObject's refusal stayed in /explain for ever.
  it('forgets a refusal not repeated for 30 minutes (KEDA repeats a refused call every polling interval)', () => {
    const { log, at } = bed();
    at(1_000);
    log.add({ namespace: 'ml', name: 'gone' }, bad);
    at(20 * 60_000);
    log.add({ namespace: 'ml', name: 'still' }, bad);
    at(30 * 60_000 + 1_000);
    expect(log.list().map((r) => r.name)).toEqual(['gone', 'still']);
    at(30 * 60_000 + 1_001);
    expect(log.list().map((r) => r.name)).toEqual(['still']);
  });

  // Found by review: 300 refused calls with 200 KB names, each kept whole, exhausted the chart's heap.
  it("keeps a name no ScaledObject has clipped to Kubernetes' length, and clears it by the same name", () => {
    const { log, lines } = bed();
    const huge = { namespace: 'n'.repeat(100_000), name: 'x'.repeat(200_000) };
    log.add(huge, bad);
    const [kept] = log.list();
    expect(kept!.namespace.length).toBeLessThanOrEqual(63);
    expect(kept!.name.length).toBeLessThanOrEqual(253);
    expect(kept!.name).toMatch(/\(200000 chars\)$/);
    expect(JSON.stringify(lines).length).toBeLessThan(2_000);
    log.clear(huge);
    expect(log.list()).toEqual([]);
  });

  // Found by review: keyed by the clipped (escaped) name, 'é' and a literal '\\u00e9' were one entry.
  it('keeps names within the limits as given: two that read alike escaped are two', () => {
    const { log } = bed();
    log.add({ namespace: 'ml', name: 'é' }, bad);
    log.add({ namespace: 'ml', name: '\\u00e9' }, bad);
    expect(log.list()).toHaveLength(2);
    log.clear({ namespace: 'ml', name: 'é' });
    expect(log.list().map((r) => r.name)).toEqual(['\\u00e9']);
  });

  it('is over once the metadata is taken', () => {
    const { log } = bed();
    log.add(so, bad);
    log.add({ namespace: 'ml', name: 'other' }, bad);
    log.clear(so);
    expect(log.list().map((r) => r.name)).toEqual(['other']);
  });

  // Found by review: each accepted call of the other trigger cleared the refusal, so every poll
  // logged it as new, and /explain showed it or not by which trigger KEDA asked last.
  it('a ScaledObject with one trigger refused and another taken: reminders a minute apart, counted on', () => {
    const { log, at, shown } = bed();
    for (let poll = 0; poll <= 4; poll++) {
      at(poll * 30_000);
      log.add(so, bad);
      at(poll * 30_000 + 5);
      log.clear(so);
      at(poll * 30_000 + 10);
      log.clear(so); // GetMetrics and IsActive both
    }
    expect(shown().map((l) => [l.msg, l.refusals])).toEqual([
      ['trigger metadata refused', 1],
      ['trigger metadata still refused', 3],
      ['trigger metadata still refused', 5],
    ]);
    // /explain shows it whichever of the two KEDA asked last.
    const listed = [{ namespace: 'ml', name: 'llm', atMs: 120_000, message: bad, refusals: 5 }];
    expect(log.list()).toEqual(listed);
    at(150_000);
    log.add(so, bad);
    expect(log.list()).toEqual([{ namespace: 'ml', name: 'llm', atMs: 150_000, message: bad, refusals: 6 }]);
  });

  // Found by review: each turn of two triggers refused for different issues was news, a warning a
  // call, and ten such ScaledObjects spent the line budget before a newly broken one was logged.
  it('a ScaledObject with two triggers refused for different issues: each issue once, then reminders a minute apart', () => {
    const { log, at, shown } = bed();
    for (let poll = 0; poll < 20; poll++) {
      for (const [i, issue] of [bad, worse, bad, worse].entries()) {
        at(poll * 30_000 + i); // GetMetrics and IsActive for each trigger
        log.add(so, issue);
      }
    }
    const lines = shown().map((l) => l.msg);
    expect(lines.slice(0, 2)).toEqual(['trigger metadata refused', 'trigger metadata refused']);
    expect(
      shown()
        .slice(0, 2)
        .map((l) => l.err),
    ).toEqual([bad, worse]);
    // 9.5 minutes of polls: a reminder a minute.
    expect(lines.slice(2)).toEqual(Array.from({ length: 9 }, () => 'trigger metadata still refused'));
  });

  it('the same with a ScaledObject of eight triggers, each refused for its own issue', () => {
    const { log, at, shown } = bed();
    const issues = Array.from({ length: 8 }, (_, i) => `invalid trigger metadata: k${i}: got "x"; allowed: a number`);
    for (let poll = 0; poll < 4; poll++) {
      for (const [i, issue] of issues.entries()) {
        at(poll * 30_000 + i);
        log.add(so, issue);
      }
    }
    // Each issue once at the first poll, one reminder at the third (a minute on).
    expect(shown().map((l) => l.msg)).toEqual([
      ...issues.map(() => 'trigger metadata refused'),
      'trigger metadata still refused',
    ]);
  });

  // Found by review: /explain showed the refused one or not by which of the two KEDA asked last.
  it('/explain lists a trigger refused beside one taken until two polls pass without its refusal (an edit fixed it)', () => {
    const { log, at } = bed();
    const listedAt = (ms: number) => (at(ms), log.list().map((r) => r.atMs));
    for (let poll = 0; poll <= 3; poll++) {
      at(poll * 30_000);
      log.add(so, bad);
      at(poll * 30_000 + 10);
      log.clear(so);
      expect(listedAt(poll * 30_000 + 20_000)).toEqual(poll === 0 ? [] : [poll * 30_000]);
    }
    // The edit: the other trigger goes on being taken, this one no longer refused.
    for (let ms = 100_000; ms <= 160_000; ms += 15_000) {
      at(ms);
      log.clear(so);
    }
    expect(listedAt(150_000)).toEqual([90_000]);
    expect(listedAt(150_001)).toEqual([]);
  });

  // Found by review of the above: polls more than 5 minutes apart were each logged as new again.
  it('the same with a pollingInterval of 6 minutes: counted on from its second poll, a reminder each poll', () => {
    const { log, at, shown } = bed();
    for (let poll = 0; poll <= 3; poll++) {
      at(poll * 360_000);
      log.add(so, bad);
      // The other trigger's GetMetrics, every 15 s between the polls.
      for (let ms = 5; ms < 360_000; ms += 15_000) {
        at(poll * 360_000 + ms);
        log.clear(so);
      }
    }
    // Its first gap is unknown and longer than an edit's: that poll starts over, once.
    expect(shown().map((l) => [l.msg, l.refusals])).toEqual([
      ['trigger metadata refused', 1],
      ['trigger metadata refused', 1],
      ['trigger metadata still refused', 2],
      ['trigger metadata still refused', 3],
    ]);
  });

  it('lets a fixed refusal go at the first call taken 30 minutes on, so that calls find no entry', () => {
    const { log, at } = bed();
    const entries = () => (log as unknown as { refused: Map<string, unknown> }).refused.size;
    log.add(so, bad);
    at(1000);
    log.clear(so);
    at(30 * 60_000);
    log.clear(so);
    expect(entries()).toBe(1);
    at(30 * 60_000 + 1);
    log.clear(so);
    expect(entries()).toBe(0);
  });

  it('a ScaledObject broken again by an edit minutes after it was fixed is refused anew', () => {
    const { log, at, shown } = bed();
    log.add(so, bad);
    for (let s = 1; s <= 600; s += 15) {
      at(s * 1000);
      log.clear(so);
    }
    at(601_000);
    log.add(so, bad);
    expect(shown().map((l) => [l.msg, l.refusals])).toEqual([
      ['trigger metadata refused', 1],
      ['trigger metadata refused', 1],
    ]);
  });

  it('logs at most 60 lines a minute over all ScaledObjects, and counts the rest in the next line', () => {
    const { log, at, lines, shown } = bed();
    for (let i = 0; i < 200; i++) log.add({ namespace: 'fuzz', name: `so-${i}` }, bad);
    expect(lines).toHaveLength(60);
    expect(log.list()).toHaveLength(200);
    at(2_000); // two lines' worth of budget back
    log.add({ namespace: 'fuzz', name: 'so-200' }, bad);
    log.add({ namespace: 'fuzz', name: 'so-201' }, bad);
    log.add({ namespace: 'fuzz', name: 'so-202' }, bad);
    expect(shown().slice(60)).toEqual([
      expect.objectContaining({ name: 'so-200', otherRefusalsNotLogged: 140 }),
      expect.objectContaining({ name: 'so-201', otherRefusalsNotLogged: undefined }),
    ]);
    // A ScaledObject left out of the log is logged (as first refused) when there is room again.
    at(60_000);
    log.add({ namespace: 'fuzz', name: 'so-199' }, bad);
    expect(shown().at(-1)).toMatchObject({ msg: 'trigger metadata refused', name: 'so-199', refusals: 2 });
  });
});
