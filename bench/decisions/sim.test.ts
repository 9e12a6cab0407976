import { describe, expect, it } from 'vitest';
import { EventQueue } from './eventQueue.ts';
import { type Ack, Fleet, type NodeBilling } from './fleet.ts';
import { DEFAULT_BEHAVIOR, Hpa, averageValueReplicas } from './hpa.ts';
import { KedaLoop } from './keda.ts';
import { lognormalFromP50P99 } from './random.ts';
import { coldStartSampler, lateEpisodes, percentile, run, summarize } from './simulate.ts';
import { type Deployment, SimulatedQueueDriver, modelPolicy } from './modelPolicy.ts';
import { neededPerSecond } from './oracle.ts';
import { SYNTHETIC } from './matrix.ts';
import { chatSteady, parseAzureCsv, serviceSeconds } from './traces.ts';
import { kedaPolicy } from './policies.ts';
import type { SimContext } from './simulate.ts';

describe('EventQueue', () => {
  it('pops by time, and in insertion order at equal times', () => {
    const q = new EventQueue<string>();
    for (const [t, e] of [
      [5, 'c'],
      [1, 'a'],
      [5, 'd'],
      [3, 'b'],
      [5, 'e'],
      [0, 'z'],
    ] as const)
      q.push(t, e);
    const out: string[] = [];
    for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(e.event);
    expect(out).toEqual(['z', 'a', 'b', 'c', 'd', 'e']);
  });
});

describe('summarize', () => {
  it.each([
    // sorted waits, objective, requests over it
    [[0, 5, 15, 16, 30], 15, 2],
    [[0, 5], 15, 0],
    [[], 15, 0],
    [[20, 40], 15, 2],
  ])('waits %j against %d s: %d late', (waits, objectiveS, late) => {
    const r = summarize({ trace: 't', policy: 'p', gpuSeconds: 1, coldStarts: 0, waits: Float64Array.from(waits) }, objectiveS);
    expect(r.lateRequests).toBe(late);
    expect(r.overObjectiveShare).toBe(waits.length === 0 ? 0 : late / waits.length);
  });
});

describe('late episodes', () => {
  it('tells the late requests by when they arrived: runs with gaps of at most 60 s, the 5 largest in time order', () => {
    // Each request's arrival and wait as they started. Late at 15 s: those that arrived at 700, 100, 130 and 191.
    const started = { arrivals: [3, 700, 100, 4, 130, 191], waits: [1, 20, 30, 2, 40, 50] };
    const waits = Float64Array.from(started.waits).sort();
    const r = summarize({ trace: 't', policy: 'p', gpuSeconds: 1, coldStarts: 0, waits, started }, 15);
    expect(r.lateEpisodes).toEqual([
      { fromS: 100, toS: 130, requests: 2 },
      { fromS: 191, toS: 191, requests: 1 },
      { fromS: 700, toS: 700, requests: 1 },
    ]);
    expect(summarize({ trace: 't', policy: 'p', gpuSeconds: 1, coldStarts: 0, waits, started }, 60).lateEpisodes).toBeUndefined();
  });

  it('keeps the largest runs when there are more than 5', () => {
    // Runs of 1, 2, 3, 4, 5 and 6 requests, 1,000 s apart: the run of 1 (at 0) goes.
    const arrivals = [0, 1000, 1001, 2000, 2001, 2002, 3000, 3001, 3002, 3003, 4000, 4001, 4002, 4003, 4004];
    arrivals.push(5000, 5001, 5002, 5003, 5004, 5005);
    expect(lateEpisodes(arrivals.reverse()).map((e) => [e.fromS, e.requests])).toEqual([
      [1000, 2],
      [2000, 3],
      [3000, 4],
      [4000, 5],
      [5000, 6],
    ]);
  });
});

