// A condition that lasts (a failure, a silence) said in the log at a bounded rate: once it has
// lasted a while, a reminder now and then while it lasts, and its end only if it was said.

/** What note() asks the caller to log: the first line, a reminder, or nothing. */
export type EpisodeLine = 'first' | 'reminder' | undefined;

export class Episode {
  /** When it began (its first note). */
  readonly sinceMs: number;
  /** Occurrences noted (calls, reads, reloads), the first included. */
  count = 0;
  private loggedMs: number | undefined;
  private readonly firstAfterMs: number;
  private readonly remindEveryMs: number;

  /** Begins at `nowMs`: said once it has lasted `firstAfterMs`, then every `remindEveryMs`. */
  constructor(nowMs: number, firstAfterMs: number, remindEveryMs: number) {
    this.sinceMs = nowMs;
    this.firstAfterMs = firstAfterMs;
    this.remindEveryMs = remindEveryMs;
  }

  /** One more occurrence at `nowMs`: which line is due, if any (the caller writes it). */
  note(nowMs: number): EpisodeLine {
    this.count++;
    const due =
      this.loggedMs === undefined ? nowMs - this.sinceMs >= this.firstAfterMs : nowMs - this.loggedMs >= this.remindEveryMs;
    if (!due) return undefined;
    const line = this.loggedMs === undefined ? 'first' : 'reminder';
    this.loggedMs = nowMs;
    return line;
  }

  /** Whether any line was said of it: its end is worth one too. */
  get said(): boolean {
    return this.loggedMs !== undefined;
  }

  /** How long it has lasted at `nowMs`, in whole seconds. */
  seconds(nowMs: number): number {
    return Math.round((nowMs - this.sinceMs) / 1000);
  }
}
