// What the scaler's replicas share per trigger, and its format. Bump STATE_FORMAT when the shape
// of SharedTriggerState changes: a replica of another version then ignores the record (warned
// once, counted) instead of reading one it does not understand.
import { z } from 'zod';
import { triggerHistorySchema } from '../model/historySchema.ts';
import type { TriggerHistory } from '../model/types.ts';
import type { PayloadSchema } from './types.ts';

export const STATE_FORMAT = 1;

/** What replicas share per trigger: the model's history, the state every decision starts from. */
export interface SharedTriggerState {
  readonly history: TriggerHistory;
}

export const sharedStateSchema: PayloadSchema<SharedTriggerState> = z.object({ history: triggerHistorySchema }).readonly();

/** A writer publishes a trigger's state at most this often, unless its answer changed. */
export const PUBLISH_INTERVAL_MS = 5000;
