// Running on the queue when T < C. Erlang C sizes the steady fleet for λ: a load between two
// counts (λ / μ = 1.2) gets the larger one all the time. A fleet one short lets a queue grow, and
// that costs nothing while every message still starts within T: the replica given back costs no
// GPU-second until it is asked for again, and the fleet serves the same work either way. So a
// smaller fleet is asked for while the fluid queue says no message waits past T before the replicas
// asked at the next decision serve (one HPA sync and a cold start away), with the noise of the
// counts of arrivals and completions ahead of each message; the queue then comes and goes, and a
// replica with it. decide.ts says when the model trusts this (docs/model.md, "On the queue").
//
// The fluid queue, FIFO: replicas serve from known moments (the ready ones now, the starting ones
// when their cold start ends, new ones after C), μ per second each, so the capacity served by τ,
// S(τ), is piecewise linear and its rate only grows. The message at position x of the waiting
// queue starts at S⁻¹(x); one arriving at t, at S⁻¹(W + λ·t). At the horizon the correction
// serves (the replicas the next decision asks for: the smallest step the HPA takes), and what is
// left of the queue is that fleet's to serve. The waiting messages are as old as the queue's head
// says, spread evenly down to 0 at its tail. The longest wait is read where it can peak: at each
// landing, at the message that starts there, and where a piece's slope turns.

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
 * served FIFO by the first `count` replicas of `lands` (ascending) and `correction` more from the
 * horizon on, with `z` standard deviations of the counts ahead of each message on top. Infinite
 * where nothing serves.
 */
export function longestWait(
  queue: QueueView,
  lands: readonly number[],
  count: number,
  horizon: number,
  correction: number,
  z: number,
): number {
  const { waiting: W, headAgeSeconds: age, arrivalRate: lambda, perReplica: mu } = queue;
  if (!(mu > 0) || count + correction <= 0) return Number.POSITIVE_INFINITY;
  // The pieces of S: from each landing (the correction's at the horizon) at the rate of those landed.
  const at = (i: number) => (i < count ? Math.min(lands[i]!, horizon) : horizon);
  const rateAfter = (i: number) => (i < count ? (i + 1) * mu : (count + correction) * mu);
  const pieces = count + 1;
  const starts = (x: number): number => {
    let served = 0;
    for (let i = 0; i < pieces; i++) {
      const span = i + 1 < pieces ? rateAfter(i) * (at(i + 1) - at(i)) : Number.POSITIVE_INFINITY;
      if (served + span >= x) return at(i) + (x - served) / rateAfter(i);
      served += span;
    }
    return Number.POSITIVE_INFINITY;
  };
  const ahead = (x: number, arrived: number) => x + z * Math.sqrt(x + arrived);
  const queued = (x: number) => age * (1 - x / Math.max(W, 1)) + starts(ahead(x, 0));
  const arriving = (t: number) => Math.max(0, starts(ahead(W + lambda * t, lambda * t)) - t);
  let longest = W > 0 ? Math.max(age, queued(W)) : 0;
  longest = Math.max(longest, arriving(0), arriving(horizon));
  let served = 0;
  for (let i = 0; i < pieces; i++) {
    const from = at(i);
    // Replicas landing together (those asked for now, all after C) begin one piece: its last one's.
    if (i + 1 < pieces && at(i + 1) === from) continue;
    const rate = rateAfter(i);
    // The arrival and the waiting message that start as this piece begins (a kink of the wait):
    // W + λt + z·sqrt(W + 2λt) = served, a quadratic in u = sqrt(W + 2λt); x + z·sqrt(x) = served.
    const u = -z + Math.sqrt(z * z + 2 * served - W);
    const kink = (u * u - W) / (2 * lambda);
    if (lambda > 0 && u >= 0 && kink > 0 && kink < horizon) longest = Math.max(longest, arriving(kink));
    const root = (-z + Math.sqrt(z * z + 4 * served)) / 2;
    if (W > 0 && root * root < W) longest = Math.max(longest, queued(root * root));
    // Where the piece's slope turns: the noise's growth meets the spare rate.
    if (lambda > 0 && rate > lambda) {
      const peak = ((z * lambda) / (rate - lambda)) ** 2;
      const turn = (peak - W) / (2 * lambda);
      if (turn > 0 && turn < horizon) longest = Math.max(longest, arriving(turn));
    }
    if (W > 0 && age > 0 && (rate * age) / W > 1) {
      const sqrtX = z / (2 * ((rate * age) / W - 1));
      if (sqrtX * sqrtX < W) longest = Math.max(longest, queued(sqrtX * sqrtX));
    }
    if (from > 0 && from < horizon) longest = Math.max(longest, arriving(from));
    if (i + 1 < pieces) served += rate * (at(i + 1) - from);
  }
  return longest;
}
