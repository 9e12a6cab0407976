// The scaling model: signals + trigger + history -> desired replicas, activity, explanation.
// Pure (no I/O, no clock): the server and the simulator call this same function.
//
// D_backlog, cold-start aware: a replica asked for now serves only after C seconds, so project
// the backlog to then with the fleet that is running or already starting,
//   B' = B + λ·C − μ·(ready·C + Σ_starting (C − time left to start)),
// add no replica when B' <= 0, else size the fleet to carry λ and drain B' within T:
//   D = ceil((λ + B'/T) / μ).
// Without μ, KEDA's rule ceil(B / messagesPerReplica). D_gpu = ceil(G / u*).
// Scale-down waits one cold start (removing a replica that is needed again within C costs more
// than keeping it), and scale to zero waits for the learned keep-warm window (keepWarm.ts).
import { MAX_GAPS, appendBounded, coldStartCost, keepWarmWindow, predictGap } from './keepWarm.ts';
import { type BusyStretch, DEMAND_SOURCES, type Decision, type DemandTerm, type Demands, type ModelInput, type ModelOutput, type ReplicaMark, type Signals, type TriggerHistory } from './types.ts';
import type { ScalingConfig } from '../trigger/types.ts';

/** ceil that ignores float noise: 7 / 0.7 is 10.000000000000002, and must give 10, not 11. */
export function ceilSafe(x: number): number {
  const rounded = Math.round(x);
  return Math.abs(x - rounded) < 1e-9 ? rounded : Math.ceil(x);
}

export function emptyHistory(): TriggerHistory {
  return { idleGapsSeconds: [] };
}

/** Learned μ forgets evidence older than about this many seconds of saturated fleet. */
export const THROUGHPUT_TIME_CONSTANT_SECONDS = 600;
/** Busy periods whose peaks are remembered for prewarming. */
const MAX_PEAKS = 8;
/** Shared empty lists: a history that has none keeps no list of its own. */
const NO_MARKS: readonly ReplicaMark[] = Object.freeze([]);
const NO_PEAKS: readonly number[] = Object.freeze([]);

type Details = Record<string, number | string | boolean>;

/** Whether the fleet is saturated: it holds at least its nominal share of the backlog. */
export function fleetBusy(signals: Signals, scaling: ScalingConfig): boolean {
  const { consumers } = signals;
  return consumers !== undefined && consumers > 0 && signals.backlog >= consumers * scaling.messagesPerReplica;
}

/** Shortest saturated stretch that gives a throughput sample. */
export const MIN_STRETCH_SECONDS = 5;
/** Messages served while saturated before a learned μ is trusted. */
export const MIN_SERVED_TO_LEARN = 50;

export interface Throughput {
  readonly learned: number | undefined;
  readonly evidence: TriggerHistory['throughputEvidence'];
  readonly stretch: BusyStretch | undefined;
}

/**
 * μ learned from the brokers. Only a saturated fleet shows its capacity (an idle one serves just
 * what arrives), so evidence is the served-counter delta and the replica-seconds over whole
 * stretches during which the fleet stayed saturated with the same consumers, each closed at the
 * first decision that sees it otherwise (so the completions that ended it count too). μ is the
 * ratio of the two, old evidence fading over THROUGHPUT_TIME_CONSTANT_SECONDS of saturated time,
 * and is trusted once MIN_SERVED_TO_LEARN messages back it. Without counters: the smoothed
 * service rate per consumer while saturated stands in for the stretches.
 */
