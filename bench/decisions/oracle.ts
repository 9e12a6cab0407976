// Policy (e), the offline lower bound: it knows every arrival and every cold start in advance.
// Per second it needs the replicas that finish the work arriving in the next WINDOW_S seconds
// within that window; each replica slot keeps warm exactly through gaps shorter than its cold
// start and is asked for exactly one cold start before it must serve.
import type { Policy, SimContext } from './simulate.ts';
import { CONCURRENCY } from './traces.ts';

export const WINDOW_S = 10;

/**
 * Replicas needed in each second [s, s+1): a fluid queue of work (slot-seconds) that the fleet
 * drains within WINDOW_S seconds, the fleet being ceil(outstanding / (concurrency * WINDOW_S)).
 */
export function neededPerSecond(ctx: SimContext): number[] {
  const seconds = Math.ceil(ctx.endS) + 1;
  const workBySecond = new Array<number>(seconds).fill(0);
  for (const r of ctx.trace.requests) workBySecond[Math.floor(r.arrivalS)]! += r.serviceS;
  const needed: number[] = [];
  let outstanding = 0;
  for (let s = 0; s < seconds; s++) {
    outstanding += workBySecond[s]!;
    const n = outstanding > 1e-9 ? Math.ceil(outstanding / (CONCURRENCY * WINDOW_S) - 1e-9) : 0;
    needed.push(n);
    outstanding = Math.max(0, outstanding - n * CONCURRENCY);
  }
  return needed;
}

export function oracle(): Policy {
  return {
    name: 'oracle',
    setup: `offline: sized to drain the outstanding work within ${WINDOW_S} s, warm through gaps shorter than the cold start, prewarmed exactly one cold start ahead`,
    start(ctx) {
      const needed = neededPerSecond(ctx);
      const slots = Math.max(0, ...needed);
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
          const askedS = Math.max(0, from - coldStart);
          ctx.at(askedS, () => {
            const replica = ctx.fleet.add(askedS, from - askedS);
            ctx.at(to, () => ctx.fleet.remove(to, replica));
          });
        }
      }
    },
  };
}