describe('HPA AverageValue rule', () => {
  it.each([
    // value, target, current, expected
    [100, 5, 4, 20], // ceil(100 / 5)
    [21, 5, 4, 4], // ratio 1.05 within 10 % tolerance: keep 4
    [22.5, 5, 4, 5], // ratio 1.125: ceil(4.5) = 5
    [18.2, 5, 4, 4], // ratio 0.91 within tolerance
    [7, 0.7, 3, 10], // milli-quantities: no float noise
    [0, 5, 3, 0],
  ])('value %d, target %d, current %d -> %d', (value, target, current, expected) => {
    expect(averageValueReplicas({ value, target }, current)).toBe(expected);
  });

  it('holds scale-down for the 300 s stabilization window', () => {
    const hpa = new Hpa({ minReplicas: 1, maxReplicas: 100 });
    expect(hpa.sync(0, 4, [{ value: 40, target: 5 }])).toBe(8);
    expect(hpa.sync(15, 8, [{ value: 5, target: 5 }])).toBe(8);
    expect(hpa.sync(299, 8, [{ value: 5, target: 5 }])).toBe(8);
    expect(hpa.sync(301, 8, [{ value: 5, target: 5 }])).toBe(1);
  });

  it('with the default behavior, limits scale-up to max(+100 %, +4 pods) per 15 s', () => {
    const hpa = new Hpa({ minReplicas: 1, maxReplicas: 100, behavior: DEFAULT_BEHAVIOR });
    expect(hpa.sync(0, 1, [{ value: 500, target: 5 }])).toBe(5); // 1 + 4 > 2 x 1
    expect(hpa.sync(15, 5, [{ value: 500, target: 5 }])).toBe(10); // 2 x 5
    expect(hpa.sync(20, 10, [{ value: 500, target: 5 }])).toBe(10); // already +5 in this period from 5
    expect(hpa.sync(30, 10, [{ value: 500, target: 5 }])).toBe(20);
  });

  // Found by review: KEDA creates its HPA with behavior nil when the ScaledObject has no advanced
  // block, and the controller then takes its older path, not the default behavior's policies.
  it('without a behavior (KEDA with no advanced block), scales up to max(2 x current, 4) per sync, down at once past the window', () => {
    const hpa = new Hpa({ minReplicas: 1, maxReplicas: 20 });
    expect(hpa.sync(0, 1, [{ value: 500, target: 5 }])).toBe(4); // max(2, 4)
    expect(hpa.sync(15, 4, [{ value: 500, target: 5 }])).toBe(8);
    expect(hpa.sync(20, 8, [{ value: 500, target: 5 }])).toBe(16); // per sync, not per 15 s period
    expect(hpa.sync(35, 16, [{ value: 500, target: 5 }])).toBe(20); // maxReplicas
    // Down: the largest recommendation of the last 300 s, then straight there.
    expect(hpa.sync(300, 20, [{ value: 5, target: 5 }])).toBe(20); // 100 asked at 0-35 s
    expect(hpa.sync(334, 20, [{ value: 5, target: 5 }])).toBe(20);
    // The sample of 35 s is 300 s old: dropped, as the controller's syncs, 15 s apart and a little, drop it.
    expect(hpa.sync(335, 20, [{ value: 5, target: 5 }])).toBe(1);
  });

  it('takes the largest metric and respects maxReplicas', () => {
    const hpa = new Hpa({ minReplicas: 1, maxReplicas: 6, behavior: undefined });
    expect(
      hpa.sync(0, 4, [
        { value: 10, target: 5 },
        { value: 350, target: 70 },
      ]),
    ).toBe(5);
    expect(hpa.sync(15, 5, [{ value: 100, target: 5 }])).toBe(6);
  });

  it('leaves a workload at zero to KEDA', () => {
    expect(new Hpa({ minReplicas: 1, maxReplicas: 10 }).sync(0, 0, [{ value: 50, target: 5 }])).toBe(0);
  });
});

describe('KEDA loop', () => {
  it('wakes 0 -> 1 on an active answer and scales to 0 only after cooldown', () => {
    const keda = new KedaLoop({ pollingIntervalSeconds: 30, cooldownSeconds: 300, minReplicaCount: 0 });
    expect(keda.check(0, 0, false)).toBeUndefined();
    expect(keda.check(30, 0, true)).toBe(1);
    expect(keda.check(60, 3, true)).toBeUndefined(); // the HPA's
    expect(keda.check(90, 3, false)).toBeUndefined();
    expect(keda.check(359, 3, false)).toBeUndefined();
    expect(keda.check(360, 3, false)).toBe(0);
  });
});