export function learnThroughput(signals: Signals, scaling: ScalingConfig, history: TriggerHistory, nowMs: number): Throughput {
  const busy = fleetBusy(signals, scaling);
  let evidence = history.throughputEvidence;
  const add = (served: number, replicaSeconds: number, seconds: number) => {
    const keep = Math.exp(-seconds / THROUGHPUT_TIME_CONSTANT_SECONDS);
    evidence = { served: (evidence?.served ?? 0) * keep + served, replicaSeconds: (evidence?.replicaSeconds ?? 0) * keep + replicaSeconds };
  };
  let stretch: BusyStretch | undefined;
  if (signals.servedTotal === undefined) {
    const rate = signals.serviceRatePerSecond;
    const dtSeconds = history.lastDecisionAtMs === undefined ? 0 : Math.max(0, nowMs - history.lastDecisionAtMs) / 1000;
    if (busy && rate !== undefined && rate > 0) add(rate * dtSeconds, signals.consumers! * dtSeconds, dtSeconds);
  } else {
    const open = history.busyStretch;
    if (busy && open !== undefined && open.consumers === signals.consumers) {
      stretch = open;
    } else {
      if (open !== undefined) {
        const seconds = (nowMs - open.startMs) / 1000;
        const served = signals.servedTotal - open.servedTotal;
        if (seconds >= MIN_STRETCH_SECONDS && served >= 0) add(served, open.consumers * seconds, seconds);
      }
      if (busy) stretch = { startMs: nowMs, servedTotal: signals.servedTotal, consumers: signals.consumers! };
    }
  }
  const trusted = evidence !== undefined && evidence.served >= MIN_SERVED_TO_LEARN && evidence.replicaSeconds > 0;
  const learned = trusted ? evidence!.served / evidence!.replicaSeconds : history.learnedThroughputPerReplica;
  return { learned, evidence, stretch };
}

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
  return kept.slice(0, end).concat(mark);
}

interface FleetView {
  readonly ready: number;
  /** Seconds each starting replica still needs before it serves. */
  readonly startingSecondsLeft: readonly number[];
}

/** Ready replicas (brokers' consumers when known) and the starting ones the model asked for. */
export function fleetView(signals: Signals, askedFleet: number, asks: readonly ReplicaMark[], coldStartSeconds: number, nowMs: number): FleetView {
  const asked = asks.reduce((n, a) => n + a.replicas, 0);
  const starting = signals.consumers !== undefined ? Math.max(0, askedFleet - signals.consumers) : Math.min(askedFleet, asked);
  const ready = signals.consumers ?? askedFleet - starting;
  const left: number[] = [];
  for (const ask of [...asks].reverse()) {
    for (let i = 0; i < ask.replicas && left.length < starting; i++) {
      left.push(Math.max(0, (ask.atMs - nowMs) / 1000 + coldStartSeconds));
    }
  }
  // Starting replicas older than any remembered ask are late: count no help from them.
  while (left.length < starting) left.push(coldStartSeconds);
  return { ready, startingSecondsLeft: left };
}

/** D_backlog and the figures behind it. */
export function backlogDemand(signals: Signals, scaling: ScalingConfig, mu: number | undefined, fleet: FleetView, details: Details): number {
  const backlog = Math.max(0, signals.backlog);
  if (mu === undefined || !(mu > 0)) {
    details.rule = 'ceil(B / messagesPerReplica): no throughput known yet';
    return ceilSafe(backlog / scaling.messagesPerReplica);
  }
  const C = scaling.coldStartSeconds;
  const T = scaling.drainSeconds;
  const lambda = Math.max(0, signals.arrivalRatePerSecond ?? 0);
  const fleetSize = fleet.ready + fleet.startingSecondsLeft.length;
  const servedInHorizon = mu * (fleet.ready * C + fleet.startingSecondsLeft.reduce((s, left) => s + Math.max(0, C - left), 0));
  const projected = backlog + lambda * C - servedInHorizon;
  // Replicas already there that the current backlog needs to be gone within T.
  const keep = Math.min(fleetSize, ceilSafe((lambda + backlog / T) / mu));
  const add = projected > 0 ? ceilSafe((lambda + projected / T) / mu) : 0;
  Object.assign(details, {
    rule: projected > 0 ? 'ceil((λ + B′/T) / μ)' : 'fleet drains B before a new replica could serve: add none',
    arrivalRatePerSecond: round(lambda),
    projectedBacklog: round(projected),
    readyReplicas: fleet.ready,
    startingReplicas: fleet.startingSecondsLeft.length,
  });
  return Math.max(keep, add);
}

