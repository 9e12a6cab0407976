// What the scaler's replicas share per trigger, and its format. Bump STATE_FORMAT when the shape
// of SharedTriggerState changes: a replica of another version then ignores the record (warned
// once, counted) instead of reading one it does not understand.
import { z } from 'zod';
import { triggerHistorySchema } from '../model/historySchema.ts';
import type { TriggerHistory } from '../model/types.ts';
import type { PayloadSchema } from './types.ts';

export const STATE_FORMAT = 1;

/** A source's 30 s averages (model/rates.ts), in the order of the trigger's sources. */
export interface SharedSourceRates {
  readonly arrivalRatePerSecond?: number;
  readonly serviceRatePerSecond?: number;
}

/**
 * What replicas share per trigger: the model's history, the state every decision starts from, and
 * its sources' 30 s rates, which a process that just started (or a new follower) takes up instead
 * of a first one-second sample (optional: records without them read as before).
 */
export interface SharedTriggerState {
  readonly history: TriggerHistory;
  readonly rates?: readonly SharedSourceRates[];
}

const rate = z.number().finite().nonnegative().optional();

/** A trigger has one source per kind at most (trigger/schema.ts); the bound is for what another writer may have put there. */
const MAX_SHARED_SOURCES = 8;

export const sharedStateSchema: PayloadSchema<SharedTriggerState> = z
  .object({
    history: triggerHistorySchema,
    rates: z
      .array(z.object({ arrivalRatePerSecond: rate, serviceRatePerSecond: rate }).readonly())
      .max(MAX_SHARED_SOURCES)
      .readonly()
      .optional(),
  })
  .readonly();

/** A writer publishes a trigger's state at most this often, unless its answer changed. */
export const PUBLISH_INTERVAL_MS = 5000;