describe('the management API as a broker serves it (--source rabbitmq-stats)', () => {
  it('reports the figures of the last statistics emission, every 5 s, with the publish and ack rates over the interval', async () => {
    const q = new EventQueue<() => void>();
    const fleet = new Fleet(4, { at: (t, run) => q.push(t, run) });
    const emissions: (() => void | Promise<void>)[] = [];
    let firstS = -1;
    const ctx = {
      fleet,
      seed: 5,
      every: (first: number, everyS: number, run: () => void | Promise<void>) => {
        expect(everyS).toBe(5);
        firstS = first;
        emissions.push(run);
      },
    } as unknown as SimContext;
    const driver = new SimulatedQueueDriver(ctx, 'rabbitmq-stats');
    const source = driver.create();
    expect(firstS).toBeGreaterThanOrEqual(0);
    expect(firstS).toBeLessThan(5);
    for (let i = 0; i < 10; i++) fleet.arrive(i, { arrivalS: i, serviceS: 60 });
    // Nothing emitted since the start: the empty queue the statistics last saw.
    expect(await source.read(new AbortController().signal)).toMatchObject({ backlog: 0, waiting: 0, arrivedTotal: 0 });
    await emissions[0]!();
    expect(await source.read(new AbortController().signal)).toMatchObject({
      backlog: 10,
      waiting: 10,
      arrivedTotal: 10,
      arrivalRatePerSecond: 2,
      serviceRatePerSecond: 0,
    });
    fleet.arrive(10, { arrivalS: 10, serviceS: 60 });
    expect((await source.read(new AbortController().signal)).arrivedTotal).toBe(10);
  });
});

describe('GPUs billed per node (--nodes)', () => {
  const harness = (nodes: NodeBilling) => {
    const q = new EventQueue<() => void>();
    const fleet = new Fleet(1, { at: (t, run) => q.push(t, run) }, 1, 'after', nodes);
    const runUntil = (t: number) => {
      for (let e = q.peek(); e !== undefined && e.atS <= t; e = q.peek()) q.pop()!.event();
    };
    return { fleet, runUntil };
  };

  it('boots a node for a replica with none idle, keeps it RETAIN s after the replica, and starts the next one on it without a boot', () => {
    const { fleet, runUntil } = harness({ retainS: 600, bootS: 180 });
    const first = fleet.add(0, 30);
    expect(first.readyS).toBe(210); // 180 s to boot, then the cold start
    fleet.scaleTo(300, 0, () => 30); // gone at 300 s: its node idle until 900 s
    const second = fleet.add(500, 30);
    expect(second.readyS).toBe(530); // on the idle node: the cold start alone
    fleet.scaleTo(700, 0, () => 30);
    runUntil(2000);
    fleet.close(2000);
    // One node, from 0 s to 700 s + 600 s.
    expect(fleet.gpuSeconds).toBe(1300);
  });

  it('releases an idle node at the end of its retention: the next replica boots one, and both are billed', () => {
    const { fleet } = harness({ retainS: 60, bootS: 180 });
    fleet.add(0, 30);
    fleet.scaleTo(300, 0, () => 30); // idle until 360 s
    const late = fleet.add(400, 30);
    expect(late.readyS).toBe(610);
    fleet.close(1000);
    expect(fleet.gpuSeconds).toBe(360 + 600);
  });

  it('starts a replica on a node still booting (its replica given back before it was up) once the node is up', () => {
    const { fleet } = harness({ retainS: 600, bootS: 180 });
    fleet.add(0, 30);
    fleet.scaleTo(60, 0, () => 30); // given back while its node boots (up at 180 s)
    expect(fleet.add(100, 30).readyS).toBe(210);
    expect(fleet.add(300, 30).readyS).toBe(510); // none idle: a node of its own
  });

  // Found by review: a node retained for less than its boot was released before it was up.
  it('keeps a node given back while it boots for the retention from when it is up', () => {
    const { fleet } = harness({ retainS: 60, bootS: 180 });
    fleet.add(0, 30);
    fleet.scaleTo(10, 0, () => 30); // its node up at 180 s, idle until 240 s
    expect(fleet.add(200, 30).readyS).toBe(230);
    fleet.close(400);
    expect(fleet.gpuSeconds).toBe(400);
  });

  it("bills a busy replica's node until it has served, then the retention; idle and live nodes at the end", () => {
    const { fleet, runUntil } = harness({ retainS: 600, bootS: 180 });
    fleet.add(0, 30); // ready at 210 s
    runUntil(210);
    fleet.arrive(210, { arrivalS: 210, serviceS: 100 });
    fleet.scaleTo(250, 0, () => 30); // removed while it serves: done at 310 s, idle until 910 s
    runUntil(400);
    fleet.add(1000, 30); // none idle by then: a node of its own from 1,000 s
    fleet.close(1500);
    expect(fleet.gpuSeconds).toBe(910 + 500);
  });

  it('bills what a fleet billed per replica when nodes are neither kept nor booted', () => {
    const { fleet } = harness({ retainS: 0, bootS: 0 });
    fleet.add(0, 30);
    fleet.scaleTo(300, 0, () => 30);
    fleet.add(300, 30);
    fleet.close(1000);
    expect(fleet.gpuSeconds).toBe(300 + 700);
  });
});

