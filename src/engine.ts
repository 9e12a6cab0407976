// The scaler's core path: request metadata -> trigger (schema) -> readings (cache -> sources)
// -> decision (model). The gRPC handlers and the simulator both call evaluate(); the gRPC layer
// only translates. With a shared state store, each decision starts from the newest learned state
// any replica has published (src/state/shared.ts), so replicas answer alike. A trigger whose
// settings were edited starts from what the last trigger of its lineage learned (Trigger.lineage).
import { setNewest } from './cache/boundedMap.ts';
import { type Observation, ReadCache, type ReadAdmission } from './cache/readCache.ts';
import { decide, emptyHistory, learnedAtMomentOf, sameDecision } from './model/decide.ts';
import { unanswerableWithoutGpuSeries } from './model/gpuSeries.ts';
import { type RateState, updateRates } from './model/rates.ts';
import { type SourceSignals, sumSignals } from './model/signals.ts';
import type { Decision, Signals, TriggerHistory, Workload } from './model/types.ts';
import type { SourceRegistry } from './sources/index.ts';
import type { Source } from './sources/source.ts';
import { MAX_CLOCK_AHEAD_MS } from './state/codec.ts';
import type { SharedSourceRates, SharedTriggerState } from './state/payload.ts';
import { type RecordStamp, type Role, type SharedState, sameRecord, stampOf } from './state/shared.ts';
import type { Logger } from './telemetry/logger.ts';
import type { ScalerMetrics } from './telemetry/metrics.ts';
import { type Refusal, RefusalLog } from './telemetry/refusals.ts';
import { Episode } from './telemetry/episode.ts';
import { SourceFailureLog } from './telemetry/sourceFailures.ts';
import { SourceReaders } from './telemetry/sourceReaders.ts';
import { RefMemo } from './trigger/memo.ts';
import { parseTrigger } from './trigger/schema.ts';
import type { ConnectionProfiles, Trigger, TriggerRef } from './trigger/types.ts';
import { InvalidTrigger, SourceNotFound, errorCode, errorMessage } from './errors.ts';

export interface Evaluation {
  readonly trigger: Trigger;
  readonly decision: Decision;
  /** Metric value that makes the HPA's AverageValue rule (target 1) land on the desired count. */
  readonly metricValue: number;
}

/** A trigger's last answer that was an error (a source that cannot be read), until one succeeds again. */
export interface TriggerFailure {
  readonly trigger: Trigger;
  readonly atMs: number;
  /** The gRPC status KEDA got (errors.ts), and the message, which names the source and holds no secret. */
  readonly code: string;
  readonly message: string;
}

export interface EngineOptions {
  readonly registry: SourceRegistry;
  readonly cacheTtlMs: number;
  readonly sourceTimeoutMs: number;
  readonly logger: Logger;
  readonly metrics: ScalerMetrics;
  readonly profiles?: ConnectionProfiles;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly now?: () => number;
  /** Triggers, and rates of sources, not seen for this long are forgotten. */
  readonly triggerIdleMs?: number;
  /** Triggers kept at most (MAX_TRIGGERS: as many as parsed ones). */
  readonly maxTriggers?: number;
  /**
   * What a forgotten trigger learned is kept this long after KEDA last asked about it, for when
   * it is asked about again (a paused ScaledObject resumed; its lineage's, edited meanwhile);
   * default and at least triggerIdleMs (nothing kept past it).
   */
  readonly retentionMs?: number;
  /** Learned state shared by the scaler's replicas; absent, each process keeps its own. */
  readonly shared?: SharedState<SharedTriggerState>;
  /** When a source read may start (the server's LoopAdmission); absent, at once. */
  readonly readAdmission?: ReadAdmission;
}

/**
 * What the parse memo keeps: 20,000 triggers, 32 Mi characters in all (memo.ts counts them, keys
 * weighed), no metadata over 64 Ki (three 16 KB certificate chains fit). 10,000 triggers with
 * connection profiles take about 10 Mi.
 */
export const PARSE_MEMO_LIMITS = { maxEntries: 20_000, maxChars: 32 * 2 ** 20, maxEntryChars: 64 * 2 ** 10 };

export interface EvaluateOptions {
  /** Read sources through cache entries at most this old (default: the cache TTL). */
  readonly maxAgeMs?: number;
}

interface TriggerSource {
  readonly config: Trigger['sources'][number];
  readonly source: Source;
}

/** How long a ScaledObject's workload looked up for a trigger stands (Engine.workload). */
const WORKLOAD_LOOKUP_MS = 1000;

interface TriggerState {
  trigger: Trigger;
  history: TriggerHistory;
  lastEvaluation?: Evaluation;
  /** The readings behind lastEvaluation (cache entries, compared by identity). */
  observations?: readonly Observation[];
  /** The shared record lastEvaluation started from (its time), when it started from one. */
  baseAtMs?: number;
  /**
   * The newest shared record this replica knew at its last decision (decided from or not), by its
   * stamp (the record's state is not kept alive for it): one that comes after it is news.
   */
  recordSeen?: RecordStamp;
  lastSeenMs: number;
  /** The SETTING_HINTS its log has said, a bit each (each once per trigger). */
  hintsLogged?: number;
  /** A trigger that reads no queue: its GPU query matching no series (noteGpuSilence). */
  gpuSilence?: Episode;
  /** Its GPU query matching no series while the workload runs: answered NOT_FOUND (noteGpuUnanswerable). */
  gpuUnanswerable?: Episode;
  /** The readings its last NOT_FOUND was counted for: a GPU source error is counted once per reading, not per call. */
  gpuUnanswerableCounted?: readonly Observation[];
  /** The trigger of its lineage whose history it started from (its settings were edited). */
  learnedUnder?: string;
  /** Its ScaledObject's workload as last looked up (Engine.workload), and when: at most once a second. */
  workloadSeen?: { readonly atMs: number; readonly workload: Workload | undefined };
  /**
   * Its last decisions were made alone (the store out of reach) and no record was taken since: a
   * record older than them (by more than the clocks may differ, as the state codec bounds it) gives
   * what it learned, not its moment (olderThanOwn).
   */
  decidedAlone?: boolean;
}

