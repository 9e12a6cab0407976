// The scaling settings the model's unit tests start from: the schema's defaults written out (so a
// change of default does not move the tables' expectations), with keepWarm fixed at 0.
import type { ScalingConfig } from '../../src/trigger/types.ts';

export const scaling: ScalingConfig = {
  messagesPerReplica: 5,
  throughputPerReplica: undefined,
  concurrencyPerReplica: undefined,
  consumersPerReplica: 1,
  acknowledgement: 'after-work',
  coldStartSeconds: 60,
  coldStartPriorSeconds: 60,
  drainSeconds: 60,
  lateRequestCost: 10,
  activationBacklog: 0,
  minReplicas: 1,
  maxReplicas: 100,
  keepWarm: 0,
};