describe('Kafka as its consumers commit (--source kafka-commits)', () => {
  it('counts in the lag what each consumer served since its last commit, every 5 s from when it started, and all of it as it closes', async () => {
    const q = new EventQueue<() => void>();
    const fleet = new Fleet(1, { at: (t, run) => q.push(t, run) });
    const runUntil = (t: number) => {
      for (let e = q.peek(); e !== undefined && e.atS <= t; e = q.peek()) q.pop()!.event();
    };
    let now = 0;
    const ticks: (() => void | Promise<void>)[] = [];
    const ctx = {
      fleet,
      seed: 1,
      now: () => now,
      every: (_first: number, everyS: number, run: () => void | Promise<void>) => {
        expect(everyS).toBe(1);
        ticks.push(run);
      },
    } as unknown as SimContext;
    const source = new SimulatedQueueDriver(ctx, 'kafka-commits').create();
    const read = () => source.read(new AbortController().signal);
    // Two replicas, ready at 10 and 12 s; six one-second requests.
    fleet.scaleTo(
      0,
      2,
      (() => {
        const starts = [10, 12];
        return () => starts.shift()!;
      })(),
    );
    for (let i = 0; i < 6; i++) fleet.arrive(0, { arrivalS: 0, serviceS: 1 });
    const step = async (t: number) => {
      runUntil(t);
      now = t;
      for (const tick of ticks) await tick();
    };
    for (let t = 1; t <= 14; t++) await step(t);
    // Served by 14 s: 4 on the first (10-14 s), 2 on the second (12-14 s); nothing committed yet.
    expect(fleet.served).toBe(6);
    expect(await read()).toMatchObject({ backlog: 6, servedTotal: 0, arrivedTotal: 6, consumers: 2 });
    await step(15); // the first's 5 s since it started: its 4
    expect(await read()).toMatchObject({ backlog: 2, servedTotal: 4 });
    fleet.scaleTo(15, 1, () => 0); // the second goes, committing its 2 as it closes
    expect(await read()).toMatchObject({ backlog: 0, servedTotal: 6, consumers: 1 });
  });
});

