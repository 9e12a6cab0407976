// Replica marks over a sliding window: the ones still young enough, and the running maximum the
// scale-down hold and the consumers' reading use. Pure.
import { MAX_MARKS, type ReplicaMark } from './types.ts';

const NO_MARKS: readonly ReplicaMark[] = Object.freeze([]);

/** The marks less than `windowMs` old: the same list when none has expired (no copy per call). */
export function within(marks: readonly ReplicaMark[], nowMs: number, windowMs: number): readonly ReplicaMark[] {
  // Counted in an indexed loop: the common case (none expired) allocates nothing.
  let expired = 0;
  for (let i = 0; i < marks.length; i++) if (nowMs - marks[i]!.atMs >= windowMs) expired++;
  if (expired === 0) return marks;
  return expired === marks.length ? NO_MARKS : marks.filter((m) => nowMs - m.atMs < windowMs);
}

/**
 * The marks that can still be the largest within the last `windowMs`, after adding `mark`:
 * replicas strictly decreasing from oldest to newest, so the first is the window's maximum. A
 * mark followed by one at least as large can never be the maximum again and is dropped, so the
 * list stays short however often the trigger is evaluated.
 */
export function slidingMax(marks: readonly ReplicaMark[], mark: ReplicaMark, windowMs: number): ReplicaMark[] {
  const kept = within(marks, mark.atMs, windowMs);
  // The marks the new one outdoes trail (replicas decrease from oldest to newest).
  let end = kept.length;
  while (end > 0 && kept[end - 1]!.replicas <= mark.replicas) end--;
  // One list of the exact length (filter and push would grow a spare backing store per call).
  const next = kept.slice(0, end).concat(mark);
  if (next.length <= MAX_MARKS) return next;
  // A demand falling a little at each of many decisions within the window (a queue drained over a
  // long cold start): the two neighbours closest in size become one, the larger held until the
  // later one's time, which holds no less than before.
  let at = 0;
  for (let i = 1; i < next.length - 1; i++) {
    if (next[i]!.replicas - next[i + 1]!.replicas < next[at]!.replicas - next[at + 1]!.replicas) at = i;
  }
  next.splice(at, 2, { atMs: next[at + 1]!.atMs, replicas: next[at]!.replicas });
  return next;
}
