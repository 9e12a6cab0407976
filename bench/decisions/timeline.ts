// --timeline: what the model answered at each of the HPA's syncs of one replay, with the fleet and
// queue it answered for and the terms behind the answer (the explanation /explain serves), as CSV:
// where a replay of a user's own traffic shows the model spending or waiting, this says why.
import type { Evaluation } from '../../src/engine.ts';
import { DEMAND_SOURCES } from '../../src/model/types.ts';
import type { Fleet } from './fleet.ts';

/** One HPA sync: the fleet, the queue, and the model's answer. */
export interface TimelineEntry {
  readonly timeS: number;
  /** Replicas asked for (spec.replicas) and of those serving. */
  readonly replicas: number;
  readonly readyReplicas: number;
  readonly waiting: number;
  readonly inService: number;
  readonly desiredReplicas: number;
  readonly active: boolean;
  /** The term that set the answer (backlog, burst, hold, ... or a bound). */
  readonly winner: string;
  /** Each demand term's replicas (empty when it asked for none). */
  readonly demands: Readonly<Partial<Record<(typeof DEMAND_SOURCES)[number], number>>>;
  /** The explanation's figures the columns name (DETAILS), when it has them. */
  readonly details: Readonly<Record<string, number | string | boolean>>;
}

/** The explanation's figures that get a column: the backlog demand's rule and inputs, what was learned, and the hold's. */
const DETAILS = [
  'rule',
  'arrivalRatePerSecond',
  'steadyArrivalRatePerSecond',
  'recentArrivalRateFloorPerSecond',
  'projectedBacklog',
  'serviceSeconds',
  'throughputPerReplica',
  'slotsPerReplica',
  'coldStartSeconds',
  'keepWarmSeconds',
  'consumersPerReplicaSuggested',
  'waitingStartedWithinT',
  'keptBusyAtArrivalRate',
  // The hold's: how long, why, and the queue head's floor.
  'holdSource',
  'holdSeconds',
  'queueHeadAgeSeconds',
  'queueHeadReplicas',
] as const;

export function timelineEntry(timeS: number, fleet: Fleet, { decision }: Evaluation): TimelineEntry {
  const { explanation } = decision;
  const details: Record<string, number | string | boolean> = {};
  for (const key of DETAILS) {
    const value = explanation.details[key];
    if (value !== undefined) details[key] = value;
  }
  return {
    timeS,
    replicas: fleet.size,
    readyReplicas: fleet.readyCount,
    waiting: fleet.waiting,
    inService: fleet.inService,
    desiredReplicas: decision.desiredReplicas,
    active: decision.active,
    winner: explanation.winner,
    demands: { ...explanation.demands },
    details,
  };
}

/** A replay's timeline, named by its trace, objective and seed. */
export interface Timeline {
  readonly trace: string;
  readonly objectiveS: number;
  readonly seed: number;
  readonly entries: readonly TimelineEntry[];
}

const HEADER = [
  'trace',
  'objectiveS',
  'seed',
  'timeS',
  'replicas',
  'readyReplicas',
  'waiting',
  'inService',
  'desiredReplicas',
  'active',
  'winner',
  ...DEMAND_SOURCES,
  ...DETAILS,
];

/** A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180). */
function field(value: string | number | boolean | undefined): string {
  if (value === undefined) return '';
  const text = typeof value === 'number' ? String(Math.round(value * 1000) / 1000) : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Every timeline as one CSV, a row per HPA sync, under one header. */
export function timelineCsv(timelines: readonly Timeline[]): string {
  const lines = [HEADER.join(',')];
  for (const { trace, objectiveS, seed, entries } of timelines) {
    for (const e of entries) {
      lines.push(
        [
          trace,
          objectiveS,
          seed,
          e.timeS,
          e.replicas,
          e.readyReplicas,
          e.waiting,
          e.inService,
          e.desiredReplicas,
          e.active,
          e.winner,
          ...DEMAND_SOURCES.map((term) => e.demands[term]),
          ...DETAILS.map((key) => e.details[key]),
        ]
          .map(field)
          .join(','),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
