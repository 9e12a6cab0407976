// Trigger metadata the scaler refused (INVALID_ARGUMENT), per ScaledObject: a warning when one is
// first refused or its issues change, a reminder while they stay, and its last refusal for
// /explain. KEDA shows the error in the ScaledObject's events; the scaler's own log and /explain
// said nothing of it, so whoever saw the refused-triggers alert could not tell which one.
import { setNewest } from '../cache/boundedMap.ts';
import { clip } from '../errors.ts';
import { MAX_NAMESPACE_CHARS, MAX_NAME_CHARS } from '../trigger/fields.ts';
import type { Logger } from './logger.ts';
import { REMIND_EVERY_MS } from './sourceFailures.ts';

/** ScaledObjects whose refusal is kept at most (the oldest forgotten first). */
const MAX_TRACKED = 10_000;
/**
 * A refusal not repeated for this long is forgotten (a deleted ScaledObject), as the engine
 * forgets a trigger no one asks about: KEDA repeats a refused call every polling interval.
 */
const KEPT_MS = 30 * 60_000;
/** Warnings at most per minute over all ScaledObjects: distinct names by the thousand (a broken
 * client, a fuzzer) cost a line each otherwise. What is left out is counted in the next line. */
const LINES_PER_MINUTE = 60;

/**
 * A ref's namespace and name as they are kept: as given within Kubernetes' lengths, else clipped
 * copies (the schema refuses such a name, so no clear() looks for it), not the client's whole text.
 */
function clipped(ref: { readonly namespace: string; readonly name: string }) {
  if (ref.namespace.length <= MAX_NAMESPACE_CHARS && ref.name.length <= MAX_NAME_CHARS) return ref;
  return { namespace: clip(ref.namespace, MAX_NAMESPACE_CHARS), name: clip(ref.name, MAX_NAME_CHARS) };
}

export interface Refusal {
  readonly namespace: string;
  readonly name: string;
  readonly atMs: number;
  /** The error KEDA got: the first issues, each naming its key and what is allowed; no secret. */
  readonly message: string;
  /** Calls refused since the issues last changed. */
  readonly refusals: number;
}

interface Tracked extends Refusal {
  lastLoggedMs: number;
  /** Metadata of the ScaledObject was last taken then (another of its triggers, or an edit). */
  acceptedMs?: number;
  /** The longest gap between two of its refusals so far: about KEDA's polling interval. */
  gapMs: number;
  /** Refused again, unchanged, after it was taken: another trigger of the ScaledObject parses. */
  alongside: boolean;
  /**
   * The issues it was refused with since it started, as hashes (MAX_ISSUES at most): triggers of
   * one ScaledObject refused for different issues take turns, and each turn would be news.
   */
  issues: readonly number[];
}

/** Issues remembered per ScaledObject: past its triggers (a ScaledObject has a handful). */
const MAX_ISSUES = 32;