export function decide({ signals, scaling, history, nowMs }: ModelInput): ModelOutput {
  const C = scaling.coldStartSeconds;
  const details: Details = {};
  const backlogActive = signals.backlog > scaling.activationBacklog;
  const gpuActive = signals.busyGpus !== undefined && signals.busyGpus > (signals.gpuActivationThreshold ?? 0);
  const working = backlogActive || gpuActive;

  // Idle gaps: one ends when work resumes; a busy period ends when work stops.
  let idleSinceMs = history.idleSinceMs;
  let gaps = history.idleGapsSeconds;
  let busyPeaks = history.busyPeaks ?? NO_PEAKS;
  let busyPeak = history.busyPeakReplicas;
  if (working && idleSinceMs !== undefined) {
    gaps = appendBounded(gaps, (nowMs - idleSinceMs) / 1000, MAX_GAPS);
    idleSinceMs = undefined;
  } else if (!working && idleSinceMs === undefined && history.lastWorkAtMs !== undefined) {
    idleSinceMs = nowMs;
    if (busyPeak !== undefined) busyPeaks = appendBounded(busyPeaks, busyPeak, MAX_PEAKS);
    busyPeak = undefined;
  }

  const { learned, evidence, stretch } = learnThroughput(signals, scaling, history, nowMs);
  const mu = scaling.throughputPerReplica ?? learned;
  if (mu !== undefined) {
    details.throughputPerReplica = round(mu);
    details.throughputSource = scaling.throughputPerReplica !== undefined ? 'configured' : 'learned';
  }
  const askedFleet = history.lastActive === true ? (history.lastDesiredReplicas ?? 0) : 0;
  const asks = within(history.recentAsks ?? NO_MARKS, nowMs, C * 1000);
  const fleet = fleetView(signals, askedFleet, asks, C, nowMs);

  const demands: Demands & { backlog: number } = {
    backlog: backlogDemand(signals, scaling, mu, fleet, details),
  };
  if (signals.busyGpus !== undefined && signals.gpuTargetUtilization !== undefined) {
    demands.gpu = ceilSafe(Math.max(0, signals.busyGpus) / signals.gpuTargetUtilization);
  }
  const unheld = Math.max(demands.backlog, demands.gpu ?? 0);
  if (working) busyPeak = Math.max(busyPeak ?? 0, unheld);

  const K = coldStartCost(C, scaling.drainSeconds);
  const window = keepWarmWindow(scaling.keepWarm, gaps, K);
  details.coldStartCostSeconds = round(K);
  details.keepWarmSeconds = round(window.seconds);
  details.keepWarmSource = window.source;

  // Scale down only after the demand stayed lower for one cold start.
  const recentDemands = slidingMax(history.recentDemands ?? [], { atMs: nowMs, replicas: unheld }, C * 1000);
  const held = recentDemands[0]!.replicas;
  if (held > unheld) demands.hold = held;

  const idleSeconds = idleSinceMs === undefined ? undefined : (nowMs - idleSinceMs) / 1000;
  let activeReason: string;
  let active = true;
  if (backlogActive) activeReason = `backlog ${signals.backlog} > activationBacklog ${scaling.activationBacklog}`;
  else if (gpuActive) activeReason = `busy GPUs ${signals.busyGpus} > activation threshold ${signals.gpuActivationThreshold ?? 0}`;
  else if (idleSeconds !== undefined && idleSeconds < window.seconds) {
    activeReason = `idle since ${instant(idleSinceMs!)}: keep warm until ${instant(idleSinceMs! + window.seconds * 1000)} (${round(window.seconds)} s, ${window.source})`;
  } else {
    const next = idleSeconds === undefined || scaling.keepWarm !== 'auto' ? undefined : predictGap(gaps, C);
    if (next !== undefined && idleSeconds! >= next.expectedGapSeconds - C && idleSeconds! <= next.giveUpAfterSeconds) {
      activeReason = `prewarm: regular gaps of ~${round(next.expectedGapSeconds)} s, idle ${round(idleSeconds!)} s, cold start ${C} s`;
      demands.prewarm = Math.min(...busyPeaks.slice(-3), Number.POSITIVE_INFINITY);
      if (!Number.isFinite(demands.prewarm)) demands.prewarm = 1;
      details.expectedGapSeconds = round(next.expectedGapSeconds);
    } else {
      active = false;
      activeReason =
        idleSeconds === undefined
          ? `backlog ${signals.backlog} <= activationBacklog ${scaling.activationBacklog}`
          : `idle since ${instant(idleSinceMs!)}: kept warm until ${instant(idleSinceMs! + window.seconds * 1000)} (${round(window.seconds)} s, ${window.source})`;
    }
  }

  const { desired, winner } = bound(demands, signals, scaling);
  const asked = active ? desired : 0;
  const nextAsks = asked > askedFleet ? [...asks, { atMs: nowMs, replicas: asked - askedFleet }] : asks;
  return {
    decision: { desiredReplicas: desired, active, explanation: { signals, demands, winner, activeReason, details } },
    history: {
      ...history,
      lastWorkAtMs: working ? nowMs : history.lastWorkAtMs,
      idleSinceMs,
      idleGapsSeconds: gaps,
      lastDesiredReplicas: desired,
      lastDecisionAtMs: nowMs,
      lastActive: active,
      recentAsks: nextAsks,
      recentDemands,
      learnedThroughputPerReplica: learned,
      busyStretch: stretch,
      throughputEvidence: evidence,
      busyPeakReplicas: busyPeak,
      busyPeaks,
    },
  };
}

