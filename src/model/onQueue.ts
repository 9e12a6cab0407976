// Running on the queue when T < C. Erlang C sizes the steady fleet for λ: a load between two
// counts (λ / μ = 1.2) gets the larger one all the time. A fleet one short lets a queue grow, and
// that costs nothing while every message still starts within T: the replica given back costs no
// GPU-second until it is asked for again, and the fleet serves the same work either way. So a
// smaller fleet is asked for while the fluid queue says no message waits past T before a replica
// asked at the next decision serves (one HPA sync and a cold start away), with the noise of the
// counts of arrivals and completions ahead of each message; the queue then comes and goes, and a
// replica with it. decide.ts says when the model trusts this (docs/model.md, "On the queue").
//
// The fluid queue, FIFO: replicas serve from known moments (the ready ones now, the starting ones
// when their cold start ends, new ones after C), μ per second each, so the capacity served by τ,
// S(τ), is piecewise linear and its rate only grows. The message at position x of the waiting
// queue starts at S⁻¹(x); one arriving at t, at S⁻¹(W + λ·t). At the horizon one more replica
// serves (the one the next decision asks for), and what is left of the queue is that fleet's to
// serve: a queue one more replica cannot clear in time is no queue to run on. The waiting messages
// are as old as the queue's head says, spread evenly down to 0 at its tail.

/** Seconds from one decision to the next while a trigger is active: the HPA's sync period. */
export const DECISION_INTERVAL_SECONDS = 15;

/** Even points of the horizon at which the arrivals' waits are read, besides each landing. */
const SAMPLES = 8;

export interface QueueView {
  /** W: messages waiting. */
  readonly waiting: number;
  /** How long the oldest waiting message has waited, seconds. */
  readonly headAgeSeconds: number;
  /** λ, per second. */
  readonly arrivalRate: number;
  /** μ, messages per second per replica. */
  readonly perReplica: number;
}

/**
 * When each of `count` replicas serves, seconds from now, ascending: the `ready` ones at once, then
 * the starting ones (`startingSecondsLeft`, ascending), then new ones after `coldStartSeconds`.
 */
export function landings(
  ready: number,
  startingSecondsLeft: readonly number[],
  coldStartSeconds: number,
  count: number,
): number[] {
  const lands: number[] = [];
  for (let i = 0; i < Math.min(ready, count); i++) lands.push(0);
  for (const left of startingSecondsLeft) if (lands.length < count) lands.push(Math.min(left, coldStartSeconds));
  while (lands.length < count) lands.push(coldStartSeconds);
  return lands;
}

/**
 * The longest wait, seconds, of the messages waiting now and of those arriving within `horizon`,
 * served FIFO by the first `count` replicas of `lands` (ascending) and one more from the horizon
 * on (the replica the next decision asks for), with `z` standard deviations of the counts ahead
 * of each message on top. Infinite where no replica serves.
 */
export function longestWait(queue: QueueView, lands: readonly number[], count: number, horizon: number, z: number): number {
  const { waiting: W, headAgeSeconds: age, arrivalRate: lambda, perReplica: mu } = queue;
  if (!(mu > 0)) return Number.POSITIVE_INFINITY;
  // When the i-th replica serves: the correction's at the horizon.
  const land = (i: number) => (i < count ? lands[i]! : horizon);
  // S⁻¹(x): the capacity's rate grows by μ at each landing, the correction's the last.
  const startsBy = (x: number): number => {
    let served = 0;
    for (let i = 0; i < count; i++) {
      const span = (i + 1) * mu * (land(i + 1) - land(i));
      if (served + span >= x) return land(i) + (x - served) / ((i + 1) * mu);
      served += span;
    }
    return horizon + (x - served) / ((count + 1) * mu);
  };
  const ahead = (x: number, arrived: number) => x + z * Math.sqrt(x + arrived);
  const queued = (x: number) => age * (1 - x / Math.max(W, 1)) + startsBy(ahead(x, 0));
  const arriving = (t: number) => Math.max(0, startsBy(ahead(W + lambda * t, lambda * t)) - t);
  let longest = W > 0 ? Math.max(age, queued(W)) : 0;
  for (let i = 0; i <= SAMPLES; i++) longest = Math.max(longest, arriving((horizon * i) / SAMPLES));
  // Where a landing speeds the service up: the arrival then, and the waiting message it starts
  // (once per moment: the replicas asked for now all land after C).
  let served = 0;
  for (let i = 0; i < count; i++) {
    if (land(i) > 0 && (i === 0 || land(i) > land(i - 1))) {
      longest = Math.max(longest, arriving(land(i)));
      if (served < W) longest = Math.max(longest, queued(served));
    }
    served += (i + 1) * mu * (land(i + 1) - land(i));
  }
  if (served < W) longest = Math.max(longest, queued(served));
  return longest;
}
