// How long this process's event loop was held: the longest gap between 1 ms timers.

export class LoopStall {
  private last = performance.now();
  private longest = 0;
  private readonly timer = setInterval(() => {
    const now = performance.now();
    this.longest = Math.max(this.longest, now - this.last);
    this.last = now;
  }, 1);

  /** Forgets the gaps so far (the ones of starting the watch, say). */
  reset(): void {
    this.longest = 0;
  }

  /** Stops the timer; the longest gap (ms) since the start or the last reset. */
  stop(): number {
    clearInterval(this.timer);
    return this.longest;
  }
}