describe('Fleet', () => {
  const harness = (prefetch = 2, ack: Ack = 'after') => {
    const q = new EventQueue<() => void>();
    const fleet = new Fleet(2, { at: (t, run) => q.push(t, run) }, prefetch, ack);
    const runUntil = (t: number) => {
      for (let e = q.peek(); e !== undefined && e.atS <= t; e = q.peek()) q.pop()!.event();
    };
    return { fleet, runUntil };
  };

  it('serves only after the cold start and bills from the ask', () => {
    const { fleet, runUntil } = harness();
    fleet.scaleTo(0, 1, () => 30);
    fleet.arrive(5, { arrivalS: 5, serviceS: 10 });
    runUntil(29);
    expect(fleet.inService).toBe(0);
    runUntil(30);
    expect(fleet.inService).toBe(1);
    expect(fleet.waits).toEqual([25]);
    expect(fleet.waitArrivals).toEqual([5]);
    runUntil(40);
    fleet.scaleTo(40, 0, () => 30);
    fleet.close(100);
    expect(fleet.gpuSeconds).toBe(40);
    expect(fleet.coldStarts).toBe(1);
  });

  it('removes starting replicas before ready ones, and drains a busy one before billing stops', () => {
    const { fleet, runUntil } = harness();
    fleet.scaleTo(0, 1, () => 10);
    runUntil(10);
    fleet.arrive(10, { arrivalS: 10, serviceS: 20 });
    fleet.scaleTo(10, 2, () => 10);
    fleet.scaleTo(12, 1, () => 10); // the starting one goes
    expect(fleet.size).toBe(1);
    fleet.scaleTo(15, 0, () => 10); // the busy one finishes first
    runUntil(100);
    fleet.close(100);
    expect(fleet.gpuSeconds).toBe(30 + 2); // busy one until its request ends at 30, starting one 10..12
  });

  it('with a prefetch past its slots, a replica holds messages that wait inside it, counted unacknowledged', () => {
    const { fleet, runUntil } = harness(4);
    fleet.scaleTo(0, 2, () => 10);
    runUntil(10);
    // Two replicas of 2 slots, 4 prefetched each: 8 taken from the queue, 4 of them in service.
    for (let i = 0; i < 9; i++) fleet.arrive(10, { arrivalS: 10, serviceS: 10 });
    expect([fleet.waiting, fleet.inService, fleet.held, fleet.unacked]).toEqual([1, 4, 4, 8]);
    // Each replica starts its own held messages as its slots free: the one left in the queue
    // goes to whichever has room first.
    runUntil(20);
    expect([fleet.waiting, fleet.inService, fleet.held]).toEqual([0, 4, 1]);
    expect(fleet.waits.slice(4)).toEqual([10, 10, 10, 10]);
  });

  it('acknowledged as started (Celery early ack): only what waits inside a replica is unacknowledged, the ack counter counts starts', () => {
    const { fleet, runUntil } = harness(4, 'before');
    fleet.scaleTo(0, 2, () => 10);
    runUntil(10);
    // Two replicas of 2 slots: 2 in service each (acknowledged), and 4 more prefetched each.
    for (let i = 0; i < 13; i++) fleet.arrive(10, { arrivalS: 10, serviceS: 10 });
    expect([fleet.waiting, fleet.inService, fleet.held, fleet.unacked, fleet.acked, fleet.served]).toEqual([1, 4, 8, 8, 4, 0]);
    runUntil(20);
    // Four served, four more started from inside the replicas, and the one in the queue taken.
    expect([fleet.waiting, fleet.inService, fleet.held, fleet.unacked, fleet.acked, fleet.served]).toEqual([0, 4, 5, 5, 8, 4]);
    const late = harness(4);
    late.fleet.scaleTo(0, 2, () => 10);
    late.runUntil(10);
    for (let i = 0; i < 13; i++) late.fleet.arrive(10, { arrivalS: 10, serviceS: 10 });
    expect([late.fleet.waiting, late.fleet.unacked, late.fleet.acked]).toEqual([5, 8, 0]);
  });

  it('returns what a removed replica prefetched to the head of the queue', () => {
    const { fleet, runUntil } = harness(4);
    fleet.scaleTo(0, 1, () => 10);
    runUntil(10);
    for (let i = 0; i < 4; i++) fleet.arrive(10, { arrivalS: 10, serviceS: 10 });
    fleet.arrive(11, { arrivalS: 11, serviceS: 10 });
    expect([fleet.waiting, fleet.held]).toEqual([1, 2]);
    fleet.scaleTo(12, 0, () => 10);
    expect([fleet.waiting, fleet.held, fleet.inService]).toEqual([3, 0, 2]);
    fleet.scaleTo(12, 1, () => 5);
    runUntil(17);
    // The new replica takes all three and starts the two returned first (arrived at 10); the one
    // from 11 waits inside it.
    expect(fleet.waits.slice(2)).toEqual([7, 7]);
    expect([fleet.waiting, fleet.held]).toEqual([0, 1]);
  });
});