/**
 * Whether a shared record is older than what the replica decided alone while the store was out of
 * reach: a first sight retried once the store is back reads the record another replica wrote
 * before the outage, and its idea of the moment (idle since then, a keep-warm window long over)
 * answered inactive for a workload busy since (found by review). Its learning is taken, the
 * moment kept (learnedAtMomentOf); a record newer than them (another replica went on meanwhile) is
 * taken whole.
 */
function olderThanOwn(record: RecordStamp, state: TriggerState): boolean {
  const own = state.history.lastDecisionAtMs;
  return state.decidedAlone === true && own !== undefined && record.atMs < own - MAX_CLOCK_AHEAD_MS;
}

/**
 * A trigger of a lineage not asked about for this long while another of it was carries on from the
 * other's state when asked again (an edit undone). Shorter gaps are two triggers in use at once
 * (KEDA asks each at least every pollingInterval), which keep their own.
 */
const LINEAGE_STALE_MS = 60_000;

/**
 * A trigger no one asked about for this long leaves the per-trigger metrics (it stays in /explain
 * until the idle sweep): past KEDA's polling of a ScaledObject at zero (30 s by default; minutes
 * where it was raised), short of the 15 minutes the alerts wait.
 */
const METRICS_UNASKED_MS = 10 * 60_000;

/** How long a GPU query of a trigger that reads no queue matches nothing before a warning, and how often it repeats. */
const GPU_SILENCE_MS = 10 * 60_000;
const GPU_SILENCE_REMIND_MS = 60 * 60_000;
/**
 * A trigger answered NOT_FOUND for a GPU query without series while its workload runs is said once
 * that has lasted GPU_UNANSWERABLE_MS (past the scrape or two after a wake before the exporter
 * labels a new pod's GPUs: docs/gpu.md), then every GPU_UNANSWERABLE_REMIND_MS while it lasts.
 */
const GPU_UNANSWERABLE_MS = 2 * 60_000;
const GPU_UNANSWERABLE_REMIND_MS = 10 * 60_000;

/**
 * Settings the model read for itself, or found at odds with what the brokers report: a detail of
 * the decision that says a setting would do better, logged once per trigger at warn.
 */
const SETTING_HINTS = [
  // docs/model.md, "A prefetch past the concurrency"
  {
    detail: 'detectedConcurrencyPerReplica',
    message:
      "consumers hold more messages than they serve at once (a prefetch past their concurrency): the model counts those past the concurrency it reads from their throughput as waiting; set the trigger's concurrencyPerReplica, or the workers' prefetch to their concurrency",
  },
  // docs/model.md, "Several consumers a replica" (model/consumerRatio.ts)
  {
    detail: 'consumersPerReplicaSuggested',
    message:
      "for ten minutes the queues have counted about consumersPerReplicaSuggested consumers for each replica this trigger asked for, where its consumersPerReplica says fewer: if each replica opens that many (a channel per worker thread), set consumersPerReplica to it, or the model sizes a fleet several times too large; if the ScaledObject's minReplicaCount, another of its triggers, another deployment on the queue or Kafka members of pods already gone hold them, nothing is wrong",
  },
] as const;

/** ScaledObjects named at most in a source failure's log line (the count says how many in all). */
const MAX_READERS_NAMED = 5;
/** (Source, trigger) pairs in the index of who reads each source, at most (SourceReaders). */
const MAX_READERS = PARSE_MEMO_LIMITS.maxEntries;

/** Idle triggers are forgotten after this long (EngineOptions.triggerIdleMs). */
const TRIGGER_IDLE_MS = 30 * 60_000;
/**
 * Triggers kept at most, as many as parsed ones: past it the tenth least recently asked are
 * forgotten as the sweep forgets idle ones (found by review: 60,000 names churned within the idle
 * window kept 60,000 states, some 274 MB of heap).
 */
const MAX_TRIGGERS = PARSE_MEMO_LIMITS.maxEntries;

/**
 * Forgotten triggers whose learned history is kept (EngineOptions.retentionMs), the most recently
 * asked: a history is 1.5-4.7 KB as JSON (docs/deploy.md), 4-7 KB of heap, 14 MB at most for all.
 */
export const MAX_RETIRED = 2_000;

/** A forgotten trigger's learned history, kept by its lineage. */
interface Retired {
  readonly id: string;
  readonly history: TriggerHistory;
  readonly lastSeenMs: number;
}

/** A lineage's note names its latest trigger; its state is that trigger's record (SharedState). */
const NOTE_HISTORY: TriggerHistory = Object.freeze(emptyHistory());

/** Calls `then` with a value now, or once a promise settles: the request path allocates no promise for a cached answer. */
export function settle<T, R>(value: T | Promise<T>, then: (value: T) => R): R | Promise<R> {
  return value instanceof Promise ? value.then(then) : then(value);
}

export class Engine {
  readonly cache: ReadCache;
  private readonly options: EngineOptions;
  private readonly now: () => number;
  private readonly parsed = new RefMemo<Trigger>(PARSE_MEMO_LIMITS);
  private readonly refusals: RefusalLog;
  private readonly rates = new Map<string, RateState>();
  private readonly triggers = new Map<string, TriggerState>();
  /** The id of the trigger of each lineage decided last: whose state an edited trigger carries on. */
  private readonly lineages = new Map<string, string>();
  /** What forgotten triggers learned, by lineage, oldest first. */
  private readonly retired = new Map<string, Retired>();
  private readonly triggerSources = new WeakMap<Trigger, readonly TriggerSource[]>();
  /** Who reads each source, for a source failure's log line: noted at each read started, made anew at each sweep. */
  private readonly readers = new SourceReaders(MAX_READERS);
  /** Triggers whose last answer was an error (for /explain), by id; dropped by their next answer. */
  private readonly failures = new Map<string, TriggerFailure>();
  private lastSweepMs = 0;