/** A message's 32-bit FNV-1a hash: an issue remembered in 8 bytes, not its text. */
function issueOf(message: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < message.length; i++) hash = Math.imul(hash ^ message.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/**
 * Taken since its last refusal: an edit fixed it, or another trigger of the ScaledObject parses.
 * The log goes on counting it when it comes again (the other trigger's).
 */
const taken = (r: Tracked) => r.acceptedMs !== undefined && r.acceptedMs >= r.atMs;
/**
 * Still refused for /explain: not taken since, or refused alongside a trigger that parses and
 * within two of its gaps (KEDA asks for both every poll; a fix stops the refusals). Found by
 * review: /explain showed it or not by which of the two KEDA had asked last.
 */
const standing = (r: Tracked, nowMs: number) => !taken(r) || (r.alongside && nowMs - r.atMs <= 2 * r.gapMs);

/**
 * A refusal that comes again after this long taken, or twice its longest gap (a pollingInterval
 * past it), starts over in the log ("refused", not "still refused"): the ScaledObject broken again
 * by an edit, not its other trigger refused each poll (found by review: with polls 6 minutes
 * apart every one was logged as new).
 */
const STARTS_OVER_MS = 5 * 60_000;
/** The longest gap taken for KEDA's polling interval. */
const MAX_GAP_MS = 15 * 60_000;
const over = (r: Tracked, nowMs: number) => taken(r) && nowMs - r.atMs > Math.max(STARTS_OVER_MS, 2 * r.gapMs);

export class RefusalLog {
  private readonly refused = new Map<string, Tracked>();
  private tokens = LINES_PER_MINUTE;
  private refilledMs: number;
  private suppressed = 0;

  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(logger: Logger, now: () => number) {
    this.logger = logger;
    this.now = now;
    this.refilledMs = now();
  }

  /** A call whose metadata was refused with `message`. */
  add(given: { readonly namespace: string; readonly name: string }, message: string): void {
    const nowMs = this.now();
    const ref = clipped(given);
    const key = `${ref.namespace}/${ref.name}`;
    const known = this.refused.get(key);
    const issue = issueOf(message);
    const ongoing = known !== undefined && !over(known, nowMs);
    const same = ongoing && known.issues.includes(issue);
    const refusal: Tracked = {
      namespace: ref.namespace,
      name: ref.name,
      atMs: nowMs,
      message,
      refusals: same ? known.refusals + 1 : 1,
      lastLoggedMs: same ? known.lastLoggedMs : -Infinity,
      // Kept when it starts over: the first gap of polls 6 minutes apart looks like an edit.
      // At most MAX_GAP_MS: one long pause of KEDA's would otherwise keep an edit's refusal "still".
      gapMs:
        known !== undefined && known.issues.includes(issue) ? Math.min(MAX_GAP_MS, Math.max(known.gapMs, nowMs - known.atMs)) : 0,
      alongside: same && (known.alongside || taken(known)),
      issues: same ? known.issues : ongoing ? [...known.issues, issue].slice(-MAX_ISSUES) : [issue],
    };
    setNewest(this.refused, key, refusal, MAX_TRACKED);
    if (nowMs - refusal.lastLoggedMs < REMIND_EVERY_MS || !this.takeLine(nowMs)) return;
    const logged = refusal.lastLoggedMs > -Infinity;
    refusal.lastLoggedMs = nowMs;
    const { suppressed } = this;
    this.suppressed = 0;
    this.logger.warn(
      {
        namespace: ref.namespace,
        name: ref.name,
        err: message,
        refusals: refusal.refusals,
        ...(suppressed > 0 && { otherRefusalsNotLogged: suppressed }),
      },
      logged ? 'trigger metadata still refused' : 'trigger metadata refused',
    );
  }

  /**
   * The ScaledObject's metadata was taken: its refusal is over, unless it comes again. Kept, not
   * deleted: a ScaledObject with two triggers, one refused, is taken and refused every poll, and
   * each refusal logged as new (found by review: a warning every poll, the line budget spent).
   */
  clear(given: { readonly namespace: string; readonly name: string }): void {
    if (this.refused.size === 0) return;
    const ref = clipped(given);
    const known = this.refused.get(`${ref.namespace}/${ref.name}`);
    if (known === undefined) return;
    const nowMs = this.now();
    // Let go once not repeated for KEPT_MS, as list() does: sooner, its gap went with it, and polls
    // farther apart than 5 minutes were each logged as new again (found by review).
    if (nowMs - known.atMs > KEPT_MS) this.refused.delete(`${ref.namespace}/${ref.name}`);
    else known.acceptedMs = nowMs;
  }

  /** The last refusal of each ScaledObject still refused, for /explain; those not repeated for KEPT_MS forgotten. */
  list(): Refusal[] {
    const nowMs = this.now();
    const out: Refusal[] = [];
    for (const [key, tracked] of this.refused) {
      if (tracked.atMs < nowMs - KEPT_MS) this.refused.delete(key);
      else if (standing(tracked, nowMs)) {
        const { namespace, name, atMs, message, refusals } = tracked;
        out.push({ namespace, name, atMs, message, refusals });
      }
    }
    return out;
  }

  private takeLine(nowMs: number): boolean {
    this.tokens = Math.min(LINES_PER_MINUTE, this.tokens + ((nowMs - this.refilledMs) * LINES_PER_MINUTE) / 60_000);
    this.refilledMs = nowMs;
    if (this.tokens >= 1) {
      this.tokens--;
      return true;
    }
    this.suppressed++;
    return false;
  }
}