describe('traces and draws', () => {
  it('reads the Azure format with CRLF and derives service time from tokens', () => {
    const t = parseAzureCsv(
      'x',
      'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:17:04.5000000,4000,25\r\n2023-11-16 18:17:03.5000000,0,50\r\n',
    );
    // 4,000 context tokens at 4,000 a second, then 25 generated at 25 a second; 50 generated alone.
    expect(t.requests).toEqual([
      { arrivalS: 0, serviceS: 2 },
      { arrivalS: 1, serviceS: 2 },
    ]);
    expect(parseAzureCsv('x', 'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.5000000,2000,5\n').requests).toEqual([
      { arrivalS: 0, serviceS: 0.7 },
    ]);
  });

  // Found by review: one bad cell was read as 0 or NaN and changed every policy's figures without a
  // word (always-on at 0 replicas), a quoted field with a comma split the row, a month 13 rolled
  // over into the next year, and an offset was dropped.
  const H = 'TIMESTAMP,ContextTokens,GeneratedTokens';
  it.each([
    [
      'a token count that is not a number',
      `${H}\n2023-11-16 18:17:03.5,n/a,9\n`,
      /^t\.csv:2: ContextTokens "n\/a": want a whole number/,
    ],
    ['an empty token cell', `${H}\n2023-11-16 18:17:03.5,100,\n`, /^t\.csv:2: GeneratedTokens "": want a whole number/],
    ['a negative token count', `${H}\n2023-11-16 18:17:03.5,-50000,9\n`, /^t\.csv:2: ContextTokens "-50000"/],
    ['a row short of a field', `${H}\n2023-11-16 18:17:03.5,100\n`, /^t\.csv:2: 2 fields where the header has 3/],
    ['a month 13', `${H}\n2023-13-45 18:17:05.0,1,1\n`, /^t\.csv:2: TIMESTAMP "2023-13-45 18:17:05.0": no such date or time/],
    ['a second 99', `${H}\n2023-11-16 18:17:99,1,1\n`, /no such date or time/],
    [
      'a date in another format',
      `${H}\n\n17.11.2023 10:50:42.6,1,1\n`,
      /^t\.csv:3: TIMESTAMP "17\.11\.2023 10:50:42\.6": want YYYY-MM-DD/,
    ],
    ['a header and no rows', `${H}\n`, /^t\.csv: no requests/],
    ['a quote not closed', `${H}\n"2023-11-16 18:17:03.5,1,1\n`, /^t\.csv:2: a quote is not closed/],
  ])('refuses %s, naming the file and the line', (_what, csv, error) => {
    expect(() => parseAzureCsv('t.csv', csv)).toThrow(error);
  });

  it('reads trailing commas, a lowercase z, an offset of hours alone, and a space before it', () => {
    const t = parseAzureCsv(
      't',
      `TIMESTAMP,ContextTokens,GeneratedTokens,\n2023-11-16T23:17:04.5+05,4000,25,\n2023-11-16 18:17:03.5 z,0,50\n`,
    );
    expect(t.requests).toEqual([
      { arrivalS: 0, serviceS: 2 },
      { arrivalS: 1, serviceS: 2 },
    ]);
    expect(() => parseAzureCsv('t.csv', `${H}\n2023-11-16 18:17:03.5+99:99,1,1\n`)).toThrow(/^t\.csv:2: .*no such offset/);
    expect(() => parseAzureCsv('t.csv', `\nTIMESTAMP,Context,GeneratedTokens\n`)).toThrow(/^t\.csv:2: no ContextTokens column/);
  });

  it('reads quoted fields, a BOM, and times with offsets as the instants they name', () => {
    const t = parseAzureCsv(
      't',
      `\uFEFF"TIMESTAMP","model",ContextTokens,GeneratedTokens\n` +
        `"2023-11-16T19:17:04.5+01:00","llama, 13b",4000,25\n` +
        `2023-11-16 18:17:03.5Z,"say ""hi""",0,50\n`,
    );
    expect(t.requests).toEqual([
      { arrivalS: 0, serviceS: 2 },
      { arrivalS: 1, serviceS: 2 },
    ]);
  });

  it('draws cold starts with p50 about 23 s and p99 about 52 s', () => {
    const draw = coldStartSampler(7);
    const xs = Array.from({ length: 20_000 }, draw).sort((a, b) => a - b);
    expect(percentile(xs, 50)).toBeGreaterThan(21.5);
    expect(percentile(xs, 50)).toBeLessThan(24.5);
    expect(percentile(xs, 99)).toBeGreaterThan(47);
    expect(percentile(xs, 99)).toBeLessThan(57);
    expect(lognormalFromP50P99(23, 52).mu).toBeCloseTo(Math.log(23));
  });

  it('draws cold starts from another distribution when given one, capped at twice its p99', () => {
    const xs = Array.from({ length: 20_000 }, coldStartSampler(7, { p50: 60, p99: 120 })).sort((a, b) => a - b);
    expect(percentile(xs, 50)).toBeGreaterThan(57);
    expect(percentile(xs, 50)).toBeLessThan(63);
    expect(percentile(xs, 99)).toBeGreaterThan(110);
    expect(percentile(xs, 99)).toBeLessThan(130);
    expect(xs.at(-1)).toBeLessThanOrEqual(240);
  });
});

describe('the oracle', () => {
  const ctx = (requests: { arrivalS: number; serviceS: number }[], endS: number, concurrency = 4) =>
    ({ trace: { name: 'x', requests }, endS, fleet: { concurrency } }) as never;
  it('drains the work due within 10 s, a request on one slot at a time', () => {
    // 80 requests of 1 s at once: 80 slot-seconds within 10 s, 4 slots per replica: 2 replicas.
    expect(
      neededPerSecond(
        ctx(
          Array.from({ length: 80 }, () => ({ arrivalS: 0, serviceS: 1 })),
          12,
        ),
      ).slice(0, 2),
    ).toEqual([2, 2]);
    // One minute-long request needs one replica, not the 2 that draining 60 s of work in 10 s would take.
    expect(neededPerSecond(ctx([{ arrivalS: 0, serviceS: 60 }], 70)).slice(0, 3)).toEqual([1, 1, 1]);
  });

  it("sizes by the fleet's slots per replica (--slots)", () => {
    const burst = Array.from({ length: 80 }, () => ({ arrivalS: 0, serviceS: 1 }));
    expect(neededPerSecond(ctx(burst, 12, 16))[0]).toBe(1);
    expect(neededPerSecond(ctx(burst, 12, 1))[0]).toBe(8);
  });
});