  constructor(options: EngineOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.refusals = new RefusalLog(options.logger, this.now);
    const { metrics } = options;
    const sourceFailures = new SourceFailureLog(options.logger, this.now, (identity) =>
      this.readers.of(identity, MAX_READERS_NAMED),
    );
    this.cache = new ReadCache({
      ttlMs: options.cacheTtlMs,
      timeoutMs: options.sourceTimeoutMs,
      now: this.now,
      admission: options.readAdmission,
      onQuery: (source, durationMs, error) => {
        metrics.sourceQueries.inc({ kind: source.kind, result: error === undefined ? 'ok' : 'error' });
        metrics.sourceQuerySeconds.observe({ kind: source.kind }, durationMs / 1000);
        if (error === undefined) {
          sourceFailures.succeeded(source);
        } else {
          const code = errorCode(error);
          metrics.sourceErrors.inc({ kind: source.kind, code });
          sourceFailures.failed(source, code, errorMessage(error));
        }
      },
      onReading: (source, observation) => this.observeRates(source, observation),
    });
    metrics.observeCacheSize(() => this.cache.size);
    metrics.observeRetained(() => this.retired.size);
    metrics.observeTriggers(() => this.evaluations(true));
    options.shared?.onTakeover((id) => this.publishTakenOver(id));
  }

  /**
   * Parses (memoized) and validates the trigger; throws InvalidTrigger. No I/O. Only triggers that
   * parse are kept: invalid metadata is parsed again on each call (cheap: values are refused by
   * length before they are read), so a stream of distinct invalid maps (a fuzzer, a broken client)
   * neither fills the memory nor pushes the valid triggers out.
   */
  trigger(ref: TriggerRef): Trigger {
    let trigger = this.parsed.get(ref);
    if (trigger === undefined) {
      try {
        trigger = parseTrigger(ref, { profiles: this.options.profiles, env: this.options.env });
      } catch (err) {
        if (err instanceof InvalidTrigger) this.refusals.add(ref, err.message);
        throw err;
      }
      this.parsed.set(ref, trigger);
    }
    // Taken: its refusal is over, also when the metadata was parsed before it (an edit reverted;
    // found by review: /explain kept the refusal beside the live decision). A size check while none.
    this.refusals.clear(ref);
    return trigger;
  }

  /**
   * The trigger's answer: at once, without a promise, when every reading it needs is fresh in the
   * cache (nearly every call: a source is read once per interval, and every call in between finds
   * its reading), else once its sources are read (one query per source per interval, shared by
   * every caller). One decision per reading: calls that find the readings of the last decision
   * get that decision. Rejects with the source's error when a source cannot be read, and with
   * SourceNotFound when a GPU query matched no series while the workload runs (model/gpuSeries.ts).
   */
  evaluate(trigger: Trigger, options: EvaluateOptions = {}): Evaluation | Promise<Evaluation> {
    let answer: Evaluation | Promise<Evaluation>;
    try {
      answer = this.cached(trigger, options) ?? this.readAndDecide(trigger, options);
    } catch (err) {
      throw this.failed(trigger, err);
    }
    return answer instanceof Promise
      ? answer.then(
          (evaluation) => this.answered(trigger, evaluation),
          (err: unknown) => Promise.reject(this.failed(trigger, err)),
        )
      : this.answered(trigger, answer);
  }

  /** An answer clears the error the trigger had before it. */
  private answered(trigger: Trigger, evaluation: Evaluation): Evaluation {
    if (this.failures.size > 0) this.failures.delete(trigger.id);
    return evaluation;
  }

  /**
   * Keeps the error a trigger was answered with, for /explain; returns it. A trigger answered with
   * an error was asked about all the same: the idle sweep must not take it for one KEDA left, and
   * let what it learned go while KEDA still asks (found by review: a GPU-only trigger whose
   * exporter went away lost its history to the sweep after 30 minutes of NOT_FOUND, and was then
   * answered inactive).
   */
  private failed(trigger: Trigger, err: unknown): unknown {
    const nowMs = this.now();
    const failure = { trigger, atMs: nowMs, code: errorCode(err), message: errorMessage(err) };
    setNewest(this.failures, trigger.id, failure, PARSE_MEMO_LIMITS.maxEntries);
    const state = this.triggers.get(trigger.id);
    if (state !== undefined) state.lastSeenMs = nowMs;
    return err;
  }

  /** The answer from fresh cached readings, or undefined when a reading must be fetched. */
  private cached(trigger: Trigger, options: EvaluateOptions): Evaluation | undefined {
    const sources = this.triggerSources.get(trigger);
    if (sources === undefined) return undefined;
    const nowMs = this.now();
    this.sweep(nowMs, trigger);
    // Not tracked in the shared store (new, or just swept), or its first sight under way (another call's): async.
    if (this.options.shared !== undefined && !this.options.shared.settled(trigger.id)) return undefined;
    const state = this.triggers.get(trigger.id);
    const last =
      state?.lastEvaluation !== undefined && state.observations?.length === sources.length ? state.observations : undefined;
    // One pass (a reading can expire between two): the array is built only from the first reading
    // that differs from the last decision's.
    let observations: Observation[] | undefined;
    for (let i = 0; i < sources.length; i++) {
      const observation = this.cache.fresh(sources[i]!.source, options.maxAgeMs);
      if (observation === undefined) return undefined;
      if (observations === undefined && observation !== last?.[i]) observations = last?.slice(0, i) ?? [];
      observations?.push(observation);
    }
    if (observations === undefined && last !== undefined && !this.newerShared(trigger.id, state!)) {
      // The readings of the last decision (the common case): nothing to allocate.
      state!.lastSeenMs = nowMs;
      return state!.lastEvaluation;
    }
    return this.decideOn(trigger, sources, observations ?? last ?? []);
  }

