// Policy (e), the offline policy: it knows every arrival and every cold start in advance. It is no
// lower bound: it drains the work due within WINDOW_S whatever the objective, spending none of
// its slack (at 60 s the model spends less than it on most traces; docs/model.md).
// Per second it needs the replicas that get through the work due in the next WINDOW_S seconds
// (neededPerSecond); each replica slot keeps warm exactly through gaps shorter than its cold
// start and is asked for exactly one cold start before it must serve.
import type { Policy, SimContext } from './simulate.ts';

const WINDOW_S = 10;

/**
 * Replicas needed in each second [s, s+1): a fluid queue of work (slot-seconds) that the fleet
 * drains within WINDOW_S seconds, the fleet being ceil(due / (concurrency * WINDOW_S)), where
 * `due` counts each outstanding request's remaining work up to WINDOW_S: a request runs on one slot,
 * so no fleet finishes a minute-long generation within WINDOW_S, and none needs to (the objective
 * is on waiting, not on finishing). Each request drains at most one slot-second per second.
 */
export function neededPerSecond(ctx: SimContext): number[] {
  const seconds = Math.ceil(ctx.endS) + 1;
  const arrivals: number[][] = Array.from({ length: seconds }, () => []);
  for (const r of ctx.trace.requests) arrivals[Math.floor(r.arrivalS)]!.push(r.serviceS);
  const needed: number[] = [];
  const concurrency = ctx.fleet.concurrency;
  let outstanding: number[] = [];
  for (let s = 0; s < seconds; s++) {
    outstanding.push(...arrivals[s]!);
    let due = 0;
    for (const left of outstanding) due += Math.min(left, WINDOW_S);
    const n = due > 1e-9 ? Math.ceil(due / (concurrency * WINDOW_S) - 1e-9) : 0;
    needed.push(n);
    let capacity = n * concurrency;
    const next: number[] = [];
    for (const left of outstanding) {
      const served = Math.min(1, left, capacity);
      capacity -= served;
      if (left - served > 1e-9) next.push(left - served);
    }
    outstanding = next;
  }
  return needed;
}

export function oracle(): Policy {
  return {
    name: 'oracle',
    setup: `offline: sized to drain the outstanding work within ${WINDOW_S} s, warm through gaps shorter than the cold start, prewarmed exactly one cold start ahead`,
    start(ctx) {
      const needed = neededPerSecond(ctx);
      // A loop, not a spread: a trace of days has more seconds than a call takes arguments.
      let slots = 0;
      for (const n of needed) if (n > slots) slots = n;
      for (let slot = 1; slot <= slots; slot++) {
        // Busy intervals of this slot, [from, to) in seconds.
        const intervals: [number, number][] = [];
        for (let s = 0; s < needed.length; s++) {
          if (needed[s]! < slot) continue;
          const last = intervals.at(-1);
          if (last !== undefined && last[1] === s) last[1] = s + 1;
          else intervals.push([s, s + 1]);
        }
        let i = 0;
        while (i < intervals.length) {
          const coldStart = ctx.coldStart();
          const from = intervals[i]![0];
          let to = intervals[i]![1];
          // Bridge the following gaps while they are shorter than a cold start.
          while (i + 1 < intervals.length && intervals[i + 1]![0] - to < coldStart) to = intervals[++i]![1];
          i++;
          // Billed per node (--nodes), a node's boot ahead of that too: ready by `from` even when
          // no idle node is left (one is, and it is ready sooner).
          const askedS = Math.max(0, from - coldStart - ctx.fleet.bootSeconds);
          ctx.at(askedS, () => {
            const replica = ctx.fleet.add(askedS, Math.max(0, from - askedS - ctx.fleet.bootSeconds));
            ctx.at(to, () => ctx.fleet.remove(to, replica));
          });
        }
      }
    },
  };
}
