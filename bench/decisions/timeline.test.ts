import { describe, expect, it } from 'vitest';
import { runJob } from './matrix.ts';
import { type TimelineEntry, timelineCsv } from './timeline.ts';
import { csvFields as fields } from './traces.ts';

const entry = (over: Partial<TimelineEntry>): TimelineEntry => ({
  timeS: 22,
  replicas: 3,
  readyReplicas: 2,
  waiting: 5,
  inService: 8,
  desiredReplicas: 4,
  active: true,
  winner: 'backlog',
  demands: { backlog: 4 },
  details: {},
  ...over,
});

describe('bench:decisions --timeline', () => {
  it('writes one CSV row per HPA sync under one header, quoting what holds a comma', () => {
    const csv = timelineCsv([
      {
        trace: 'chat',
        objectiveS: 15,
        seed: 1,
        entries: [
          entry({ details: { rule: 'Erlang C, priced: the steady fleet for λ', serviceSeconds: 17.123456 } }),
          entry({ timeS: 37, winner: 'hold', demands: { backlog: 2, hold: 4 } }),
        ],
      },
    ]);
    const [header, ...rows] = csv.trimEnd().split('\n').map(fields);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row).toHaveLength(header!.length);
    const at = (row: string[], column: string) => row[header!.indexOf(column)];
    expect(at(rows[0]!, 'rule')).toBe('Erlang C, priced: the steady fleet for λ');
    expect(at(rows[0]!, 'serviceSeconds')).toBe('17.123');
    expect(at(rows[0]!, 'hold')).toBe('');
    expect([at(rows[1]!, 'timeS'), at(rows[1]!, 'winner'), at(rows[1]!, 'hold'), at(rows[1]!, 'trace')]).toEqual([
      '37',
      'hold',
      '4',
      'chat',
    ]);
  });

  it("records the model's answer at each HPA sync of a replay, and the fleet it answered for", async () => {
    const job = { trace: { synthetic: 'poisson-steady', hours: 0.25 }, seed: 1, objectives: [30], ablation: false, grid: false };
    const [withTimeline, without] = await Promise.all([runJob({ ...job, timeline: true }), runJob(job)]);
    const model = withTimeline.find((r) => r.policy === 'model')!;
    const entries = model.timeline!;
    expect(entries.length).toBeGreaterThan(40); // 15 min at a sync every 15 s
    // The HPA syncs every 15 s; the fleet it acts on is the one the entry shows.
    for (const [a, b] of entries.slice(1).map((e, i) => [entries[i]!, e] as const)) expect(b.timeS - a.timeS).toBe(15);
    expect(entries.every((e) => e.replicas >= e.readyReplicas && e.desiredReplicas >= 1 && e.winner !== '')).toBe(true);
    // Once μ is learned the backlog demand says by which rule, with the service time it learned.
    const learned = entries.filter((e) => e.details.throughputPerReplica !== undefined);
    expect(learned.length).toBeGreaterThan(0);
    expect(learned.every((e) => typeof e.details.rule === 'string' && typeof e.details.serviceSeconds === 'number')).toBe(true);
    // Recording changes nothing: the same GPU-seconds and waits as without it, and no timeline on other policies.
    expect(without.find((r) => r.policy === 'model')).toEqual({ ...model, timeline: undefined });
    expect(withTimeline.filter((r) => r.timeline !== undefined).map((r) => r.policy)).toEqual(['model']);
  });
});