  private async readAndDecide(trigger: Trigger, options: EvaluateOptions): Promise<Evaluation> {
    const found = this.sourcesOf(trigger);
    // A promise only while a driver is imported (first trigger of its kind): no await otherwise.
    const sources = found instanceof Promise ? await found : found;
    this.readers.note(trigger, sources);
    // First sight of the trigger with a shared store: its lease and record, before its first
    // answer, so a replica that just started answers from what was learned (bounded by the store).
    // A call that comes while another's first sight is under way waits for the same one. Beside
    // the reads, not before them: a slow store and a slow broker one after the other took a first
    // answer past KEDA's deadline (found by review). It never rejects; the reads are awaited first.
    const tracked = this.options.shared?.track(trigger.id, trigger.lineage);
    // All or nothing: a partial sum would look smaller than the truth.
    const observations =
      sources.length === 1
        ? [await this.cache.read(sources[0]!.source, options.maxAgeMs)]
        : await Promise.all(sources.map(({ source }) => this.cache.read(source, options.maxAgeMs)));
    if (tracked !== undefined) await tracked;
    return this.decideOn(trigger, sources, observations);
  }

  /** A follower's writer published since the last decision: decide again from its state. */
  private newerShared(id: string, state: TriggerState): boolean {
    const view = this.options.shared?.view(id);
    return view?.role === 'follower' && view.record !== undefined && !sameRecord(view.record, state.recordSeen);
  }

  private decideOn(trigger: Trigger, sources: readonly TriggerSource[], observations: readonly Observation[]): Evaluation {
    const nowMs = this.now();
    this.sweep(nowMs, trigger);
    let state = this.triggers.get(trigger.id);
    if (
      state?.lastEvaluation !== undefined &&
      (sameObservations(state.observations, observations) || olderObservations(state.observations, observations)) &&
      !this.newerShared(trigger.id, state)
    ) {
      state.lastSeenMs = nowMs;
      return state.lastEvaluation;
    }
    const carried = this.inherited(trigger, state);
    if (state === undefined) {
      if (this.triggers.size >= this.maxTriggers()) this.forgetLeastAsked(nowMs);
      state = { trigger, lastSeenMs: nowMs, ...(carried ?? { history: emptyHistory() }) };
    } else if (carried !== undefined) Object.assign(state, carried);
    // Kept before anything below can refuse to answer: a history revived or carried over from a
    // lineage is taken out of where it was, and would be lost with the refusal (found by review).
    this.triggers.set(trigger.id, state);
    // The state to decide from: a record that came after this replica's last decision, for a
    // follower (the writer's progress), a process with none of its own (just started), or one
    // another replica published since (it took the lease over from a writer that went on without
    // it: newer than its own, whatever the two clocks say); else its own, which goes on from the
    // last record it used. A follower whose writer is not asked (KEDA's calls all come here) so
    // learns as it answers, instead of starting each decision again from a record that no longer moves.
    const view = this.options.shared?.view(trigger.id);
    const record = view?.record;
    const own = state.history.lastDecisionAtMs;
    const unseen = !sameRecord(record, state.recordSeen);
    const taken =
      record !== undefined &&
      unseen &&
      (own === undefined || view!.role === 'follower' || record.writerId !== this.options.shared!.store.writerId);
    const stale = taken && olderThanOwn(record, state);
    const fromRecord = taken && !stale;
    // None of its own and none published for it (its settings just edited, on a replica that never
    // saw the trigger before): the state of its lineage's latest trigger, read when it was first seen.
    const lineage = taken || own !== undefined ? undefined : view?.lineageRecord;
    const known = fromRecord ? record : lineage;
    const base = stale ? learnedAtMomentOf(record.payload.history, state.history) : (known?.payload.history ?? state.history);
    // A stale record's rates are older than the replica's own: those go on.
    if (known?.payload.rates !== undefined) this.carryOnRates(sources, observations, known.payload.rates);
    if (lineage?.payload.trigger !== undefined && lineage.payload.trigger !== trigger.id) {
      state.learnedUnder ??= lineage.payload.trigger;
    }
    const signals = this.signals(sources, observations);
    const workload =
      signals.gpuSourcesWithoutSeries !== undefined && base.lastActive === undefined ? this.workload(state, nowMs) : undefined;
    const unanswerable = unanswerableWithoutGpuSeries(signals, trigger.scaling, base, workload?.active);
    if (unanswerable !== undefined) {
      const empty = sources.filter((_, i) => observations[i]!.reading.noSeries === true).map(({ source }) => source.label);
      const err = new SourceNotFound(`${empty.join('; ')}: ${unanswerable}`);
      this.noteGpuUnanswerable(trigger, state, err, observations, nowMs);
      throw err;
    }
    if (state.gpuUnanswerable !== undefined) {
      if (state.gpuUnanswerable.said) {
        this.options.logger.info(
          { trigger: trigger.id, failedForSeconds: state.gpuUnanswerable.seconds(nowMs) },
          "the trigger's GPU query matches series again: answered again",
        );
      }
      state.gpuUnanswerable = state.gpuUnanswerableCounted = undefined;
    }
    const { decision, history } = decide({
      signals,
      scaling: trigger.scaling,
      history: base,
      nowMs,
      ...(workload && { workload }),
    });
    this.logHints(trigger, decision, state);
    this.noteGpuSilence(trigger, sources, signals, state, nowMs);
    // A decision that says what the last one said keeps the last one: it has lived long enough to
    // be in V8's old generation, where a new copy would go too, to die there at the next reading.
    const last = state.lastEvaluation;
    const same = last !== undefined && last.trigger === trigger && sameDecision(last.decision, decision);
    const evaluation: Evaluation = same ? last : { trigger, decision, metricValue: decision.desiredReplicas };
    state.trigger = trigger;
    state.history = history;
    state.observations = observations;
    // A follower going on from the record it last took still decides from that record's state.
    if (taken) state.baseAtMs = record.atMs;
    else if (view?.role !== 'follower') state.baseAtMs = undefined;
    // Alone while the store is out of reach; no longer once a record is taken or its own is published.
    if (view?.role === 'local') state.decidedAlone = true;
    else if (taken || view?.role === 'writer') state.decidedAlone = undefined;
    if (unseen) state.recordSeen = record === undefined ? undefined : stampOf(record);
    state.lastSeenMs = nowMs;
    state.lastEvaluation = evaluation;
    this.triggers.set(trigger.id, state);
    this.lineages.set(trigger.lineage, trigger.id);
    if (view?.role === 'writer') {
      const changed =
        last === undefined ||
        last.decision.desiredReplicas !== decision.desiredReplicas ||
        last.decision.active !== decision.active;
      this.offerShared(trigger, sources, history, nowMs, changed);
    }
    if (this.options.logger.isLevelEnabled('debug')) {
      this.options.logger.debug(
        {
          trigger: trigger.id,
          desiredReplicas: decision.desiredReplicas,
          active: decision.active,
          explanation: decision.explanation,
          ...(view !== undefined && { stateRole: view.role }),
        },
        'decision',
      );
    }
    return evaluation;
  }