describe('the synthetic family', () => {
  it('is the same trace for the same seed, another for another', () => {
    for (const make of Object.values(SYNTHETIC)) {
      expect(make(1).requests.slice(0, 50)).toEqual(make(1).requests.slice(0, 50));
      expect(make(2).requests.slice(0, 50)).not.toEqual(make(1).requests.slice(0, 50));
    }
  });

  it('spans rates from 0.1 to 20 requests per second and services from about 1 s to about a minute', () => {
    const stats = Object.values(SYNTHETIC).map((make) => {
      const r = make(1).requests;
      return { rate: r.length / r.at(-1)!.arrivalS, service: r.reduce((s, x) => s + x.serviceS, 0) / r.length };
    });
    expect(Math.min(...stats.map((s) => s.rate))).toBeLessThanOrEqual(0.15);
    expect(Math.max(...stats.map((s) => s.rate))).toBeGreaterThanOrEqual(19);
    expect(Math.min(...stats.map((s) => s.service))).toBeLessThan(2);
    expect(Math.max(...stats.map((s) => s.service))).toBeGreaterThan(40);
  });

  it('includes a chat trace with the published statistics of a production chat service', () => {
    // About 5.5 req/s for 58 minutes, per-minute count CV about 0.25, never idle (longest gap a few
    // seconds), context median about 1,020 tokens and output median about 129: a median service of ~5.4 s.
    for (const seed of [1, 2, 3]) {
      const r = chatSteady(seed).requests;
      const rate = r.length / r.at(-1)!.arrivalS;
      expect(rate).toBeGreaterThan(4.5);
      expect(rate).toBeLessThan(6.5);
      const minutes = new Array(58).fill(0);
      for (const x of r) minutes[Math.min(57, Math.floor(x.arrivalS / 60))]++;
      const mean = minutes.reduce((a, b) => a + b, 0) / minutes.length;
      const cv = Math.sqrt(minutes.reduce((a, b) => a + (b - mean) ** 2, 0) / minutes.length) / mean;
      expect(cv).toBeGreaterThan(0.15);
      expect(cv).toBeLessThan(0.35);
      let gap = 0;
      for (let i = 1; i < r.length; i++) gap = Math.max(gap, r[i]!.arrivalS - r[i - 1]!.arrivalS);
      expect(gap).toBeLessThan(6);
      const services = r.map((x) => x.serviceS).sort((a, b) => a - b);
      const median = services[Math.floor(services.length / 2)]!;
      expect(median).toBeGreaterThan(serviceSeconds(1020, 129) * 0.9);
      expect(median).toBeLessThan(serviceSeconds(1020, 129) * 1.1);
    }
  });
});

