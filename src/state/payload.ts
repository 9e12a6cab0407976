// What the scaler's replicas share per trigger, and its format. Bump STATE_FORMAT when the shape
// of SharedTriggerState changes: a replica of another version then ignores the record (warned
// once, counted) instead of reading one it does not understand.
import { z } from 'zod';
import { shiftHistory } from '../model/historyClock.ts';
import { triggerHistorySchema } from '../model/historySchema.ts';
import type { RateState } from '../model/rates.ts';
import { MAX_COUNTER_BASIS_CHARS, type TriggerHistory } from '../model/types.ts';
import type { PayloadSchema } from './types.ts';

export const STATE_FORMAT = 1;

/**
 * A source's rate estimate (model/rates.ts), in the order of the trigger's sources: the 30 s
 * averages, and the reading they were last updated with (its time, backlog and counters), from
 * which another process carries them on with a reading of its own.
 */
export type SharedSourceRates = Omit<RateState, 'previousAtMs'>;

/**
 * What replicas share per trigger: the model's history, the state every decision starts from, and
 * its sources' rate estimates, which a process that just started, or a follower whose own readings
 * are far apart (KEDA's round robin sends it every other call), carries on instead of its own
 * (optional: records without them read as before).
 */
export interface SharedTriggerState {
  /** The trigger (Trigger.id) whose state it is; in a lineage's note, the trigger whose record to start from. */
  readonly trigger?: string;
  readonly history: TriggerHistory;
  /** One per source; null for a source without a rate estimate (a GPU query, or none yet). */
  readonly rates?: readonly (SharedSourceRates | null)[];
}

const finite = z.number().finite();
const count = finite.nonnegative();

/** A trigger id is its namespace, name and a hash: Kubernetes names are at most 253 characters. */
const MAX_TRIGGER_ID_CHARS = 600;

/** A trigger has one source per kind at most (trigger/schema.ts); the bound is for what another writer may have put there. */
const MAX_SHARED_SOURCES = 8;

const sourceRatesSchema: z.ZodType<SharedSourceRates> = z
  .object({
    atMs: finite,
    backlog: finite,
    arrivedTotal: count.optional(),
    servedTotal: count.optional(),
    counterBasis: z.string().max(MAX_COUNTER_BASIS_CHARS).optional(),
    arrivalRatePerSecond: count.optional(),
    serviceRatePerSecond: count.optional(),
  })
  .readonly();

export const sharedStateSchema: PayloadSchema<SharedTriggerState> = z
  .object({
    trigger: z.string().max(MAX_TRIGGER_ID_CHARS).optional(),
    history: triggerHistorySchema,
    rates: z.array(sourceRatesSchema.nullable()).max(MAX_SHARED_SOURCES).readonly().optional(),
  })
  .readonly();

/** A writer publishes a trigger's state at most this often, unless its answer changed. */
export const PUBLISH_INTERVAL_MS = 5000;

/** The state with every time in it `ms` later: a record read on another clock than its writer's (redis.ts). */
export function shiftSharedState(state: SharedTriggerState, ms: number): SharedTriggerState {
  return {
    ...state,
    history: shiftHistory(state.history, ms),
    ...(state.rates !== undefined && {
      rates: state.rates.map((rates) => (rates === null ? null : { ...rates, atMs: rates.atMs + ms })),
    }),
  };
}