  /**
   * What was learned under the last trigger of its lineage (the same ScaledObject and sources, its
   * other settings edited), for a trigger first seen, or one no one asked about for a minute while
   * that one was asked (an edit undone: its own state missed what was learned since); else
   * undefined. Only the history: the readings and answers are the trigger's own.
   */
  private inherited(trigger: Trigger, state?: TriggerState): Pick<TriggerState, 'history' | 'learnedUnder'> | undefined {
    const id = this.lineages.get(trigger.lineage);
    if (id === undefined && state === undefined) return this.revived(trigger);
    const before = id === undefined || id === trigger.id ? undefined : this.triggers.get(id);
    if (before === undefined || (state !== undefined && before.lastSeenMs - state.lastSeenMs <= LINEAGE_STALE_MS))
      return undefined;
    // Once per pair: two triggers of a lineage asked in turn less often than a minute take turns.
    if (state?.learnedUnder !== id) {
      this.options.logger.info(
        { trigger: trigger.id, learnedUnder: id },
        'trigger settings edited: it carries on from what was learned under its previous settings',
      );
    }
    // The previous settings' newest state: another replica's record of them where newer than this
    // replica's own (KEDA asked that one meanwhile). Found by review: the edit's first call on the
    // replica not asked carried its stale history on, and published it as the new trigger's.
    const record = this.options.shared?.newestRecord(before.trigger.id);
    const newer = record !== undefined && (record.payload.history.lastDecisionAtMs ?? 0) > (before.history.lastDecisionAtMs ?? 0);
    return { history: newer ? record.payload.history : before.history, learnedUnder: id };
  }

  /**
   * What the trigger (or, edited meanwhile, the last of its lineage) learned before it was
   * forgotten, KEDA not asking about it for triggerIdleMs (a paused ScaledObject), within the
   * retention; the model drops what it said of the moment (resumedHistory).
   */
  private revived(trigger: Trigger): Pick<TriggerState, 'history' | 'learnedUnder'> | undefined {
    const retired = this.retired.get(trigger.lineage);
    if (retired === undefined) return undefined;
    this.retired.delete(trigger.lineage);
    const silentMs = this.now() - retired.lastSeenMs;
    if (silentMs > this.retentionMs()) return undefined;
    this.options.logger.info(
      {
        trigger: trigger.id,
        ...(retired.id !== trigger.id && { learnedUnder: retired.id }),
        silentSeconds: Math.round(silentMs / 1000),
      },
      'trigger asked about again after a silence (a paused ScaledObject): it carries on from what it learned before',
    );
    return retired.id === trigger.id ? { history: retired.history } : { history: retired.history, learnedUnder: retired.id };
  }

  private retentionMs(): number {
    const idle = this.idleMs();
    return Math.max(idle, this.options.retentionMs ?? idle);
  }

  /** The trigger whose learned state this one started from, when its settings were edited; for /explain. */
  learnedUnder(trigger: Trigger): string | undefined {
    return this.triggers.get(trigger.id)?.learnedUnder;
  }

  /**
   * When KEDA last asked about a trigger (an answer or an error), and the trigger of its lineage
   * that answers now when an edit replaced it; for /explain, where a decision KEDA stopped asking
   * for (a paused ScaledObject, an edit, calls gone to another replica) would read as current.
   */
  lastAsked(trigger: Trigger): { readonly atMs: number; readonly agoMs: number; readonly replacedBy?: string } | undefined {
    const atMs = this.triggers.get(trigger.id)?.lastSeenMs ?? this.failures.get(trigger.id)?.atMs;
    if (atMs === undefined) return undefined;
    const agoMs = Math.max(0, this.now() - atMs);
    const latest = this.lineages.get(trigger.lineage);
    return latest === undefined || latest === trigger.id ? { atMs, agoMs } : { atMs, agoMs, replacedBy: latest };
  }

  /**
   * The workload as another trigger of the ScaledObject (its settings before an edit) last answered
   * for it: whether it ran and on how many replicas, for a trigger with no answer of its own whose
   * GPU query matched no series. A query edited into a typo read as a workload at zero otherwise,
   * and a fleet the GPUs kept up shrank to its queue's (found by review). A scan of the triggers,
   * on that path alone and at most once a second a trigger: a trigger that answers NOT_FOUND keeps
   * no answer, and every call comes here (at 10,000 triggers, 0.3 ms a call; found by review).
   */
  private workload(state: TriggerState, nowMs: number): Workload | undefined {
    const seen = state.workloadSeen;
    if (seen !== undefined && nowMs - seen.atMs >= 0 && nowMs - seen.atMs < WORKLOAD_LOOKUP_MS) return seen.workload;
    const { trigger } = state;
    let latest: TriggerHistory | undefined;
    for (const { trigger: other, history } of this.triggers.values()) {
      if (other.id === trigger.id || other.name !== trigger.name || other.namespace !== trigger.namespace) continue;
      if (history.lastActive !== undefined && (history.lastDecisionAtMs ?? 0) >= (latest?.lastDecisionAtMs ?? 0))
        latest = history;
    }
    const workload =
      latest?.lastActive === undefined ? undefined : { active: latest.lastActive, replicas: latest.lastDesiredReplicas ?? 0 };
    state.workloadSeen = { atMs: nowMs, workload };
    return workload;
  }