/**
 * Whether two decisions say the same thing: count, activity, winner, reason, and every figure of
 * the explanation (signals, demands, details). A caller that keeps decisions can keep the one it
 * has when the next says the same (an idle or steady trigger, call after call).
 */
export function sameDecision(a: Decision, b: Decision): boolean {
  const x = a.explanation;
  const y = b.explanation;
  return (
    a.desiredReplicas === b.desiredReplicas &&
    a.active === b.active &&
    x.winner === y.winner &&
    x.activeReason === y.activeReason &&
    sameFigures(x.signals, y.signals) &&
    sameFigures(x.demands, y.demands) &&
    sameFigures(x.details, y.details)
  );
}

/** Same keys with the same values (numbers, strings, booleans; NaN equals NaN). */
function sameFigures(a: object, b: object): boolean {
  const x = a as Readonly<Record<string, unknown>>;
  const y = b as Readonly<Record<string, unknown>>;
  let keys = 0;
  for (const key in x) {
    if (!Object.is(x[key], y[key]) || !(key in y)) return false;
    keys++;
  }
  for (const _ in y) keys--;
  return keys === 0;
}

/** The largest demand, then the replica cap and minReplicas/maxReplicas. */
function bound(demands: Demands, signals: Signals, scaling: ScalingConfig) {
  let desired = 0;
  let winner: DemandTerm = 'backlog';
  for (const term of DEMAND_SOURCES) {
    const value = demands[term];
    if (value !== undefined && value > desired) {
      desired = value;
      winner = term;
    }
  }
  if (signals.replicaCap !== undefined && desired > signals.replicaCap) {
    desired = signals.replicaCap;
    winner = 'replicaCap';
  }
  if (desired > scaling.maxReplicas) {
    desired = scaling.maxReplicas;
    winner = 'maxReplicas';
  }
  if (desired < scaling.minReplicas) {
    desired = scaling.minReplicas;
    winner = 'minReplicas';
  }
  return { desired, winner };
}

/**
 * A moment in an activity reason. Reasons name moments rather than durations up to now, so that a
 * trigger that stays idle gets the same decision call after call (the engine then keeps the one it
 * has instead of a new copy per call).
 */
function instant(ms: number): string {
  const date = new Date(ms);
  // A keep-warm window can be set past the last moment a Date holds (about 275,000 years).
  return Number.isNaN(date.getTime()) ? 'never' : date.toISOString();
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
