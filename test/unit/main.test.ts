// The entry point takes SIGTERM and SIGINT before any module loads: node as PID 1 (the image's)
// drops a signal it has no handler for, and the modules take half a second or more to load. Then
// what each signal does.
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SignalPolicy, UncaughtErrors } from '../../src/run.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import { logLines } from '../support/logLines.ts';

const main = readFileSync(new URL('../../src/main.ts', import.meta.url), 'utf8');

describe('src/main.ts', () => {
  it('imports types alone statically, and loads the rest after its signal handlers', () => {
    const imports = main.split('\n').filter((l) => /^import\b/.test(l));
    expect(imports.length).toBeGreaterThan(0);
    for (const line of imports) expect(line).toMatch(/^import type /);
    const handlers = Math.max(main.indexOf("process.on('SIGTERM'"), main.indexOf("process.on('SIGINT'"));
    expect(main.indexOf("process.on('SIGTERM'")).toBeGreaterThan(0);
    expect(main.indexOf("process.on('SIGINT'")).toBeGreaterThan(0);
    expect(main.indexOf('await import(')).toBeGreaterThan(handlers);
  });
});

describe('SignalPolicy', () => {
  it.each([
    // [signals as (signal, ms), serving, actions]
    ['SIGTERM while starting', [['SIGTERM', 0]], false, ['exit']],
    ['SIGTERM while serving', [['SIGTERM', 0]], true, ['stop']],
    // Found by review: Ctrl-C on `npm start` reaches node twice (the terminal's and npm's).
    [
      'a Ctrl-C that npm passes on',
      [
        ['SIGINT', 0],
        ['SIGINT', 40],
      ],
      true,
      ['stop', 'echo'],
    ],
    [
      'the same signal again past 250 ms',
      [
        ['SIGINT', 0],
        ['SIGINT', 250],
      ],
      true,
      ['stop', 'force'],
    ],
    [
      'another signal at once',
      [
        ['SIGINT', 0],
        ['SIGTERM', 10],
      ],
      true,
      ['stop', 'force'],
    ],
    [
      'a third after an echo',
      [
        ['SIGTERM', 0],
        ['SIGTERM', 100],
        ['SIGTERM', 900],
      ],
      true,
      ['stop', 'echo', 'force'],
    ],
  ] as const)('%s', (_, signals, serving, actions) => {
    const policy = new SignalPolicy();
    expect(signals.map(([signal, ms]) => policy.next(signal, ms, serving))).toEqual(actions);
    expect(policy.signalled).toBe(true);
  });
});

describe('errors nothing caught', () => {
  it('are logged at error with their kind, and counted in uncaught_errors_total, those before the metrics exist too', async () => {
    const { sink, lines } = logLines();
    const uncaught = new UncaughtErrors(createLogger('info', sink));
    uncaught.record('rejection', 'a string nobody awaited');
    const metrics = new ScalerMetrics(new Registry(), { defaultMetrics: false });
    uncaught.attach(metrics.uncaughtErrors);
    uncaught.record('exception', new Error('boom'));
    uncaught.record('exception', new Error('boom again'));
    const counted = Object.fromEntries((await metrics.uncaughtErrors.get()).values.map((v) => [v.labels.kind, v.value]));
    expect(counted).toEqual({ exception: 2, rejection: 1 });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ['error', 'unhandled rejection'],
      ['error', 'uncaught exception'],
      ['error', 'uncaught exception'],
    ]);
    expect(lines[0]!.err).toBe('a string nobody awaited');
  });
});