  /**
   * A GPU query that matches no series while the workload runs is answered NOT_FOUND, and the query
   * itself succeeded, so no source failure says it: counted here as a GPU source error (the
   * SourceFailing alert reads those), once per reading, and said in a warning (GPU_UNANSWERABLE_MS).
   */
  private noteGpuUnanswerable(
    trigger: Trigger,
    state: TriggerState,
    err: SourceNotFound,
    observations: readonly Observation[],
    nowMs: number,
  ): void {
    if (!sameObservations(state.gpuUnanswerableCounted, observations)) {
      this.options.metrics.sourceErrors.inc({ kind: 'gpu', code: 'NOT_FOUND' });
      state.gpuUnanswerableCounted = observations;
    }
    const episode = (state.gpuUnanswerable ??= new Episode(nowMs, GPU_UNANSWERABLE_MS, GPU_UNANSWERABLE_REMIND_MS));
    const line = episode.note(nowMs);
    if (line === undefined) return;
    this.options.logger.warn(
      { trigger: trigger.id, err: err.message, failingForSeconds: episode.seconds(nowMs) },
      line === 'first'
        ? "the trigger's GPU query matches no series while its workload runs: answered NOT_FOUND (KEDA keeps the replicas, or applies the fallback)"
        : "the trigger's GPU query still matches no series while its workload runs: answered NOT_FOUND",
    );
  }

  /**
   * A trigger that reads GPUs and no queue takes a query that matches no series as a workload at
   * zero (model/gpuSeries.ts: nothing else tells it the workload runs), and asks for no replicas;
   * a label typo would be silent forever. Said in a warning once that has lasted GPU_SILENCE_MS,
   * and every hour after while it lasts.
   */
  private noteGpuSilence(
    trigger: Trigger,
    sources: readonly TriggerSource[],
    signals: Signals,
    state: TriggerState,
    nowMs: number,
  ): void {
    if (signals.gpuSourcesWithoutSeries === undefined || sources.some(({ config }) => config.kind !== 'gpu')) {
      state.gpuSilence = undefined;
      return;
    }
    const episode = (state.gpuSilence ??= new Episode(nowMs, GPU_SILENCE_MS, GPU_SILENCE_REMIND_MS));
    if (episode.note(nowMs) === undefined) return;
    this.options.logger.warn(
      {
        trigger: trigger.id,
        sources: sources.map(({ source }) => source.label),
        silentForMinutes: Math.round((nowMs - episode.sinceMs) / 60_000),
      },
      "the trigger's GPU query has matched no series, and it reads no queue: taken as a workload at zero (no GPU work, no replicas asked for). If the workload runs, the GPU exporter is gone or gpu.query / gpu.namespace / gpu.podSelector do not match its series",
    );
  }

  /** Logs each of SETTING_HINTS the decision's details give, once per trigger. */
  private logHints(trigger: Trigger, decision: Decision, state: TriggerState): void {
    const { details, signals } = decision.explanation;
    SETTING_HINTS.forEach(({ detail, message }, i) => {
      const value = details[detail];
      if (value === undefined || ((state.hintsLogged ?? 0) & (1 << i)) !== 0) return;
      state.hintsLogged = (state.hintsLogged ?? 0) | (1 << i);
      // The consumers as the brokers count them, and the setting that divides them into replicas.
      const { consumersPerReplica } = trigger.scaling;
      const consumers = signals.consumers === undefined ? undefined : signals.consumers * consumersPerReplica;
      this.options.logger.warn(
        { trigger: trigger.id, [detail]: value, inFlight: signals.inFlight, consumers, consumersPerReplica },
        message.replace(detail, String(value)),
      );
    });
  }

  /**
   * The trigger's sources, looked up once per parsed trigger: a lookup hashes the connection
   * (secretHash), which is too costly for every call. A promise while the drivers of the
   * trigger's kinds are first loaded (SourceRegistry.load).
   */
  private sourcesOf(trigger: Trigger): readonly TriggerSource[] | Promise<readonly TriggerSource[]> {
    let sources = this.triggerSources.get(trigger);
    if (sources === undefined) {
      const { registry } = this.options;
      const loading = registry.load(trigger.sources);
      if (loading !== undefined) return loading.then(() => this.sourcesOf(trigger));
      const nowMs = this.now();
      sources = trigger.sources.map((config) => ({ config, source: registry.sourceFor(config, nowMs) }));
      this.triggerSources.set(trigger, sources);
    }
    return sources;
  }

  /**
   * Labels (no credentials) of the sources of a trigger that was evaluated, or failed (one of
   * lastEvaluations() or lastFailures()): evaluating looks its sources up first.
   */
  sourceLabels(trigger: Trigger): string[] {
    return (this.triggerSources.get(trigger) ?? []).map(({ source }) => source.label);
  }

  /**
   * With a shared store, the trigger's role on this replica (writer, follower, or local while the
   * store does not answer) and, when its last decision started from a record another process
   * published, that record's time; for the explain endpoint. Undefined without a shared store.
   */
  sharedState(trigger: Trigger): { readonly role: Role; readonly decidedFromRecordAtMs?: number } | undefined {
    // Not view(): an explain request is not KEDA asking, and must not keep a lease KEDA left.
    const role = this.options.shared?.role(trigger.id);
    if (role === undefined) return undefined;
    const baseAtMs = this.triggers.get(trigger.id)?.baseAtMs;
    return baseAtMs === undefined ? { role } : { role, decidedFromRecordAtMs: baseAtMs };
  }

  /** The last evaluation of every trigger seen, for the explain endpoint. */
  lastEvaluations(): Evaluation[] {
    return [...this.evaluations()];
  }

  /** Triggers whose last answer was an error, for the explain endpoint. */
  lastFailures(): TriggerFailure[] {
    return [...this.failures.values()];
  }

  /** ScaledObjects whose last metadata was refused (INVALID_ARGUMENT), for the explain endpoint. */
  lastRefusals(): Refusal[] {
    return this.refusals.list();
  }

