// What Node's timers take.

/** The longest delay a Node timer takes: a longer one fires at once (every millisecond, for an interval). */
export const MAX_TIMER_MS = 2 ** 31 - 1;
