// Source failures in the log, per source rather than per read: a warning when a source starts
// failing or its error changes, a reminder while it keeps failing, and a line when it reads again.
// A broker outage used to log a warning for every read of every queue on it (100 queues read every
// second: 100 lines a second), and the line that said what changed was lost among them. Every
// failure still counts in source_errors_total.
import { setNewest } from '../cache/boundedMap.ts';
import type { Logger } from './logger.ts';

/** While a source keeps failing with the same code, one reminder this often. */
export const REMIND_EVERY_MS = 60_000;
/** Failing sources tracked at most (the oldest forgotten first: a trigger gone, its source unread). */
const MAX_TRACKED = 10_000;
/** Codes remembered per failing source (there are a handful). */
const MAX_CODES = 8;

interface Failing {
  readonly sinceMs: number;
  code: string;
  lastLoggedMs: number;
  /** Failures since the source started failing (whatever the code). */
  failures: number;
  /** The codes it failed with since it started failing (a few: each new one is said at once). */
  readonly codes: string[];
  /**
   * It read again then: kept for REMIND_EVERY_MS, so that a source failing on and off (reads past
   * SOURCE_TIMEOUT_MS one time in two) goes on as one failure, not a warning and a recovery a read
   * (on a broker of 100 queues, 100 lines a second).
   */
  recoveredAtMs?: number;
  /** A failure line was said since its recovery was last said (or none was): the next recovery is said. */
  failureSaid: boolean;
  /** Times it read again and failed again within REMIND_EVERY_MS. */
  relapses: number;
}

interface Named {
  readonly identity: string;
  readonly label: string;
}

export class SourceFailureLog {
  private readonly failing = new Map<string, Failing>();

  private readonly logger: Logger;
  private readonly now: () => number;

  /**
   * The ScaledObjects that read a source (a few, and how many in all), for the lines that start or
   * remind of a failure, so the on-call knows which workloads it holds up; asked only when a line
   * is logged.
   */
  private readonly readers: (identity: string) => { readonly scaledObjects: string[]; readonly count: number } | undefined;

  constructor(
    logger: Logger,
    now: () => number,
    readers: (identity: string) => { readonly scaledObjects: string[]; readonly count: number } | undefined = () => undefined,
  ) {
    this.logger = logger;
    this.now = now;
    this.readers = readers;
  }

  /** The fields naming who reads `source`, when anyone is known to. */
  private readBy(source: Named): { scaledObjects?: string[]; scaledObjectCount?: number } {
    const found = this.readers(source.identity);
    if (found === undefined || found.count === 0) return {};
    return { scaledObjects: found.scaledObjects, scaledObjectCount: found.count };
  }

  failed(source: Named, code: string, message: string): void {
    const nowMs = this.now();
    let known = this.failing.get(source.identity);
    if (known?.recoveredAtMs !== undefined) {
      if (nowMs - known.recoveredAtMs > REMIND_EVERY_MS) known = undefined;
      else {
        known.recoveredAtMs = undefined;
        known.relapses++;
      }
    }
    // A code it already failed with since it started failing is no news: a broker that flaps
    // between two (UNAVAILABLE, DEADLINE_EXCEEDED) was a warning per read (found by review).
    if (known !== undefined && known.codes.includes(code)) {
      known.failures++;
      known.code = code;
      if (nowMs - known.lastLoggedMs < REMIND_EVERY_MS) return;
      known.lastLoggedMs = nowMs;
      known.failureSaid = true;
      this.logger.warn(
        {
          source: source.label,
          ...this.readBy(source),
          code,
          err: message,
          failures: known.failures,
          failingForSeconds: seconds(nowMs - known.sinceMs),
          ...(known.relapses > 0 && { readAgainAndFailedAgain: known.relapses }),
        },
        'source query still failing',
      );
      return;
    }
    const codes = known === undefined ? [code] : [...known.codes, code].slice(-MAX_CODES);
    const sinceMs = known?.sinceMs ?? nowMs;
    const failures = (known?.failures ?? 0) + 1;
    const relapses = known?.relapses ?? 0;
    setNewest(
      this.failing,
      source.identity,
      { sinceMs, code, lastLoggedMs: nowMs, failures, codes, failureSaid: true, relapses },
      MAX_TRACKED,
    );
    this.logger.warn(
      {
        source: source.label,
        ...this.readBy(source),
        code,
        err: message,
        ...(known !== undefined && { previousCode: known.code }),
      },
      'source query failed',
    );
  }

  succeeded(source: Named): void {
    const known = this.failing.get(source.identity);
    if (known === undefined) return;
    const nowMs = this.now();
    if (known.recoveredAtMs !== undefined) {
      // Reading for a while now: over.
      if (nowMs - known.recoveredAtMs > REMIND_EVERY_MS) this.failing.delete(source.identity);
      return;
    }
    known.recoveredAtMs = nowMs;
    // Said again only after a failure line since the last one said: a line each a minute at most
    // while it fails on and off, and never a "still failing" left as the last word.
    if (!known.failureSaid) return;
    known.failureSaid = false;
    this.logger.info(
      {
        source: source.label,
        failures: known.failures,
        failedForSeconds: seconds(nowMs - known.sinceMs),
        ...(known.relapses > 0 && { readAgainAndFailedAgain: known.relapses }),
      },
      'source query recovered',
    );
  }
}

function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}