  /**
   * The last evaluation of each trigger; with `latestOnly`, of each that is its lineage's latest:
   * for the per-trigger metrics, where an edited ScaledObject's old trigger, kept until the idle
   * sweep, would plot and sum beside the new one (/explain shows both, and which carried on from
   * which).
   */
  private *evaluations(latestOnly = false): Generator<Evaluation> {
    const nowMs = latestOnly ? this.now() : 0;
    // Its ScaledObject edited into a trigger whose every answer failed: KEDA gets those errors, not
    // this decision (found by review: the old answer plotted as current for ten minutes).
    const failedSince = new Map<string, number>();
    if (latestOnly) {
      for (const { trigger, atMs } of this.failures.values())
        failedSince.set(trigger.lineage, Math.max(failedSince.get(trigger.lineage) ?? -Infinity, atMs));
    }
    for (const [id, state] of this.triggers) {
      if (state.lastEvaluation === undefined) continue;
      if (!latestOnly) yield state.lastEvaluation;
      // For the metrics, what KEDA gets now: not a decision its last answer replaced with an
      // error (a queue deleted), nor one of a trigger KEDA stopped asking about (moved to another
      // queue, paused), which would plot, sum and alert as current until the idle sweep.
      else if (
        this.lineages.get(state.trigger.lineage) === id &&
        !this.failures.has(id) &&
        nowMs - state.lastSeenMs <= METRICS_UNASKED_MS &&
        !((failedSince.get(state.trigger.lineage) ?? -Infinity) > state.lastSeenMs)
      )
        yield state.lastEvaluation;
    }
  }

  /** Each source's reading with its rates, summed by model/signals.ts. */
  private signals(sources: readonly TriggerSource[], observations: readonly Observation[]) {
    return sumSignals(
      sources.map(({ config, source }, i): SourceSignals => {
        const reading = observations[i]!.reading;
        if (config.kind === 'gpu') {
          return {
            kind: 'gpu',
            backlog: 0,
            busyGpus: reading.busyGpus,
            noSeries: reading.noSeries,
            gpuTargetUtilization: config.targetUtilization,
            gpuActivationThreshold: config.activationThreshold,
          };
        }
        const rates = this.rates.get(source.identity);
        return {
          kind: 'queue',
          ...reading,
          ...(config.kind === 'kafka' &&
            config.commitIntervalSeconds > 0 && { commitIntervalSeconds: config.commitIntervalSeconds }),
          arrivalRatePerSecond: rates?.arrivalRatePerSecond,
          serviceRatePerSecond: rates?.serviceRatePerSecond,
        };
      }),
    );
  }

  /** A writer's state, offered to the shared store (published when due: SharedState.offer). */
  private offerShared(
    trigger: Trigger,
    sources: readonly TriggerSource[],
    history: TriggerHistory,
    atMs: number,
    changed: boolean,
  ): void {
    const payload = { trigger: trigger.id, history, rates: this.sharedRates(sources) };
    const note = { trigger: trigger.id, history: NOTE_HISTORY };
    this.options.shared!.offer(trigger.id, payload, atMs, changed, { lineage: trigger.lineage, note });
  }

  /**
   * A lease taken over (SharedState.onTakeover): what this replica decided as a follower since the
   * newest record is published at once, where that record is the one its decisions went on from
   * (or its own): one it never took would be written over.
   */
  private publishTakenOver(id: string): void {
    const shared = this.options.shared!;
    const state = this.triggers.get(id);
    const sources = state && this.triggerSources.get(state.trigger);
    const atMs = state?.history.lastDecisionAtMs;
    if (sources === undefined || atMs === undefined) return;
    const newest = shared.newestStamp(id);
    const wentOn =
      newest === undefined ||
      (atMs > newest.atMs && (newest.writerId === shared.store.writerId || sameRecord(newest, state!.recordSeen)));
    if (wentOn) this.offerShared(state!.trigger, sources, state!.history, atMs, true);
  }

  /**
   * Publishes what this replica learned as writer since its last publish (a few seconds at most),
   * and waits for it to land: a replica that stops (a rollout) leaves the newest state for the one
   * that takes its leases over, not one up to publishIntervalMs older.
   */
  async publishOwed(): Promise<void> {
    const shared = this.options.shared;
    if (shared === undefined) return;
    // Twice: a trigger whose publish was in flight at the first pass offers again once it landed.
    for (let pass = 0; pass < 2; pass++) {
      for (const id of shared.owed()) {
        const state = this.triggers.get(id);
        const sources = state && this.triggerSources.get(state.trigger);
        const atMs = state?.history.lastDecisionAtMs;
        if (sources !== undefined && atMs !== undefined) this.offerShared(state!.trigger, sources, state!.history, atMs, true);
      }
      await shared.publishesLanded();
    }
  }

  /** The sources' rate estimates, to publish with the trigger's history. */
  private sharedRates(sources: readonly TriggerSource[]): (SharedSourceRates | null)[] {
    // previousAtMs is this process's: the schema leaves it out of what others read.
    return sources.map(({ source }) => this.rates.get(source.identity) ?? null);
  }

  /**
   * The published estimate, carried on with this process's reading, when it was updated since this
   * process's reading before: a process that just started has no estimate (its first rate would be
   * one interval's count taken whole: at 0.4 requests a second 0, 1 or 2), and a follower, asked
   * every other call, takes readings tens of seconds apart, whose average misses a step late in the
   * interval. Readings of one broker's counters compare across processes. Never over an estimate
   * this process updated since.
   */
  private carryOnRates(
    sources: readonly TriggerSource[],
    observations: readonly Observation[],
    shared: readonly (SharedSourceRates | null)[],
  ): void {
    sources.forEach(({ source }, i) => {
      const published = shared[i];
      const observation = observations[i];
      const own = this.rates.get(source.identity);
      if (published == null || observation === undefined) return;
      if (own?.previousAtMs !== undefined && published.atMs <= own.previousAtMs) return;
      // A published estimate as new as this reading, or newer, is taken for its rates, with this
      // reading's counters and time: stamped by a writer's clock ahead of this replica's, the next
      // reading here would come before it and start the estimate over (found by review), and the
      // writer's counters would pair with this replica's clock.
      let carried: RateState;
      if (published.atMs < observation.atMs) carried = updateRates(published, observation.reading, observation.atMs);
      else {
        const fresh = updateRates(undefined, observation.reading, observation.atMs);
        carried = {
          ...fresh,
          arrivalRatePerSecond: published.arrivalRatePerSecond ?? fresh.arrivalRatePerSecond,
          serviceRatePerSecond: published.serviceRatePerSecond ?? fresh.serviceRatePerSecond,
        };
      }
      this.rates.set(source.identity, carried);
    });
  }