describe('the model deployed (--restart-at, --edit-at, --pause-at, --replicas)', () => {
  const trace = SYNTHETIC['on-off']!(1);
  const gpuSeconds = async (deployment?: Deployment) =>
    (await run(trace, modelPolicy({ drainSeconds: '60' }, deployment === undefined ? {} : { deployment }), 1)).gpuSeconds;

  it('relearns from nothing restarted with its state in memory, and goes on as if never restarted from a store', async () => {
    const [alone, memory, store] = [
      await gpuSeconds(),
      await gpuSeconds({ replicas: 1, restartAtS: [1800], store: false }),
      await gpuSeconds({ replicas: 1, restartAtS: [1800], store: true }),
    ];
    // Forgotten: KEDA's rule and the break-even keep-warm until it has learned again.
    expect(memory).toBeGreaterThan(alone * 1.05);
    // Read back (through the records' JSON and schema): the gaps, rates, μ and the hold carry on.
    expect(Math.abs(store - alone)).toBeLessThan(alone * 0.01);
  });

  it('carries on through an edit of its settings, and through a restart after it with a store', async () => {
    const alone = await gpuSeconds();
    // A new id for the same ScaledObject and queue: until lineages, a restart in memory (+12 % here).
    expect(await gpuSeconds({ replicas: 1, restartAtS: [], editAtS: [1200], store: false })).toBe(alone);
    // Undone 20 minutes later: the old trigger's state, 20 minutes stale, gives way to the edited one's.
    expect(await gpuSeconds({ replicas: 1, restartAtS: [], editAtS: [1200, 2400], store: false })).toBe(alone);
    // The edited trigger's state published under its own id, and read back by the new process.
    const restarted = await gpuSeconds({ replicas: 1, restartAtS: [1800], editAtS: [1200], store: true });
    expect(Math.abs(restarted - alone)).toBeLessThan(alone * 0.01);
  });

  it('paused, asks no trigger anything and keeps the replicas; after it, a new HPA and the stream open again', async () => {
    const calls: { atS: number; size: number; what: string }[] = [];
    const policy = kedaPolicy('p', 'a test', { cooldownSeconds: 30, pauses: [{ atS: 600, forS: 1200 }] }, (ctx) => {
      const call = (what: string) => calls.push({ atS: ctx.now(), size: ctx.fleet.size, what });
      return {
        isActive: () => (call('poll'), true),
        // 3 replicas until 400 s, then 1: the HPA's 300 s window would let them go at 700 s.
        metrics: () => (call('sync'), [{ value: ctx.now() < 400 ? 3 : 1, target: 1 }]),
        stream: { intervalS: 1, check: async () => (call('stream'), true) },
      };
    });
    await run(
      {
        name: 'x',
        requests: [
          { arrivalS: 1, serviceS: 1 },
          { arrivalS: 2400, serviceS: 1 },
        ],
      },
      policy,
      1,
    );
    expect(calls.filter(({ atS }) => atS >= 600 && atS < 1800)).toEqual([]);
    const after = calls.filter(({ atS }) => atS >= 1800);
    expect(new Set(after.slice(0, 40).map(({ what }) => what))).toEqual(new Set(['poll', 'sync', 'stream']));
    // Kept at 3 through the pause; the new HPA, with no recommendations in its window, scales down at its first sync.
    expect(calls.filter(({ atS }) => atS < 600).at(-1)!.size).toBe(3);
    expect(after[0]!.size).toBe(3);
    const firstSync = after.findIndex(({ what }) => what === 'sync');
    expect(after[firstSync + 1]!.size).toBe(1);
  });

  it('paused past the idle sweep: carries on from what it learned within STATE_RETENTION_MS, and starts over without', async () => {
    const pause = [{ atS: 1200, forS: 2400 }];
    const [kept, forgotten] = [
      await gpuSeconds({ replicas: 1, restartAtS: [], pauseAtS: pause, store: false }),
      await gpuSeconds({ replicas: 1, restartAtS: [], pauseAtS: pause, retentionS: 1800, store: false }),
    ];
    const [keptStore, forgottenStore] = [
      await gpuSeconds({ replicas: 1, restartAtS: [], pauseAtS: pause, store: true }),
      await gpuSeconds({ replicas: 1, restartAtS: [], pauseAtS: pause, retentionS: 1800, store: true }),
    ];
    expect(kept).not.toBe(forgotten);
    expect(kept).toBeLessThan(forgotten);
    // With a store the record lives as long as the retention: the same runs.
    expect(keptStore).toBe(kept);
    expect(forgottenStore).toBe(forgotten);
  });

  it('as two replicas behind round robin: apart, they churn; on one store, they answer as one', async () => {
    const bursts = SYNTHETIC['code-bursts']!(1);
    const outcome = async (deployment?: Deployment) => {
      const o = await run(bursts, modelPolicy({ drainSeconds: '60' }, deployment === undefined ? {} : { deployment }), 1);
      return { ...o, late: summarize(o, 60).lateRequests };
    };
    const [alone, apart, shared] = [
      await outcome(),
      await outcome({ replicas: 2, restartAtS: [], store: false }),
      await outcome({ replicas: 2, restartAtS: [], store: true }),
    ];
    // Each process decides from the half of the calls it sees: the HPA gets values that jump.
    expect(apart.coldStarts).toBeGreaterThan(1.5 * alone.coldStarts);
    // ... and pays for it, in GPU-seconds and late requests: on this seed 8,527 GPU-s and 44 late
    // against 7,926 and 25 alone, one burst's replicas up late (8,553 and 38 against 7,934 and none
    // before the waiting were started within T, a run that then drew other cold starts; 10,589 and
    // 2 while the hold at T < C was C; 11,441 and more late before the ReplicaSet's order of
    // removal). On one store the two answer as the one: none late here.
    expect(apart.gpuSeconds).toBeGreaterThan(alone.gpuSeconds);
    expect(apart.late).toBeGreaterThan(alone.late);
    expect(shared.late).toBeLessThanOrEqual(alone.late);
    expect(Math.abs(shared.gpuSeconds - alone.gpuSeconds)).toBeLessThan(alone.gpuSeconds * 0.05);
    expect(shared.coldStarts).toBeLessThan(1.25 * alone.coldStarts);
  });
});