  private observeRates(source: Source, observation: Observation): void {
    this.rates.set(source.identity, updateRates(this.rates.get(source.identity), observation.reading, observation.atMs));
  }

  /**
   * The idle sweep without a call: once KEDA asks about nothing (every ScaledObject deleted), no
   * evaluation sweeps, and the sources' connections and the shared leases would stay for good.
   * The server calls it on a timer; at most one sweep per tenth of the idle window runs.
   */
  sweepIdle(): void {
    this.sweep(this.now());
  }

  /**
   * Forgets triggers (their shared leases too) and source rates not seen for the idle window,
   * keeping what the latest trigger of each lineage learned for the retention, and releases what
   * they leave behind.
   */
  private sweep(nowMs: number, asked?: Trigger): void {
    const idle = this.idleMs();
    // A clock stepped back since the last sweep sweeps now, not once it has caught up (found by review).
    const sinceMs = nowMs - this.lastSweepMs;
    if (sinceMs >= 0 && sinceMs < idle / 10) return;
    this.lastSweepMs = nowMs;
    const retentionMs = this.retentionMs();
    for (const [id, state] of this.triggers) if (nowMs - state.lastSeenMs > idle) this.forget(id, state, retentionMs > idle);
    for (const [lineage, retired] of this.retired) {
      // In the order they were forgotten, about oldest first: one left a sweep late at most.
      if (nowMs - retired.lastSeenMs <= retentionMs) break;
      this.retired.delete(lineage);
    }
    for (const [identity, rates] of this.rates) if (nowMs - rates.atMs > idle) this.rates.delete(identity);
    for (const [id, failure] of this.failures) if (nowMs - failure.atMs > idle) this.failures.delete(id);
    this.releaseLeftovers(asked, idle, nowMs);
  }

  /**
   * Forgets a trigger's state (its learned history kept by lineage when `retain`, as the sweep
   * does), and its lineage's pointer to it: the one place a trigger goes, so no lineage names one gone.
   */
  private forget(id: string, state: TriggerState, retain: boolean): void {
    this.triggers.delete(id);
    this.options.shared?.forget(id);
    const { lineage } = state.trigger;
    if (retain && this.lineages.get(lineage) === id && state.history.lastDecisionAtMs !== undefined) {
      setNewest(this.retired, lineage, { id, history: state.history, lastSeenMs: state.lastSeenMs }, MAX_RETIRED);
    }
    if (this.lineages.get(lineage) === id) this.lineages.delete(lineage);
  }

  /** How long a trigger no one asks about is kept (TRIGGER_IDLE_MS unless told). */
  private idleMs(): number {
    return this.options.triggerIdleMs ?? TRIGGER_IDLE_MS;
  }

  /** Triggers kept at most (MAX_TRIGGERS unless told). */
  private maxTriggers(): number {
    return this.options.maxTriggers ?? MAX_TRIGGERS;
  }

  /** At MAX_TRIGGERS: the tenth least recently asked forgotten at once, so the scan runs one new trigger in thousands. */
  private forgetLeastAsked(nowMs: number): void {
    const byAge = [...this.triggers].sort(([, a], [, b]) => a.lastSeenMs - b.lastSeenMs);
    const retain = this.retentionMs() > this.idleMs();
    const count = Math.ceil(this.maxTriggers() / 10);
    for (const [id, state] of byAge.slice(0, count)) this.forget(id, state, retain);
    this.options.logger.debug(
      { triggers: this.triggers.size, nowMs },
      'at the trigger limit: the least recently asked forgotten',
    );
  }

  /**
   * What the triggers no one asks about any more leave behind, all but `asked`'s (the one being
   * answered): the shared leases and records of triggers that never answered (every read failed),
   * the sources no other trigger reads, the connections no read used lately.
   */
  private releaseLeftovers(asked: Trigger | undefined, idle: number, nowMs: number): void {
    const kept = (id: string) => id === asked?.id || this.triggers.has(id) || this.failures.has(id);
    this.options.shared?.forgetExcept(kept);
    const live = new Set<string>();
    this.readers.clear();
    const reads = (trigger: Trigger) => {
      const sources = this.triggerSources.get(trigger) ?? [];
      for (const { source } of sources) live.add(source.identity);
      this.readers.note(trigger, sources);
    };
    if (asked !== undefined) reads(asked);
    for (const state of this.triggers.values()) reads(state.trigger);
    for (const failure of this.failures.values()) reads(failure.trigger);
    this.options.registry.sweep(live, idle, nowMs).catch((err: unknown) => {
      this.options.logger.warn({ err: errorMessage(err) }, 'closing idle source connections failed');
    });
  }
}

function sameObservations(a: readonly Observation[] | undefined, b: readonly Observation[]): boolean {
  return a !== undefined && a.length === b.length && a.every((o, i) => o === b[i]);
}

/**
 * Whether `b` holds a reading older than the one `a` (the last decision's) holds for the same
 * source: reads of a trigger's sources that finish out of order (a slow one awaited by a call that
 * started first) would step the history back, and count a backlog's fall and rise again as arrivals
 * (found by review). That call gets the last evaluation.
 */
function olderObservations(a: readonly Observation[] | undefined, b: readonly Observation[]): boolean {
  return a !== undefined && a.length === b.length && a.some((o, i) => b[i]!.seq < o.seq);
}
